"""Browser speed: every runtime of ours and handtrack.js in ONE headless Chromium page, interleaved.

    python -m webexport.bench [--model exported/hands_ssd320] [--rounds 20] [--reps 3]

Four runs of the page (webexport/web/bench.js), each interleaving its contenders round by round
(the starting one rotates; warm-up rounds dropped):
- detect(): a 1280x720 EgoHands frame (an image element) through the whole call: resize on a
  canvas, model, box decoding, NMS; handtrack.js: its graph, read-back and NMS. ms per call.
- video, twice: a looping 1280x720 VP8 clip in a video element, the EgoHands frames one after
  the other (a new moment each frame) and the moving-hands clip (continuous); per frame the
  browser's current frame is resized, detected and drawn with its boxes on a canvas (with the
  landmark stage: tracked). Frames per second per turn.
- ``--also``: a second model in the same page, boxes only (by default hands_ssd192, the
  family's smallest member, whose AP50 on the webcam sets matches the 320's; its card).
- the files alone, on each LiteRT.js build a browser may load (compat, without relaxed SIMD, as
  browsers lacking it load; relaxed SIMD on 1 thread; threads): the detector's int8 and fp32
  networks and the landmark lite and lite_int8 files, ms an invoke; the table says whether
  the page's files (int8, lite_int8) are the faster ones on every build.
Medians and IQR; the ratio is ours / handtrack.js in frames per second (targets: the default
runtime, LiteRT.js with threads, >= 10x boxes only and >= 5x with keypoints). handtrack.js
comes from its npm tarball (cached).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

import cv2
import numpy as np

from common.paths import DEFAULT_MODEL
from handspot.errors import UserError, fail
from handspot.files import atomic_write_json
from prep.samples import sample_frames
from webexport.browser import browser_page
from webexport.handtrack import MODEL_SUBDIR, fetch_package
from webexport.server import serve_in_background

DEFAULT_RUNTIME = "ours litert-threads int8"
SMALLEST = DEFAULT_MODEL.parent / "hands_ssd192"
BOXES_ONLY = " (boxes only)"  # a second model's row ends with it
TARGETS = {DEFAULT_RUNTIME: 10.0, f"{DEFAULT_RUNTIME} + landmarks": 5.0}  # video FPS, x htj


RUNS = {  # the page runs: a still frame, two looping videos, the files on each build
    "detect_ms": "image=/media/frame.jpg",
    "video_fps": "video=/media/clip.webm",
    "moving_fps": "video=/media/moving.webm",
    "builds_ms": "builds=1",
}
PAGE_FILES = {"network": ("int8", "fp32"), "landmarks": ("lite_int8", "lite")}  # page's first


def write_webm(path: Path, frames_bgr) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), 30, (1280, 720))
    if not writer.isOpened():
        raise UserError("OpenCV cannot write a VP8 .webm here (needed for the video run)")
    for frame in frames_bgr:
        writer.write(frame)
    writer.release()


def write_media(folder: Path, frames: list[np.ndarray]) -> None:
    """The still frame, the EgoHands frames as a clip (a new moment each frame) and the
    moving-hands clip (2 held-out webcam hands moving over a real background, continuous)."""
    from prep.samples import moving_hands_clip

    cv2.imwrite(str(folder / "frame.jpg"), frames[0])
    write_webm(folder / "clip.webm", frames)
    clip = moving_hands_clip(frames=150)
    if clip is None:
        raise UserError("the shared data (EgoHands sample, webcam sets) is needed for the clips")
    write_webm(folder / "moving.webm", (cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in clip[0]))


def also_name(also: Path) -> str:
    """The bench's row for a second model, boxes only."""
    return f"ours {also.name} litert-threads int8{BOXES_ONLY}"


def bench(
    model: Path, rounds: int = 20, reps: int = 3, warmup: int = 2, also: Path | None = None
) -> dict:
    """Every page run; ``{"detect_ms": result, "video_fps": result, "moving_fps": result,
    "builds_ms": result}``.
    ``also``: a second exported model, boxes only (e.g. the family's smallest member)."""
    htj = fetch_package() / MODEL_SUBDIR
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        write_media(Path(tmp), sample_frames(60))
        extra = {"media": tmp, "htj": htj, **({"also": also} if also else {})}
        server, url = serve_in_background(model=model, port=0, extra=extra)
        second = f"&also=/also/&alsoName={quote(also_name(also))}" if also else ""
        try:
            for key, query in RUNS.items():
                with browser_page(timeout_s=1800) as page:
                    page.goto(
                        f"{url}bench.html?{query}&htj=/htj/model.json"
                        f"&rounds={rounds}&reps={reps}&warmup={warmup}{second}"
                    )
                    page.wait_for_function("window.benchResult !== undefined")
                    result = page.evaluate("window.benchResult")
                if "error" in result:
                    raise UserError(f"browser bench failed: {result['error']}")
                results[key] = result
        finally:
            server.shutdown()
    return results


