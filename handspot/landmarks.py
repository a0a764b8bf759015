"""The landmark stage: on each detected hand, MediaPipe's hand landmark model (Apache-2.0, from
the package's ``models/``) gives 21 keypoints, a hand-presence score and handedness; the detector's
box and score are then fused with them (a box on a face or a head shows no hand: its score
falls to a fraction of the detector's).

    landmarker = HandLandmarker(load_detector(SHIPPED_MODEL))
    det = landmarker.detect(rgb)   # keypoints (N, 21, 3), data: handedness, presence, ...

How a hand is cropped: a square region of interest (``Roi``) around the box, upright at first;
with ``passes=2``, where the first pass finds the hand turned (``turn`` degrees), the crop is
taken again, turned so that the wrist -> middle-finger direction points up (the model expects an
upright hand, as MediaPipe feeds it), from the first pass's keypoints (as MediaPipe's tracking
does from the last frame's). Keypoints are pixels of the
image; ``z`` is MediaPipe's relative depth (wrist 0, smaller is nearer), in pixels as MediaPipe
Hands reports it (its ``z`` times the image width).

Handedness is the person's own hand. MediaPipe's labels assume a mirrored (selfie) image; a
file or a camera frame is not mirrored, so its labels are swapped unless ``mirrored`` is set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from handspot.assets import LANDMARK_MODELS, landmark_model
from handspot.calibrate import pick_landmarks
from handspot.decode import nms
from handspot.detections import Detections, box_iou
from handspot.detector import Detector
from handspot.errors import UserError
from handspot.handedness import HandednessOptions, other, unsure_of_pair
from handspot.masks import Masker
from handspot.options import option

SIZE = 224  # the model's input side
Z_SCALE = 0.4  # MediaPipe's normalize_z for hands: its z is the model's raw z / 0.4
WRIST, INDEX_MCP, MIDDLE_MCP, RING_MCP = 0, 5, 9, 13
# The landmarks MediaPipe takes a hand's extent from for the next crop (the palm and the first
# finger joints: fingertips wave too much).
PALM = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)


@dataclass(frozen=True)
class Roi:
    """A square crop of an image: centre and side in pixels, and the hand's up direction as an
    angle (radians, 0: fingers up; positive: turned clockwise on the image)."""

    cx: float
    cy: float
    size: float
    angle: float = 0.0

    @classmethod
    def from_box(cls, box: Sequence[float], scale: float) -> Roi:
        """Upright, around a detector's box (xyxy), ``scale`` times its longer side."""
        x0, y0, x1, y1 = box
        return cls((x0 + x1) / 2, (y0 + y1) / 2, scale * max(x1 - x0, y1 - y0, 1.0))

    @classmethod
    def from_keypoints(cls, points: np.ndarray, scale: float = 2.0, shift: float = -0.1) -> Roi:
        """MediaPipe's next crop from 21 keypoints (``HandLandmarksToRectCalculator`` then
        ``RectTransformationCalculator``): turned by the wrist -> middle-finger direction, around
        the palm's extent, ``scale`` times its longer side, moved ``shift`` of its height towards
        the fingers."""
        xy = np.asarray(points, np.float64)[:, :2]
        knuckles = (xy[INDEX_MCP] + xy[RING_MCP]) / 2
        tip = (knuckles + xy[MIDDLE_MCP]) / 2
        dx, dy = tip - xy[WRIST]
        angle = math.atan2(dx, -dy)  # 0 when the tip is straight above the wrist
        up = np.array([math.sin(angle), -math.cos(angle)])
        right = np.array([-up[1], up[0]])
        palm = xy[list(PALM)]
        u, v = palm @ right, palm @ -up  # the palm in the hand's own axes
        width, height = u.max() - u.min(), v.max() - v.min()
        centre = right * (u.max() + u.min()) / 2 - up * (v.max() + v.min()) / 2
        centre = centre + up * (-shift) * height
        return cls(float(centre[0]), float(centre[1]), scale * max(width, height, 1.0), angle)

    def crop_to_image(self) -> np.ndarray:
        """The 2x3 affine matrix from crop pixels (0..SIZE) to image pixels."""
        s = self.size / SIZE
        c, n = math.cos(self.angle), math.sin(self.angle)
        right, down = np.array([c, n]) * s, np.array([-n, c]) * s
        origin = np.array([self.cx, self.cy]) - (right + down) * SIZE / 2
        return np.array([[right[0], down[0], origin[0]], [right[1], down[1], origin[1]]])

    def image_to_crop(self) -> np.ndarray:
        return cv2.invertAffineTransform(self.crop_to_image())

    def bounds(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The pixels the crop reads (its turned square's extent, one pixel more for the
        bilinear neighbours), clipped to a ``width`` x ``height`` image: x0, y0, x1, y1."""
        half = self.size * (abs(math.cos(self.angle)) + abs(math.sin(self.angle))) / 2 + 1
        x0, y0 = max(math.floor(self.cx - half), 0), max(math.floor(self.cy - half), 0)
        x1 = min(math.ceil(self.cx + half) + 1, width)
        y1 = min(math.ceil(self.cy + half) + 1, height)
        return x0, y0, max(x1, x0), max(y1, y0)


def crop_pixels(image: np.ndarray, roi: Roi, out: np.ndarray | None = None) -> np.ndarray:
    """``roi`` of ``image`` as SIZE x SIZE pixels (bilinear, black outside the image), into
    ``out`` where given. The pixels it reads are copied first, row by row: a turned crop read
    straight from a frame fresh from memory waits on a cache line at every step (0.42 -> 0.2
    ms for a 300-pixel crop of a 1280x720 frame)."""
    x0, y0, x1, y1 = roi.bounds(image.shape[1], image.shape[0])
    matrix = roi.image_to_crop()
    if x1 > x0 and y1 > y0:
        image = np.ascontiguousarray(image[y0:y1, x0:x1])
        matrix[:, 2] += matrix[:, :2] @ (x0, y0)  # the same crop, from the copied pixels
    return cv2.warpAffine(image, matrix, (SIZE, SIZE), dst=out, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)  # fmt: skip


@dataclass
class Hand:
    """What the landmark model says about one crop."""

    keypoints: np.ndarray  # (21, 3): x, y pixels of the image, z depth in the same scale
    presence: float  # the model's hand-presence score, 0..1
    left: float  # the model's raw handedness: P("Left") for a mirrored (selfie) image
    roi: Roi

    def p_left(self, mirrored: bool) -> float:
        """The probability that this is the person's own left hand."""
        return self.left if mirrored else 1.0 - self.left

    def handedness(self, mirrored: bool) -> tuple[str, float]:
        """The person's own hand and its score."""
        left = self.p_left(mirrored)
        return ("left", left) if left >= 0.5 else ("right", 1.0 - left)

    def box(self, pad: float) -> np.ndarray:
        """The keypoints' extent (xyxy), grown by ``pad`` of its size on each side."""
        lo, hi = self.keypoints[:, :2].min(axis=0), self.keypoints[:, :2].max(axis=0)
        margin = (hi - lo) * pad
        return np.concatenate([lo - margin, hi + margin])


class LandmarkModel:
    """MediaPipe's hand landmark model on LiteRT (``lite``, ``full``, or ``lite_int8``, the lite
    model quantized by ``pipelines.quantize_landmarks``; ``auto``: the faster of lite and
    lite_int8 on this CPU, ``handspot.calibrate``), one crop at a time."""

    def __init__(self, variant: str = "auto", num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        if variant == "auto":
            variant = pick_landmarks(num_threads)[0]
        if variant not in LANDMARK_MODELS:
            raise UserError(f"landmark model {variant!r}: choose one of {sorted(LANDMARK_MODELS)}")
        self.variant = variant
        self.path = landmark_model(variant)
        self._interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        out = {d["name"]: d["index"] for d in self._interpreter.get_output_details()}
        # landmarks [1, 63], presence [1, 1], handedness [1, 1], world landmarks [1, 63]
        self._landmarks, self._presence, self._left = (
            out["Identity"],
            out["Identity_1"],
            out["Identity_2"],
        )
        self._patch = np.empty((SIZE, SIZE, 3), np.uint8)

    def crop(self, image: np.ndarray, roi: Roi) -> np.ndarray:
        """The model's input for ``roi``: SIZE x SIZE RGB in [0, 1], black outside the image."""
        return crop_pixels(image, roi, self._patch).astype(np.float32) * (1.0 / 255.0)

    def run(self, image: np.ndarray, roi: Roi) -> Hand:
        it = self._interpreter
        # straight into the input tensor: no float image allocated a crop (0.4 ms of 1.5)
        pixels = crop_pixels(image, roi, self._patch)
        np.multiply(pixels, np.float32(1 / 255), out=it.tensor(self._input)()[0], casting="unsafe")
        it.invoke()
        points = it.get_tensor(self._landmarks).reshape(21, 3).astype(np.float64)
        m = roi.crop_to_image()
        xy = points[:, :2] @ m[:, :2].T + m[:, 2]
        z = points[:, 2:] * (roi.size / SIZE) / Z_SCALE
        return Hand(
            np.concatenate([xy, z], axis=1).astype(np.float32),
            float(it.get_tensor(self._presence).reshape(-1)[0]),
            float(it.get_tensor(self._left).reshape(-1)[0]),
            roi,
        )

    def refine(self, image: np.ndarray, box, options: LandmarkOptions) -> Hand:
        """One hand from a detector's box: the upright crop, then (``passes`` 2) the crop turned
        and placed by its keypoints, where the first pass found a hand turned at least
        ``turn`` degrees from upright."""
        hand = self.run(image, Roi.from_box(box, options.box_scale))
        if options.passes == 2 and hand.presence >= options.presence:
            roi = Roi.from_keypoints(hand.keypoints)
            if abs(math.degrees(roi.angle)) >= options.turn:
                hand = self.run(image, roi)
        return hand


MODEL_HELP = (
    "landmark model: lite, full, lite_int8 (lite quantized), or auto: HANDSPOT_LANDMARKS, else "
    "the faster of lite and lite_int8 on this CPU, timed once and cached"
)


@dataclass(frozen=True)
class LandmarkOptions:
    """The landmark stage and how its results are fused with the detector's. The defaults are
    the measured best on the held-out part of every shared source (README, "Keypoints,
    left/right and ids"; python -m detect.hands_bench)."""

    model: str = option("auto", MODEL_HELP, choices=("auto", *LANDMARK_MODELS))
    passes: int = option(2, "crops a hand: 1 upright; 2 then turned by its keypoints")
    turn: float = option(15.0, "passes 2: only for hands the first pass finds turned this much")
    box_scale: float = option(1.5, "first crop: this many times the box's longer side")
    presence: float = option(0.5, "a crop whose hand presence is below this shows no hand")
    floor: float = option(
        0.3,
        "score with the stage: the detector's x (floor + (1 - floor) x presence), so a box "
        "showing no hand keeps this share of its score",
    )
    box: str = option(
        "blend",
        "box of a hand: blend (the detector's moved towards the keypoints' box, or the "
        "keypoints' box where the two hardly overlap), detector or keypoints",
        choices=("blend", "detector", "keypoints"),
    )
    pad: float = option(0.15, "keypoints' box: grown by this share of its size on each side")
    blend: float = option(0.3, "blend: the keypoints' box's weight")
    replace_iou: float = option(0.3, "blend: below this IoU the keypoints' box replaces it")
    drop: bool = option(False, "drop boxes showing no hand (default: keep them, down-weighted)")
    nms_iou: float = option(0.5, "after fusion, boxes of one hand overlapping this much merge")
    mirrored: bool = option(False, "the images are mirrored (a selfie view): handedness as is")
    min_score: float = option(0.1, "run the stage on boxes scoring at least this")
    max_hands: int | None = option(None, "keep the best this many hands (None: all)", type=int)

    def worth_refining(self, det: Detections, score_threshold: float) -> Detections:
        """The boxes the stage runs on: at least ``min_score`` and the output threshold (fusion
        never raises a score, so a box below the threshold stays below)."""
        return det.above(max(self.min_score, score_threshold))


def fuse(
    det: Detections, hands: list[Hand], options: LandmarkOptions, width: int, height: int
) -> Detections:
    """The detector's boxes with the stage's results, one row each: keypoints, handedness and
    presence in ``data``; the score down-weighted by presence (never kept as it was where no
    hand shows), the box as ``options.box`` says where a hand shows, clipped to the
    ``width`` x ``height`` image; boxes showing no hand dropped with ``drop``; then one box a
    hand (NMS)."""
    if not len(det):
        empty = {**det.data, **_data([], options)}
        return det.with_(keypoints=np.zeros((0, 21, 3), np.float32), data=empty)
    presence = np.array([h.presence for h in hands], np.float32)
    scores = det.scores * (options.floor + (1.0 - options.floor) * presence)
    boxes = det.boxes.copy()
    found = presence >= options.presence
    if options.box != "detector":
        for i in np.flatnonzero(found):
            kp = hands[i].box(options.pad)
            if options.box == "keypoints" or box_iou(boxes[i], kp)[0, 0] < options.replace_iou:
                boxes[i] = kp
            else:
                boxes[i] = (1 - options.blend) * boxes[i] + options.blend * kp
    fused = det.with_(
        boxes=np.clip(boxes, 0, [width, height, width, height]),
        scores=scores,
        keypoints=np.stack([h.keypoints for h in hands]),
        data={**det.data, **_data(hands, options)},
    )
    if options.drop:
        fused = fused[found]
    return fused[nms(fused.boxes, fused.scores, options.nms_iou, len(fused))]


def _data(hands: list[Hand], options: LandmarkOptions) -> dict[str, np.ndarray]:
    labels = [h.handedness(options.mirrored) for h in hands]
    return {
        "handedness": np.array([label for label, _ in labels], dtype="<U5"),
        "handedness_score": np.array([score for _, score in labels], np.float32),
        "presence": np.array([h.presence for h in hands], np.float32),
    }


class HandLandmarker(Detector):
    """A detector followed by the landmark stage: every backend's boxes get keypoints,
    handedness and presence, and lose what is not a hand."""

    def __init__(
        self,
        detector: Detector,
        options: LandmarkOptions | None = None,
        *,
        num_threads: int = 1,
        score_threshold: float | None = None,
        handedness: HandednessOptions | None = None,
        masker: Masker | None = None,
    ):
        self.detector = detector
        self.masker = masker
        self.options = options or LandmarkOptions()
        self.backend = f"{detector.backend}+landmarks"
        self.labels = detector.labels
        self.score_threshold = (
            detector.score_threshold if score_threshold is None else score_threshold
        )
        self.model = LandmarkModel(self.options.model, num_threads)
        self.batched = detector.batched
        self.handedness = handedness or HandednessOptions()

    def detect(self, image: np.ndarray) -> Detections:
        return self.refine(image, self.detector.detect(image))

    def close(self) -> None:
        self.detector.close()

    def detect_batch(self, images):
        images = list(images)
        found = self.detector.detect_batch(images)
        return [self.refine(im, d) for im, d in zip(images, found, strict=True)]

    def refine(self, image: np.ndarray, det: Detections) -> Detections:
        """The stage on detections of ``image`` (``LandmarkOptions.worth_refining``)."""
        image = self._check(image)
        det = self.options.worth_refining(det, self.score_threshold)
        hands = [self.model.refine(image, box, self.options) for box in det.boxes]
        h, w = image.shape[:2]
        fused = fuse(det, hands, self.options, w, h).above(self.score_threshold)
        found = with_pair_rule(fused.best(self.options.max_hands), self.handedness)
        return found if self.masker is None else found.with_(masks=self.masker.masks(image, found))


def with_pair_rule(found: Detections, options: HandednessOptions) -> Detections:
    """``found`` with the pair rule (``handedness.unsure_of_pair``) applied to its left/right:
    the unsure hand of a pair takes the other side, its score the model's for that side."""
    labels, scores = found.data["handedness"], found.data["handedness_score"]
    weak = unsure_of_pair(labels, scores, found.boxes, options)
    if weak is None:
        return found
    labels, scores = labels.copy(), scores.copy()
    labels[weak], scores[weak] = other(labels[weak]), 1.0 - scores[weak]
    return found.with_(data={**found.data, "handedness": labels, "handedness_score": scores})
