"""Browser speed: every runtime of ours and handtrack.js in ONE headless Chromium page, interleaved.

    python -m webexport.bench [--model exported/hands_ssd320] [--rounds 20] [--reps 3]

Two runs of the page (webexport/web/bench.js), each interleaving the contenders round by round
(the starting one rotates; warm-up rounds dropped):
- detect(): a 1280x720 EgoHands frame (an image element) through the whole call: resize on a
  canvas, model, box decoding, NMS; handtrack.js: its graph, read-back and NMS. ms per call.
- video: a looping 1280x720 VP8 clip in a video element; per frame the browser's current frame
  is resized, detected and drawn with its boxes on a canvas. Frames per second per turn.
Medians and IQR; the ratio is ours / handtrack.js in frames per second (target: >= 5x for the
default runtime, LiteRT.js with threads). handtrack.js comes from its npm tarball (cached).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from common.paths import DEFAULT_MODEL
from handspot.errors import UserError, fail
from handspot.files import atomic_write_json
from prep.samples import sample_frames
from webexport.browser import browser_page
from webexport.handtrack import MODEL_SUBDIR, fetch_package
from webexport.server import serve_in_background

TARGET = 5.0
DEFAULT_RUNTIME = "ours litert-threads int8"


def write_media(folder: Path, frames: list[np.ndarray]) -> None:
    cv2.imwrite(str(folder / "frame.jpg"), frames[0])
    writer = cv2.VideoWriter(
        str(folder / "clip.webm"), cv2.VideoWriter_fourcc(*"VP80"), 30, (1280, 720)
    )
    if not writer.isOpened():
        raise UserError("OpenCV cannot write a VP8 .webm here (needed for the video run)")
    for frame in frames:
        writer.write(frame)
    writer.release()


def bench(model: Path, rounds: int = 20, reps: int = 3, warmup: int = 2) -> dict:
    """Both page runs; ``{"detect_ms": result, "video_fps": result}``."""
    htj = fetch_package() / MODEL_SUBDIR
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        write_media(Path(tmp), sample_frames(60))
        server, url = serve_in_background(model=model, port=0, extra={"media": tmp, "htj": htj})
        try:
            for query in ("image=/media/frame.jpg", "video=/media/clip.webm"):
                with browser_page(timeout_s=1800) as page:
                    page.goto(
                        f"{url}bench.html?{query}&htj=/htj/model.json"
                        f"&rounds={rounds}&reps={reps}&warmup={warmup}"
                    )
                    page.wait_for_function("window.benchResult !== undefined")
                    result = page.evaluate("window.benchResult")
                if "error" in result:
                    raise UserError(f"browser bench failed: {result['error']}")
                results[result["mode"]] = result
        finally:
            server.shutdown()
    return results


def table(results: dict) -> str:
    lines = []
    det, vid = results["detect_ms"], results["video_fps"]
    ref_ms = next(r for r in det["rows"] if r["name"].startswith("handtrack"))["median"]
    ref_fps = next(r for r in vid["rows"] if r["name"].startswith("handtrack"))["median"]
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
    lines.append("")
    lines.append("end to end on a playing 1280x720 video (frame + resize + model + NMS + draw)")
    lines.append("")
    lines.append("| runtime | median FPS | IQR FPS | x handtrack.js |")
    lines.append("|---|---|---|---|")
    for r in vid["rows"]:
        lines.append(
            f"| {r['name']} | {r['median']:.1f} | {r['q1']:.1f}-{r['q3']:.1f} "
            f"| {r['median'] / ref_fps:.2f} |"
        )
    ours = next(r for r in vid["rows"] if r["name"] == DEFAULT_RUNTIME)["median"] / ref_fps
    lines.append("")
    lines.append(
        f"default runtime ({DEFAULT_RUNTIME}) / handtrack.js, video FPS: {ours:.2f}x "
        f"(target >= {TARGET:g}x: {'ok' if ours >= TARGET else 'MISS'})"
    )
    return "\n".join(lines)


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
    p.add_argument("--json", type=Path, help="also write the raw results here")
    args = p.parse_args(argv)
    try:
        if min(args.rounds, args.reps) < 1 or args.warmup < 0:
            raise UserError("--rounds and --reps must be >= 1, --warmup >= 0")
        results = bench(args.model, args.rounds, args.reps, args.warmup)
        if args.json:
            atomic_write_json(args.json, results)
    except UserError as e:
        return fail(str(e))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
