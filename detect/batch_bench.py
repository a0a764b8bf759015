"""detect.batch's throughput on this machine: videos a minute through Beam's DirectRunner with 1
and 2 worker processes, against the plain loop (detect_multi_threaded once a video), and the
overhead a video.

    python -m detect.batch_bench [--videos 8] [--frames 150] [--rounds 3]

The videos are the moving-hands clip (2 held-out webcam hands over a real background, 1280x720)
written ``--videos`` times. Every contender runs the whole set into a fresh folder, JSON only,
the contenders interleaved round by round (the first turn rotates; one warm-up round dropped):
median and range of videos a minute. Overhead a video: the batch's wall time a video less the
time its workers spent inside detect on it (the summary's seconds), each worker's share.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from handspot.calibrate import cpu
from handspot.errors import UserError, fail

ROOT = Path(__file__).resolve().parents[1]
CONTENDERS = ("plain loop (detect_multi_threaded a video)", "batch, 1 worker", "batch, 2 workers")


def make_videos(folder: Path, count: int, frames: int) -> list[Path]:
    from detect.hands_bench import write_clip

    folder.mkdir(parents=True, exist_ok=True)
    first = write_clip(folder / "v00.mp4", frames)
    if first is None:
        raise UserError("the shared data (EgoHands sample, webcam sets) is needed for the clip")
    videos = [first]
    for k in range(1, count):
        videos.append(folder / f"v{k:02d}.mp4")
        shutil.copy(first, videos[-1])
    return videos


def run(name: str, videos: list[Path], out: Path) -> tuple[float, float]:
    """Wall seconds for the whole set, and the seconds spent inside detect (batch only)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    start = time.perf_counter()
    if name.startswith("plain"):
        for video in videos:
            check([sys.executable, "detect/detect_multi_threaded.py", "--source", str(video),
                   "--json", str(out / f"{video.stem}.jsonl")])  # fmt: skip
        return time.perf_counter() - start, 0.0
    workers = name.split(", ")[1].split()[0]
    check([sys.executable, "-m", "detect.batch", "--input", str(videos[0].parent / "*.mp4"),
           "--out", str(out), "--direct_num_workers", workers])  # fmt: skip
    wall = time.perf_counter() - start
    rows = json.loads((out / "_summary.json").read_text())["inputs"].values()
    return wall, sum(r["seconds"] for r in rows) / int(workers)


def check(args: list[str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise UserError(f"{' '.join(args[:3])}: {done.stderr.strip()[-300:]}")


def bench(count: int, frames: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {c: {"vpm": [], "overhead": []} for c in CONTENDERS}
    with tempfile.TemporaryDirectory() as tmp:
        videos = make_videos(Path(tmp) / "videos", count, frames)
        for r in range(rounds + 1):
            for k in range(len(CONTENDERS)):
                name = CONTENDERS[(r + k) % len(CONTENDERS)]
                wall, inside = run(name, videos, Path(tmp) / "out")
                if r:
                    out[name]["vpm"].append(60 * count / wall)
                    if inside:
                        out[name]["overhead"].append((wall - inside) / count)
    return out


def table(result: dict, count: int, frames: int) -> str:
    lines = [f"CPU: {cpu()}", f"{count} videos of {frames} frames (1280x720, 2 hands), JSON "
             "written, interleaved rounds", "",
             "| contender | videos a minute (median, range) | x plain loop | overhead a video |",
             "|---|---|---|---|"]  # fmt: skip
    base = statistics.median(result[CONTENDERS[0]]["vpm"])
    for name, r in result.items():
        med = statistics.median(r["vpm"])
        over = f"{statistics.median(r['overhead']):.2f} s" if r["overhead"] else "-"
        lines.append(f"| {name} | {med:.1f} ({min(r['vpm']):.1f}-{max(r['vpm']):.1f}) | "
                     f"{med / base:.2f} | {over} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m detect.batch_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    try:
        if min(args.videos, args.frames, args.rounds) < 1:
            raise UserError("--videos, --frames and --rounds must be at least 1")
        result = bench(args.videos, args.frames, args.rounds)
    except UserError as e:
        return fail(str(e))
    print(table(result, args.videos, args.frames))
    return 0


if __name__ == "__main__":
    sys.exit(main())
