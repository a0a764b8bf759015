"""Stable hand ids across video frames: two hooks for detect's loops (called in frame order).

- ``HandTracker`` (with the landmark stage): each hand's crop follows its keypoints from frame to
  frame, as MediaPipe's tracking does, so the detector runs only every ``detect_every`` frames
  (to find new hands; less often while every hand holds) and at once when a hand is lost; the
  crops of one frame (and those of the new hands a detection finds) run at once on ``workers``
  threads, and where the loop reads frames ahead (``read_ahead``), each hand's next crop starts
  as soon as its last one is done. A hand lost (covered, out of view) while another holds, and
  found again within ``keep_lost`` frames near where it was heading, the same side, keeps its
  id and its left/right.
- ``BoxTracker`` (boxes only): ByteTrack (the ``trackers`` package, Apache-2.0) on every frame's
  detections.

Both give each detection a ``track_id`` (``NO_TRACK``: not yet confirmed).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from handspot.crops import Ahead, Crops
from handspot.detections import NO_TRACK, Detections, box_iou
from handspot.detector import Detector
from handspot.handedness import HandednessOptions, Vote, unsure_of_pair
from handspot.landmarks import Hand, LandmarkModel, LandmarkOptions, Roi, fuse
from handspot.masks import Masker
from handspot.options import option
from handspot.profile import Profile, stage


@dataclass(frozen=True)
class TrackOptions:
    """How hands are followed in video."""

    detect_every: int = option(
        5, "video: run the detector every N frames (and when a hand is lost)"
    )
    max_every: int = option(
        10, "video: while every hand holds, the detector's interval doubles up to this"
    )
    max_hands: int = option(
        4, "video: follow at most this many hands (while that many hold, the detector rests)"
    )
    new_iou: float = option(
        0.3, "video: a detection overlapping a followed hand this much is that hand, not a new one"
    )
    keep_lost: int = option(
        30, "video: a hand found again within this many frames of being lost, near where it "
        "was, keeps its id and its left/right (0: a new id)"
    )  # fmt: skip


@dataclass
class _Track:
    id: int
    hand: Hand
    score: float  # the detector's score when it last saw the hand
    label: str
    box: np.ndarray  # the detector's box when it last saw the hand
    vote: Vote  # left/right from the track's evidence
    mirrored: bool = False
    roi: Roi = field(init=False)
    margins: np.ndarray = field(init=False)  # that box around the keypoints' extent
    motion: np.ndarray = field(init=False)  # its crop's centre's shift a frame, smoothed

    def __post_init__(self):
        self.motion = np.zeros(2)
        self.follow(self.hand)
        self.seen(self.box, self.score)

    def follow(self, hand: Hand) -> None:
        """This frame's hand: the next crop from its keypoints, its left/right as evidence."""
        roi = Roi.from_keypoints(hand.keypoints)
        if hand is not self.hand:  # its crop's centre moved as the hand did
            self.motion = 0.5 * self.motion + 0.5 * np.array([roi.cx - self.roi.cx,
                                                              roi.cy - self.roi.cy])  # fmt: skip
        self.hand, self.roi = hand, roi
        self.vote.add(hand.p_left(self.mirrored), hand.presence)

    def seen(self, box: np.ndarray, score: float) -> None:
        """The detector saw the hand: its score, and its box's margins around the keypoints."""
        kp = self.hand.box(0)
        size = np.maximum(kp[2:] - kp[:2], 1.0)
        self.score, self.margins = score, (np.asarray(box) - kp) / np.tile(size, 2)

    def detector_box(self) -> np.ndarray:
        """The box the detector would give now: its margins around today's keypoints."""
        kp = self.hand.box(0)
        return kp + self.margins * np.tile(np.maximum(kp[2:] - kp[:2], 1.0), 2)


@dataclass
class _Gone:
    """A hand lost lately, to give its id back if it shows up again where it was heading."""

    id: int
    vote: Vote
    box: np.ndarray  # its keypoints' box when last followed
    motion: np.ndarray  # its centre's shift a frame then
    frame: int  # the frame it was lost on

    def distance(self, box: np.ndarray, index: int) -> float:
        """How far ``box``'s centre (on frame ``index``) is from where this hand would be had
        it kept moving, in its box's longer sides."""
        ahead = (self.box[:2] + self.box[2:]) / 2 + self.motion * (index - self.frame)
        shift = (box[:2] + box[2:]) / 2 - ahead
        return float(np.hypot(*shift) / max(np.max(self.box[2:] - self.box[:2]), 1.0))


