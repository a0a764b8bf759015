"""The model family, one table: accuracy and speed of each input size, with MediaPipe's palm
detector measured in the same run as the reference.

    python -m detect.sizes [--models exported/hands_ssd320,exported/hands_ssd192]
        [--rounds 30] [--frames 300] [--fps-rounds 2] [--no-browser]

Per exported model (default: every ``exported/hands_ssd*``):
- AP50 per held-out source, from its model card (pipelines.evaluate on the held-out EgoHands
  video and each webcam set's held-out split);
- int8 latency, LiteRT, 1 thread, one 320/256/... input: the OD API graph with its
  TFLite_Detection_PostProcess op (``model_int8.tflite``, what detect runs) and the network
  alone (``litert/model_int8.tflite``, what the browser runs; the difference is the
  post-processing's share), and its float twin (``litert/model_fp32.tflite``: the faster of the
  two runs on each CPU, ``handspot.calibrate``). Every model and palm_detection_full are
  interleaved round by round
  (5 invokes a turn, 2 warm-up rounds dropped): median and IQR;
- LiteRT.js in headless Chromium: the demo page's detect() on a 1280x720 frame (threads);
- ``detect_multi_threaded`` FPS on a 1280x720 video with the annotated mp4 and JSON written
  (median of interleaved rounds), and the artifact sizes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from common.paths import DEFAULT_MODEL
from detect.bench import Invoker, make_video, palm_model
from handspot.calibrate import cpu
from handspot.card import ModelCard
from handspot.errors import UserError, fail
from handspot.files import atomic_write_json
from handspot.run import DetectOptions, detect
from prep.samples import DEFAULT_SAMPLE

SOURCES = ("ego", "subhih", "asl", "fingers")


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    q1, med, q3 = statistics.quantiles(xs, n=4) if len(xs) > 1 else (xs[0],) * 3
    return med, q1, q3


def latencies(paths: dict[str, Path], rounds: int, warmup: int = 2, invokes: int = 5) -> dict:
    """``{name: (median, q1, q3)}`` ms, every contender interleaved round by round."""
    runners = {name: Invoker(p) for name, p in paths.items()}
    names = list(runners)
    for r in tqdm(range(rounds + warmup), desc="latency rounds", leave=False):
        for k in range(len(names)):  # the first contender rotates
            runners[names[(r + k) % len(names)]].turn(invokes, keep=r >= warmup)
    return {name: quartiles(run.times) for name, run in runners.items()}


def multi_fps(models: list[Path], video: Path, rounds: int, work: Path) -> dict[str, float]:
    fps: dict[str, list[float]] = {m.name: [] for m in models}
    for _ in tqdm(range(rounds), desc="detect multi rounds", leave=False):
        for model in models:
            options = DetectOptions(
                source=str(video),
                model=str(model),
                output=str(work / "out.mp4"),
                json=str(work / "out.jsonl"),
                num_workers=2,
                landmarks=False,  # the detectors' own speed (detect.hands_bench: the stage)
                track=False,
            )
            fps[model.name].append(detect(options, multi=True)["fps"])
    return {k: statistics.median(v) for k, v in fps.items()}


def browser_ms(model: Path, image: Path, calls: int = 30) -> float | None:
    """Median ms of the demo page's detect() (LiteRT.js, threads) on ``image``."""
    from webexport.browser import browser_page, chromium_ready
    from webexport.nodejs import node_ready
    from webexport.server import serve_in_background

    if not chromium_ready() or not node_ready() or not (model / "litert").is_dir():
        return None
    server, url = serve_in_background(model=model, port=0, extra={"media": image.parent})
    try:
        with browser_page() as page:
            page.goto(f"{url}index.html?runtime=litert-threads")
            page.wait_for_function("document.body.dataset.ready === '1'")
            times = page.evaluate(
                """async ([src, n]) => {
                    const img = new Image(); img.src = src; await img.decode();
                    const t = [];
                    for (let i = 0; i < n + 5; i++) {
                      const t0 = performance.now();
                      await window.handsDetector.detect(img);
                      if (i >= 5) t.push(performance.now() - t0);
                    }
                    return t;
                }""",
                [f"/media/{image.name}", calls],
            )
    finally:
        server.shutdown()
    return statistics.median(times)


