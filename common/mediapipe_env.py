"""MediaPipe in a Python of its own. mediapipe 0.10.21 pins numpy < 2 and protobuf < 5 and brings
its own OpenCV build, so it cannot share the project's environment: the project makes that
environment itself on first use (a venv in the cache folder, from common/mediapipe-requirements.txt,
about 1 GB and a minute), and talks to a worker process in it over pipes.

    with MediaPipeHands() as hands:      # MediaPipe Hands, its own palm + landmark pipeline
        found = hands.detect(rgb)        # Detections: landmark boxes, keypoints, handedness

Images go to the worker as raw RGB bytes; results come back as JSON.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np

from common import CACHE_DIR, UserError
from common.backends import Detector
from common.detections import Detections

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "mediapipe-requirements.txt"
WORKER = HERE / "mediapipe_worker.py"
ENV = CACHE_DIR / "mediapipe-0.10.21-env"


def python() -> Path:
    """The environment's interpreter, made first if need be (one process at a time)."""
    exe = ENV / "bin" / "python"
    stamp = ENV / ".installed"
    want = REQUIREMENTS.read_text()
    if stamp.is_file() and stamp.read_text() == want and exe.is_file():
        return exe
    ENV.parent.mkdir(parents=True, exist_ok=True)
    with open(ENV.parent / f".{ENV.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text() == want and exe.is_file():
            return exe
        print(f"creating MediaPipe's environment in {ENV} (once)", file=sys.stderr)
        shutil.rmtree(ENV, ignore_errors=True)
        venv.EnvBuilder(with_pip=True).create(ENV)
        done = subprocess.run(
            [str(exe), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
             str(REQUIREMENTS)],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            shutil.rmtree(ENV, ignore_errors=True)
            raise UserError(f"cannot install MediaPipe's environment: {done.stderr.strip()[-400:]}")
        stamp.write_text(want)
    return exe


class Worker:
    """One worker process in MediaPipe's environment: ``call(op, image, **options)``."""

    def __init__(self):
        env = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3"}
        self._proc = subprocess.Popen(
            [str(python()), str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )

    def call(self, op: str, image: np.ndarray, **options) -> dict:
        image = np.ascontiguousarray(image, np.uint8)
        header = {"op": op, "shape": list(image.shape), **options}
        try:
            self._proc.stdin.write((json.dumps(header) + "\n").encode() + image.tobytes())
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        except BrokenPipeError:
            line = b""
        if not line:
            raise UserError("MediaPipe's worker process ended (see common/mediapipe_worker.py)")
        reply = json.loads(line)
        if "error" in reply:
            raise UserError(f"MediaPipe: {reply['error']}")
        return reply

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=10)
        if self._proc.poll() is None:
            self._proc.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class MediaPipeHands(Worker, Detector):
    """MediaPipe Hands (legacy ``solutions.hands``: its palm detector, then its landmark model),
    behind the detector interface: a box a hand, from its 21 keypoints (their extent grown by
    ``pad`` on each side), scored by its handedness confidence (the API gives no detection
    score); keypoints in pixels; ``handedness`` the person's own hand (``mirrored`` as in the
    landmark stage). ``video``: MediaPipe's tracking mode (frames in order)."""

    backend = "mediapipe_hands"
    labels = {1: "hand"}  # noqa: RUF012 (a class constant)

    def __init__(
        self,
        *,
        max_hands: int = 4,
        complexity: int = 1,
        min_confidence: float = 0.5,
        pad: float = 0.08,
        mirrored: bool = False,
        video: bool = False,
        score_threshold: float = 0.0,
    ):
        Worker.__init__(self)
        self.options = {
            "max_hands": max_hands,
            "complexity": complexity,
            "min_confidence": min_confidence,
            "video": video,
        }
        self.pad, self.mirrored, self.score_threshold = pad, mirrored, score_threshold

    def detect(self, image: np.ndarray) -> Detections:
        image = self._check(image)
        hands = self.call("hands", image, **self.options)["hands"]
        keypoints = np.array([h["keypoints"] for h in hands], np.float32).reshape(-1, 21, 3)
        lo, hi = keypoints[:, :, :2].min(axis=1), keypoints[:, :, :2].max(axis=1)
        margin = (hi - lo) * self.pad
        h, w = image.shape[:2]
        boxes = np.clip(np.concatenate([lo - margin, hi + margin], axis=1), 0, [w, h, w, h])
        # MediaPipe's label assumes a mirrored image; the person's own hand otherwise swaps it
        swap = {"Left": "right", "Right": "left"}
        labels = [h["label"].lower() if self.mirrored else swap[h["label"]] for h in hands]
        scores = np.array([h["score"] for h in hands], np.float32)
        return Detections(
            boxes,
            scores,
            np.ones(len(hands)),
            ("hand",) * len(hands),
            keypoints=keypoints,
            data={
                "handedness": np.array(labels, dtype="<U5"),
                "handedness_score": scores,
            },
        ).above(self.score_threshold)