NEAR = 0.75  # a lost hand's id goes to a new one whose centre is this close (in its sizes)
LAG = 16  # frames: how far ahead of the tracking the loop may ask which frames to detect on
FULL = 0  # the pace while max_hands hands are followed: no detector


class HandTracker:
    """The hook: ``tracker(frame, det)`` -> this frame's hands with ``track_id``. ``det`` is
    the detector's result where the loop ran it (every ``detect_every`` frames), else None; the
    tracker runs its own detector when it needs one sooner (a hand was lost, or none is
    followed)."""

    def __init__(
        self,
        make_detector: Callable[[], Detector],
        landmarks: LandmarkOptions | None = None,
        options: TrackOptions | None = None,
        score_threshold: float = 0.0,
        model: LandmarkModel | None = None,
        handedness: HandednessOptions | None = None,
        workers: int = 1,
        profile: Profile | None = None,
        masker: Masker | None = None,
    ):
        self.landmarks = landmarks or LandmarkOptions()
        self.options = options or TrackOptions()
        self.handedness = handedness or HandednessOptions()
        self.model = model or LandmarkModel(self.landmarks.model)
        self.profile = profile
        self.masker = masker
        self._crops = Crops(self.model, self.landmarks.model, workers)
        self._ahead = Ahead(self._crops, self.landmarks.presence)
        self._make_detector = make_detector
        self._detector: Detector | None = None
        self.score_threshold = score_threshold
        self.tracks: list[_Track] = []
        self._gone: list[_Gone] = []  # hands lost lately (keep_lost frames)
        self._ids = itertools.count(1)
        self.detector_runs = 0  # how often the detector ran (the loop's and this one's)
        self.every = self.options.detect_every  # the detector's interval now
        self._paces: dict[int, int] = {}  # frame -> the interval after it was tracked
        self._tracked = -1  # the last frame tracked
        self._last_due: int | None = None
        self._detected = -1  # the last frame the detector ran on
        self._state = threading.Condition()
        self._closed = False

    @property
    def detect_every(self) -> int:
        return self.options.detect_every

    def should_detect(self, index: int) -> bool:
        """Whether the loop runs the detector on frame ``index`` (asked in frame order, up to
        ``LAG`` frames ahead of the tracking): every ``every`` frames, an interval that doubles
        (up to ``max_every``) while every hand holds and falls back when one is lost or found;
        never while ``max_hands`` hands are followed (there is no room for a new one). The
        interval for frame i is the one after frame i - ``LAG`` was tracked, whatever the
        threads' timing, so a run's output does not depend on the loop that ran it."""
        every = self.options.detect_every
        if index >= LAG:
            with self._state:
                self._state.wait_for(lambda: self._tracked >= index - LAG or self._closed)
                every = self._paces.pop(index - LAG, every)
        if every == FULL:
            return False
        if self._last_due is None or index - self._last_due >= every:
            self._last_due = index
            return True
        return False

    def _overdue(self, index: int) -> bool:
        """Room for a new hand, but no detection for longer than the pace allows: the frames
        since were paced while every place was taken (the loop's pace comes ``LAG`` frames
        late), so the tracker looks itself."""
        late = index - self._detected > self._longest
        return len(self.tracks) < self.options.max_hands and late

    @property
    def _longest(self) -> int:
        """The detector's longest interval: ``max_every``, or ``detect_every`` if longer."""
        return max(self.options.detect_every, self.options.max_every)

    def _pace(self, steady: bool) -> None:
        base = self.options.detect_every
        self.every = min(2 * self.every, self._longest) if steady and self.tracks else base

    def _detect(self, image: np.ndarray) -> Detections:
        if self._detector is None:
            self._detector = self._make_detector()
        return self._detector.detect(image)

    def __call__(self, frame, det: Detections | None) -> Detections:
        image = frame.rgb
        with stage(self.profile, "landmarks"):  # each hand from its last keypoints, at once
            hands = self._ahead.hands(image, frame.index, self.tracks)
        with stage(self.profile, "track"):
            lost = self._follow(hands, frame.index)
        if det is None and (lost or not self.tracks or self._overdue(frame.index)):
            with stage(self.profile, "model"):
                det = self._detect(image)
        if det is not None:
            self.detector_runs += 1
            self._detected = frame.index
            with stage(self.profile, "new hands"):
                added = self._add_new(image, det, frame.index)
            self._pace(steady=not lost and not added)
        self._ahead.follow(frame.index, self.tracks)
        with stage(self.profile, "track"):
            found = self._detections(image.shape[1], image.shape[0])
        full = len(self.tracks) >= self.options.max_hands
        with self._state:  # the pace frame + LAG will run at
            self._paces[frame.index] = FULL if full else self.every
            self._tracked = frame.index
            self._state.notify_all()
        if self.masker is None:
            return found
        with stage(self.profile, "masks"):  # each hand's at once, on the crops' threads
            masks = self._crops.each(
                lambda i: self.masker.mask(image, found.keypoints[i], found.boxes[i]),
                range(len(found)),
            )
        return found.with_(masks=np.stack(masks) if masks else self.masker.masks(image, found))

    def _follow(self, hands: list[Hand], index: int) -> bool:
        """Each track to its hand on frame ``index``; those whose hand is gone join the lost
        ones (kept ``keep_lost`` frames) where another hand holds. Returns whether a hand was
        lost."""
        kept, lost, pad = [], [], self.landmarks.pad
        for track, hand in zip(self.tracks, hands, strict=True):
            if hand.presence >= self.landmarks.presence:
                track.follow(hand)
                kept.append(track)
            else:
                lost.append(_Gone(track.id, track.vote, track.hand.box(pad), track.motion, index))
        if kept:
            self._gone += lost
        elif lost:  # every hand gone at once may be a cut to another scene
            self._gone = []
        self._gone = [g for g in self._gone if index - g.frame < self.options.keep_lost]
        self.tracks = _dedupe(kept, self.landmarks)
        return len(kept) < len(hands)

    def _found_again(self, hand: Hand, box: np.ndarray, index: int) -> _Gone | None:
        """The lost hand of the same side (left/right) nearest where a new hand (its keypoints'
        box ``box``) was found on frame ``index``, if near enough; it leaves the lost ones."""
        side, _ = hand.handedness(self.landmarks.mirrored)
        near = [(g.distance(box, index), i) for i, g in enumerate(self._gone)
                if g.vote.label == side]  # fmt: skip
        near = [(d, i) for d, i in near if d <= NEAR]
        return self._gone.pop(min(near)[1]) if near else None

    def read_ahead(self, frame) -> None:
        """The loop has read ``frame`` (called in frame order, ahead of the hook): the
        followed hands' crops on it may start."""
        self._ahead.read(frame.index, frame.rgb)

    def close(self) -> None:
        with self._state:
            self._closed = True
            self._state.notify_all()
        self._ahead.close()
        self._crops.close()

    def _add_new(self, image: np.ndarray, det: Detections, index: int) -> int:
        """New tracks for the detections no followed hand covers (those that can reach the
        output threshold: fusion never raises a score); known hands get the score. Returns how
        many were added."""
        before = len(self.tracks)
        det = self.landmarks.worth_refining(det, self.score_threshold)
        followed = np.array([t.hand.box(self.landmarks.pad) for t in self.tracks]).reshape(-1, 4)
        iou = box_iou(det.boxes, followed)
        order = np.argsort(-det.scores, kind="stable")
        refined = self._refine_at_once(image, det, order, iou)
        rescored: set[int] = set()
        for i in order:
            if len(self.tracks) and iou[i].max(initial=0) >= self.options.new_iou:
                j = int(iou[i].argmax())
                if j not in rescored:  # the best detection on a followed hand: its score, box
                    self.tracks[j].seen(det.boxes[i], float(det.scores[i]))
                    rescored.add(j)
                continue
            if len(self.tracks) >= self.options.max_hands:
                break
            hand = refined.get(int(i))
            if hand is None:
                hand = self.model.refine(image, det.boxes[i], self.landmarks)
            if hand.presence < self.landmarks.presence:
                continue
            box = hand.box(self.landmarks.pad)
            if followed.size and box_iou(box[None], followed).max() >= self.options.new_iou:
                continue  # the crop found a hand already followed
            score, label = float(det.scores[i]), det.class_names[i]
            again = self._found_again(hand, box, index)
            ident, vote = (again.id, again.vote) if again else (next(self._ids), None)
            vote, mirrored = vote or Vote(self.handedness), self.landmarks.mirrored
            self.tracks.append(_Track(ident, hand, score, label, det.boxes[i], vote, mirrored))
            followed = np.concatenate([followed, box[None]])
            iou = box_iou(det.boxes, followed)
        return len(self.tracks) - before

    def _refine_at_once(
        self, image: np.ndarray, det: Detections, order: np.ndarray, iou: np.ndarray
    ) -> dict[int, Hand]:
        """The crops of the detections ``_add_new`` will refine first (those no followed hand
        covers, as many as there is room for), at once on the crops' threads: the same hands
        as one after the other. Any it reaches beyond these it refines itself."""
        room = self.options.max_hands - len(self.tracks)
        first = [int(i) for i in order if iou[i].max(initial=0) < self.options.new_iou][:room]
        if len(first) < 2 or not self._crops.pooled:
            return {}
        hands = self._crops.refine(image, [det.boxes[i] for i in first], self.landmarks)
        return dict(zip(first, hands, strict=True))

    def _detections(self, width: int, height: int) -> Detections:
        """The followed hands, fused as in image mode (the detector's box, kept around the
        moving keypoints, and score with the presence), without dropping or merging: a track
        is one hand."""
        base = Detections(
            np.array([t.detector_box() for t in self.tracks], np.float32).reshape(-1, 4),
            np.array([t.score for t in self.tracks], np.float32),
            np.ones(len(self.tracks), np.int32),
            tuple(t.label for t in self.tracks),
            track_id=np.array([t.id for t in self.tracks], np.int64),
        )
        options = replace(self.landmarks, drop=False, nms_iou=1.0)
        hands = [t.hand for t in self.tracks]
        found = fuse(base, hands, options, width, height).above(self.score_threshold)
        votes = [next(t.vote for t in self.tracks if t.id == i) for i in found.track_id]
        scores = [v.probability for v in votes]
        weak = unsure_of_pair([v.label for v in votes], scores, found.boxes, self.handedness)
        if weak is not None:
            votes[weak].turn()  # kept until the evidence turns it back
            scores[weak] = 1.0 - scores[weak]
        data = {**found.data, "handedness": np.array([v.label for v in votes], "<U5"),
                "handedness_score": np.array(scores, np.float32)}  # fmt: skip
        return found.with_(data=data)