def family(models: list[Path], rounds: int, frames: int, fps_rounds: int, browser: bool) -> dict:
    import cv2

    for m in models:
        if not (m / "model_int8.tflite").is_file():
            raise UserError(f"{m} has no model_int8.tflite (export it with pipelines.export)")
    paths = {}
    for m in models:
        paths[f"{m.name} od"] = m / "model_int8.tflite"
        if (m / "litert" / "model_int8.tflite").is_file():
            paths[f"{m.name} raw"] = m / "litert" / "model_int8.tflite"
        if (m / "litert" / "model_fp32.tflite").is_file():
            paths[f"{m.name} raw fp32"] = m / "litert" / "model_fp32.tflite"
    palm = palm_model()
    if palm is not None:
        paths["palm"] = palm
    lat = latencies(paths, rounds)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        video = make_video(work / "bench.mp4", frames, DEFAULT_SAMPLE)
        fps = multi_fps(models, video, fps_rounds, work) if fps_rounds else {}
        page = {}
        if browser:
            cap = cv2.VideoCapture(str(video))
            _, first = cap.read()
            cap.release()
            cv2.imwrite(str(work / "frame.png"), first)
            for m in tqdm(models, desc="LiteRT.js", leave=False):
                page[m.name] = browser_ms(m, work / "frame.png")
    rows = []
    for m in models:
        card = ModelCard.load(m)
        rows.append(
            {
                "model": m.name,
                "input": card.input_size[0],
                "anchors": card.litert.anchors if card.litert else None,
                "AP50": {s: card.eval[s].get("box_AP50") for s in SOURCES if s in card.eval},
                "int8_ms": lat[f"{m.name} od"],
                "raw_ms": lat.get(f"{m.name} raw"),
                "raw_fp32_ms": lat.get(f"{m.name} raw fp32"),
                "litertjs_ms": page.get(m.name),
                "multi_fps": fps.get(m.name),
                "int8_mb": round((m / "model_int8.tflite").stat().st_size / 2**20, 2),
            }
        )
    return {"rows": rows, "palm_ms": lat.get("palm"), "rounds": rounds, "frames": frames,
            "cpu": cpu()}  # fmt: skip


def table(result: dict) -> str:
    palm = result["palm_ms"]
    out = [
        f"CPU: {result['cpu']}",
        f"LiteRT 1 thread, {result['rounds']} interleaved rounds x 5 invokes (medians, IQR); "
        f"detect multi: 1280x720, {result['frames']} frames, mp4 + JSON written, 2 workers",
        "",
        "| model | input | anchors | AP50 ego / subhih / asl / fingers | int8 ms (IQR) | "
        "network only ms | float network ms | post-processing share | vs palm | LiteRT.js ms | "
        "multi FPS | int8 MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda v, f="{:.3f}": "-" if v is None else f.format(v)  # noqa: E731
    for r in result["rows"]:
        med, q1, q3 = r["int8_ms"]
        raw = r["raw_ms"][0] if r["raw_ms"] else None
        fp32 = r["raw_fp32_ms"][0] if r.get("raw_fp32_ms") else None
        share = None if raw is None else (med - raw) / med
        ap = " / ".join(fmt(r["AP50"].get(s)) for s in SOURCES)
        out.append(
            f"| {r['model']} | {r['input']} | {r['anchors'] or '-'} | {ap} | {med:.2f} "
            f"({q1:.2f}-{q3:.2f}) | {fmt(raw, '{:.2f}')} | {fmt(fp32, '{:.2f}')} | "
            f"{fmt(share, '{:.0%}')} | "
            f"{fmt(None if palm is None else med / palm[0], '{:.2f}')} | "
            f"{fmt(r['litertjs_ms'], '{:.1f}')} | {fmt(r['multi_fps'], '{:.1f}')} | "
            f"{r['int8_mb']} |"
        )
    if palm is not None:
        out.append(
            f"| MediaPipe palm_detection_full | 192 | 2016 | - | {palm[0]:.2f} "
            f"({palm[1]:.2f}-{palm[2]:.2f}) | - | - | - | 1.00 | - | - | - |"
        )
    else:
        out.append(
            "| MediaPipe palm_detection_full | skipped: the mediapipe wheel is unavailable |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m detect.sizes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--models", help="comma-separated model folders (default: exported/hands_ssd*)")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--fps-rounds", type=int, default=2, help="detect multi rounds (0: skip)")
    p.add_argument("--no-browser", action="store_true", help="skip the LiteRT.js column")
    p.add_argument("--json", type=Path, help="also write the raw results here")
    args = p.parse_args(argv)
    try:
        if args.rounds < 1 or args.frames < 1 or args.fps_rounds < 0:
            raise UserError("--rounds and --frames must be >= 1, --fps-rounds >= 0")
        if args.models:
            models = [Path(m) for m in args.models.split(",")]
        else:
            models = sorted(
                DEFAULT_MODEL.parent.glob("hands_ssd*"),
                key=lambda m: -ModelCard.load(m).input_size[0],
            )
        for m in models:
            ModelCard.load(m)  # an exported model folder, or one clear error
        result = family(models, args.rounds, args.frames, args.fps_rounds, not args.no_browser)
        if args.json:
            atomic_write_json(args.json, result)
    except UserError as e:
        return fail(str(e))
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