def table(results: dict) -> str:
    lines = []
    det = results["detect_ms"]
    ref_ms = next(r for r in det["rows"] if r["name"].startswith("handtrack"))["median"]
    lines.append(
        f"headless Chromium, wasm, cross-origin isolated: {det['isolated']}; "
        f"{det['rounds']} rounds x {det['reps']} calls after {det['warmup']} warm-up rounds, "
        "contenders interleaved"
    )
    lines.append("")
    lines.append("detect() on a 1280x720 frame (resize + model + decode + NMS)")
    lines.append("")
    lines.append("| runtime | what runs | median ms | IQR ms | FPS | x handtrack.js FPS |")
    lines.append("|---|---|---|---|---|---|")
    for r in det["rows"]:
        lines.append(
            f"| {r['name']} | {r['detail']} | {r['median']:.1f} | {r['q1']:.1f}-{r['q3']:.1f} "
            f"| {1000 / r['median']:.1f} | {ref_ms / r['median']:.2f} |"
        )
    titles = {
        "video_fps": "the EgoHands frames as a looping clip (a new moment each frame)",
        "moving_fps": "the moving-hands clip (continuous: 2 hands moving over a background)",
    }
    for key, title in titles.items():
        lines += ["", f"end to end on a playing 1280x720 video, {title}: frame + resize + "
                  "model + NMS + draw", "", "| runtime | median FPS | IQR FPS | x handtrack.js |",
                  "|---|---|---|---|"]  # fmt: skip
        rows = results[key]["rows"]
        ref = next(r for r in rows if r["name"].startswith("handtrack"))["median"]
        for r in rows:
            lines.append(
                f"| {r['name']} | {r['median']:.1f} | {r['q1']:.1f}-{r['q3']:.1f} "
                f"| {r['median'] / ref:.2f} |"
            )
        targets = {**TARGETS, **{r["name"]: TARGETS[DEFAULT_RUNTIME] for r in rows
                                 if r["name"].endswith(BOXES_ONLY)}}  # fmt: skip
        for name, target in targets.items():
            ours = next(r for r in rows if r["name"] == name)["median"] / ref
            lines.append(f"{name} / handtrack.js: {ours:.2f}x (target >= {target:g}x: "
                         f"{'ok' if ours >= target else 'MISS'})")  # fmt: skip
    return "\n".join(lines + builds_table(results["builds_ms"]["rows"]))


def builds_table(rows: list[dict]) -> list[str]:
    """Median ms (IQR) of each file on each LiteRT.js build, and whether the page's files are
    the faster of each pair on every build."""
    builds = list(dict.fromkeys(r["build"] for r in rows))
    files = list(dict.fromkeys(r["file"] for r in rows))
    ms = {(r["build"], r["file"]): r for r in rows}
    lines = [
        "",
        "the files alone on each LiteRT.js build (ms an invoke, median (IQR); compat: what a "
        "browser without relaxed SIMD loads)",
        "",
        "| build | threads | " + " | ".join(files) + " |",
        "|---|---|" + "---|" * len(files),
    ]
    for build in builds:
        cells = [ms[build, f] for f in files]
        threads = cells[0]["detail"].rsplit(", ", 1)[-1]
        cells = [f"{c['median']:.1f} ({c['q1']:.1f}-{c['q3']:.1f})" for c in cells]
        lines.append(f"| {build} | {threads} | " + " | ".join(cells) + " |")
    for kind, (page, other) in PAGE_FILES.items():
        median = {(b, f): ms[b, f"{kind} {f}"]["median"] for b in builds for f in (page, other)}
        slower = [b for b in builds if median[b, page] > median[b, other]]
        verdict = f"slower on {', '.join(slower)}" if slower else "the faster on every build"
        lines.append(f"the page's {kind} file, {page} (against {other}): {verdict}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m webexport.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--rounds", type=int, default=20, help="measured rounds (default 20)")
    p.add_argument("--reps", type=int, default=3, help="calls per contender per round")
    p.add_argument("--warmup", type=int, default=2, help="rounds dropped first")
    p.add_argument(
        "--also",
        type=Path,
        default=SMALLEST if SMALLEST.is_dir() else None,
        help="a second exported model, boxes only (default: the family's smallest member, "
        "as accurate on webcam pictures; 'none' leaves it out)",
    )
    p.add_argument("--json", type=Path, help="also write the raw results here")
    args = p.parse_args(argv)
    also = None if args.also is None or str(args.also) == "none" else args.also
    try:
        if min(args.rounds, args.reps) < 1 or args.warmup < 0:
            raise UserError("--rounds and --reps must be >= 1, --warmup >= 0")
        if also is not None and not (also / "litert" / "model_int8.tflite").is_file():
            raise UserError(f"--also {also}: no litert/model_int8.tflite (an exported model)")
        results = bench(args.model, args.rounds, args.reps, args.warmup, also)
        if args.json:
            atomic_write_json(args.json, results)
    except UserError as e:
        return fail(str(e))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
