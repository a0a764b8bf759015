"""The main job: detect hands with the shipped model on your video, camera or image folder.

    python -m detect.demo [--source video.mp4 | --source 0 | --source folder/]

Without --source it runs on an embedded default: the real EgoHands frames in
../shared/data/egohands-4videos when present, else frames it generates. Writes an annotated
video and JSON lines to data/demo/ and prints where they are.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.paths import DEFAULT_MODEL
from handspot.cli import run_cli
from handspot.run import DetectOptions
from pipelines.backends import BACKENDS
from prep.samples import DEFAULT_SAMPLE


def default_source(sample: Path) -> str:
    videos = sorted(p for p in sample.iterdir() if p.is_dir()) if sample.is_dir() else []
    if videos:
        return str(videos[0])
    from prep.fixtures import write_egohands

    root = Path("data/fixture-egohands")
    if not (root / "metadata.mat").is_file():
        write_egohands(root, frames_per_video=20)
    return str(next((root / "_LABELLED_SAMPLES").iterdir()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--source", help="video file, image folder or camera index")
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--out", type=Path, default=Path("data/demo"))
    args = p.parse_args(argv)
    source = args.source or default_source(DEFAULT_SAMPLE)
    print(f"source: {source}\nmodel:  {args.model}")
    video, lines = args.out / "detections.mp4", args.out / "detections.jsonl"
    options = DetectOptions(
        source=source, model=args.model, fps=10, output=str(video), json=str(lines)
    )
    code = run_cli(options, multi=True, backends=BACKENDS)
    if code == 0:
        print(f"wrote {video} and {lines}")
    return code


if __name__ == "__main__":
    sys.exit(main())
