"""The main job for now: prep the real EgoHands sample (or a generated EgoHands-shaped tree when
the sample is absent), then draw a few frames back from the written TFRecords.

    python -m prep.demo [--out data/demo]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prep import egohands_clean
from prep.fixtures import write_egohands
from prep.samples import DEFAULT_SAMPLE


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    p.add_argument("--out", type=Path, default=Path("data/demo"))
    args = p.parse_args(argv)
    if (args.sample / "boxes.csv").is_file():
        source = args.sample
        print(f"source: real EgoHands sample {source}")
    else:
        source = Path("data/fixture-egohands")
        if not (source / "metadata.mat").is_file():
            write_egohands(source, frames_per_video=20)
        print(f"source: {args.sample} not found; using a generated EgoHands-shaped tree {source}")
    return egohands_clean.main(["--source", str(source), "--out", str(args.out), "--preview", "2"])


if __name__ == "__main__":
    sys.exit(main())
