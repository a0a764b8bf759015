"""Single-threaded hand detection on a video file, image folder, image or camera, with every
backend of the workflow (``--backend saved_model``, ``tfjs`` too).

python detect/detect_single_threaded.py --source video.mp4 --output out.mp4 --json out.jsonl
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handspot.cli import main
from pipelines.backends import BACKENDS

if __name__ == "__main__":
    sys.exit(main(multi=False, backends=BACKENDS))