def _dedupe(tracks: list[_Track], landmarks: LandmarkOptions) -> list[_Track]:
    """Two tracks that converged on one hand: the older one (lower id) stays."""
    kept: list[_Track] = []
    for track in sorted(tracks, key=lambda t: t.id):
        box = track.hand.box(landmarks.pad)[None]
        if all(box_iou(box, k.hand.box(landmarks.pad)[None])[0, 0] < 0.5 for k in kept):
            kept.append(track)
    return kept


class BoxTracker:
    """The hook for boxes only: ByteTrack (``trackers``) on every frame's detections. It takes
    them down to a low score (its second association revives tracks with those) and returns
    the ones at or above ``score_threshold``, best first; a box gets an id from its second
    frame on (``NO_TRACK`` before)."""

    detect_every = 1

    def __init__(self, fps: float = 30.0, score_threshold: float = 0.5, **bytetrack):
        from trackers import ByteTrackTracker

        self.score_threshold = score_threshold
        settings = {
            "track_activation_threshold": score_threshold,
            "high_conf_det_threshold": score_threshold,
            "minimum_consecutive_frames": 1,
            **bytetrack,
        }
        self._tracker = ByteTrackTracker(frame_rate=fps, **settings)

    def __call__(self, frame, det: Detections) -> Detections:
        out = Detections.from_supervision(self._tracker.update(det.to_supervision()))
        if out.track_id is None:
            out = out.with_(track_id=np.full(len(out), NO_TRACK))
        out = out.above(self.score_threshold)
        return out[np.argsort(-out.scores, kind="stable")]


def id_switches(truth: list[np.ndarray], found: list[Detections], iou: float = 0.3) -> dict:
    """How steady the ids are on a clip with known hands: ``truth[t]`` holds frame t's hand
    boxes, one row a hand in the same order every frame. Each hand takes the best-overlapping
    tracked detection (IoU >= ``iou``); a switch is a hand whose id differs from the one it had
    when last seen. Returns switches, per 100 frames, and the share of hand-frames found."""
    last: dict[int, int] = {}
    switches = seen = total = 0
    for boxes, det in zip(truth, found, strict=True):
        tracked = det[det.track_id != NO_TRACK] if det.track_id is not None else det[:0]
        overlap = box_iou(boxes, tracked.boxes)
        for hand in range(len(boxes)):
            total += 1
            if not len(tracked) or overlap[hand].max() < iou:
                continue
            seen += 1
            tid = int(tracked.track_id[int(overlap[hand].argmax())])
            if hand in last and last[hand] != tid:
                switches += 1
            last[hand] = tid
    frames = max(len(truth), 1)
    return {
        "frames": len(truth),
        "switches": switches,
        "switches_per_100_frames": 100 * switches / frames,
        "found": seen / total if total else float("nan"),
    }
