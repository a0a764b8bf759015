"""MediaPipe in a Python of its own. mediapipe 0.10.21 pins numpy < 2 and protobuf < 5 and brings
its own OpenCV build, so it cannot share the project's environment: the project makes that
environment itself on first use (a venv in the cache folder, from
pipelines/mediapipe-requirements.txt, about 1 GB and a minute), and talks to a worker process in
it over pipes.

    with MediaPipeHands() as hands:      # MediaPipe Hands, its own palm + landmark pipeline
        found = hands.detect(rgb)        # Detections: landmark boxes, keypoints, handedness

    write_metadata("exported/hands_ssd320/model_int8.tflite", ["hand"])   # MediaPipe's writer
    detector = load_detector("exported/hands_ssd320", "mediapipe")  # pipelines.backends

Images go to the worker as raw RGB bytes; results come back as JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np

from common.cache import cache_lock
from common.paths import CACHE_DIR
from handspot.artifact import ArtifactDetector
from handspot.detections import Detections
from handspot.detector import Detector
from handspot.errors import UserError

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
    with cache_lock(ENV.name):
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
    """One worker process in MediaPipe's environment: ``call(op, image, **options)``.
    ``cpus``: the CPUs it may run on (e.g. ``{0}`` for a one-thread comparison; MediaPipe Tasks
    in Python has no thread option)."""

    def __init__(self, cpus: set[int] | None = None):
        env = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3"}
        self._proc = subprocess.Popen(
            [str(python()), str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        if cpus:
            os.sched_setaffinity(self._proc.pid, cpus)

    def call(self, op: str, image: np.ndarray | None = None, **options) -> dict:
        image = np.zeros(0, np.uint8) if image is None else np.ascontiguousarray(image, np.uint8)
        header = {"op": op, "shape": list(image.shape), **options}
        try:
            self._proc.stdin.write((json.dumps(header) + "\n").encode() + image.tobytes())
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        except BrokenPipeError:
            line = b""
        if not line:
            raise UserError("MediaPipe's worker process ended (see pipelines/mediapipe_worker.py)")
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


# ---------------------------------------------------------------- MediaPipe Tasks

# MediaPipe's names for the four outputs of the TFLite detection post-processing op -> ours
TASKS_OUTPUTS = {
    "location": "detection_boxes",
    "category": "detection_classes",
    "score": "detection_scores",
    "number of detections": "num_detections",
}


RAW_OUTPUTS = {"location": "box_encodings", "score": "scores"}  # the same, litert/ models


def write_metadata(
    path: str | Path,
    labels: list[str],
    *,
    mean: float = 127.5,
    std: float = 127.5,
    anchors: str | Path | None = None,
    scales_xywh: list[float] | None = None,
) -> dict:
    """Write MediaPipe's object-detector metadata (normalisation, labels, the outputs) into the
    TFLite file at ``path`` (atomically), so MediaPipe Tasks' ObjectDetector and the TFLite
    Task Library load it. With ``anchors`` (anchors.bin) and the box coder's ``scales_xywh``:
    a raw-output network (``litert/``), which MediaPipe decodes and NMSes itself. The writer
    pairs outputs by tensor order; this checks the pairing by the signature's names and
    refuses a file where they disagree. Returns the metadata."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    order = output_order(path)  # the network's, which metadata leaves as it is
    request = {"mean": [mean], "std": [std], "labels": list(labels)}
    names = TASKS_OUTPUTS
    if anchors is not None:
        names = RAW_OUTPUTS
        first = "SCORE_LOCATION" if order[0] == "scores" else "LOCATION_SCORE"
        request.update(anchors=str(Path(anchors).resolve()), scales_xywh=scales_xywh, order=first)
    try:
        with Worker() as worker:
            reply = worker.call("metadata", model=str(path.resolve()), out=str(tmp.resolve()),
                                **request)  # fmt: skip
        meta = json.loads(reply["json"])
        (graph,) = meta["subgraph_metadata"]
        named = [names.get(t["name"]) for t in graph["output_tensor_metadata"]]
        if named != order:
            raise UserError(
                f"{path}: MediaPipe's writer paired the outputs {named} with {order}; "
                "this file's outputs are not in the order the writer assumes"
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return meta


def output_order(path: Path) -> list[str]:
    """A TFLite file's output names (its signature's) in tensor order; one error for a file
    LiteRT cannot load."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=str(path))
        details = interpreter.get_signature_runner().get_output_details()
    except (ValueError, RuntimeError) as e:
        raise UserError(f"{path}: not a TFLite model LiteRT can load ({e})") from None
    by_index = {v["index"]: k for k, v in details.items()}
    return [by_index[d["index"]] for d in interpreter.get_output_details()]


def has_metadata(path: str | Path) -> bool:
    """Whether the TFLite file carries model metadata (the flatbuffer's TFLITE_METADATA entry)."""
    return b"TFLITE_METADATA" in Path(path).read_bytes()


class TasksDetector(Worker, ArtifactDetector):
    """MediaPipe Tasks' ObjectDetector (the C++ task Android, iOS and the web run) on the
    folder's TFLite file with metadata, in MediaPipe's environment. ``video``: its VIDEO
    running mode (frames in order, timestamps 33 ms apart); ``cpus`` as for Worker;
    ``last_ms``: the last detect()'s time inside MediaPipe's process."""

    def __init__(self, model_dir, artifact, card, backend="mediapipe", *, video: bool = False,
                 cpus: set[int] | None = None, **options):  # fmt: skip
        ArtifactDetector.__init__(self, model_dir, artifact, card, backend, **options)
        path = self.artifact
        if not has_metadata(path):
            raise UserError(
                f"{path} has no TFLite metadata, which MediaPipe Tasks needs; re-export it or "
                f"run python -m pipelines.export --metadata {self.model_dir}"
            )
        Worker.__init__(self, cpus)
        self.options = {
            "model": str(path.resolve()),
            "video": video,
            "score_threshold": max(self.score_threshold, card.postprocess.min_score),
            "max_results": card.postprocess.max_detections,
        }
        self._timestamp = 0
        self.last_ms = 0.0

    def detect(self, image: np.ndarray) -> Detections:
        image = self._check(image)
        self._timestamp += 33
        found = self.call("objects", image, timestamp_ms=self._timestamp, **self.options)
        self.last_ms = found["ms"]  # detect() alone, without the pipe to the worker
        return Detections.from_tasks(found["objects"], self.labels).above(self.score_threshold)
