"""Multi-threaded hand detection (a capture thread, workers, an ordered writer) on a video file,
image folder, image or camera, with every backend of the workflow (``--backend saved_model``,
``tfjs`` too).

python detect/detect_multi_threaded.py --source video.mp4 --num-workers 2 --output out.mp4
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handspot.cli import main
from pipelines.backends import BACKENDS

if __name__ == "__main__":
    sys.exit(main(multi=True, backends=BACKENDS))
