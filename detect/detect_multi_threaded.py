"""Multi-threaded hand detection on a video file, image folder, image or camera.

python detect/detect_multi_threaded.py --source video.mp4 --output out.mp4 --json out.jsonl
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detect.run import main

if __name__ == "__main__":
    sys.exit(main(multi=True))
