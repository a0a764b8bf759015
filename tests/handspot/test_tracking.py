"""The video hook's bookkeeping on a scripted world (a stand-in landmark model and detector, no
TensorFlow): ids stay with their hands, the detector runs every N frames and when a hand is
lost, a hand that leaves ends its track and one that comes back gets a new id."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from handspot.detections import NO_TRACK, Detections
from handspot.landmarks import Hand, LandmarkOptions, Roi
from handspot.tracking import BoxTracker, HandTracker, TrackOptions
from tests.handspot.test_landmarks import upright_hand


@dataclass
class Frame:
    index: int
    rgb: np.ndarray


class World:
    """Hands (centre x, y, side) per frame; the detector sees them, the landmark model finds
    one when a crop's centre lies on it."""

    def __init__(self, frames: list[list[tuple[float, float, float]]]):
        self.frames, self.now, self.detections = frames, 0, 0

    def hands(self):
        return self.frames[self.now]

    # the detector
    labels = {1: "hand"}  # noqa: RUF012

    def detect(self, image) -> Detections:
        self.detections += 1
        boxes = [[x - s / 2, y - s / 2, x + s / 2, y + s / 2] for x, y, s in self.hands()]
        return Detections(boxes, [0.9] * len(boxes), [1] * len(boxes), ("hand",) * len(boxes))

    # the landmark model
    def run(self, image, roi: Roi) -> Hand:
        for x, y, s in self.hands():
            if abs(roi.cx - x) < s / 2 and abs(roi.cy - y) < s / 2:
                return Hand(upright_hand(x, y - 10, s / 100), 0.95, self.left(x, y), roi)
        return Hand(upright_hand(roi.cx, roi.cy), 0.05, 0.5, roi)

    def left(self, x: float, y: float) -> float:
        """The model's raw handedness for the hand at (x, y): every hand the person's right."""
        return 0.9

    def refine(self, image, box, options) -> Hand:
        return self.run(image, Roi.from_box(box, options.box_scale))


def track(world: World, every: int = 5) -> list[Detections]:
    tracker = HandTracker(
        lambda: world,
        LandmarkOptions(),
        TrackOptions(detect_every=every),
        model=world,
    )
    out = []
    image = np.zeros((480, 640, 3), np.uint8)
    for i in range(len(world.frames)):
        world.now = i
        det = world.detect(image) if i % every == 0 else None
        out.append(tracker(Frame(i, image), det))
    return out


def sides(det: Detections, middle: float = 320) -> dict[str, int]:
    """{"left" | "right" (of the image, by the box's centre): track id}."""
    pairs = zip((det.boxes[:, 0] + det.boxes[:, 2]) / 2, det.track_id, strict=True)
    return {("left" if x < middle else "right"): int(t) for x, t in pairs}


def ids_by_side(frames: list[Detections]) -> list[dict[str, int]]:
    return [sides(d) for d in frames]


def test_two_moving_hands_keep_their_ids_and_the_detector_runs_every_n_frames():
    frames = [[(150 + 2 * i, 240 + i, 100), (450 - 2 * i, 200, 110)] for i in range(40)]
    world = World(frames)
    out = track(world, every=5)
    assert all(len(d) == 2 for d in out)
    assert {tuple(sorted(s.items())) for s in ids_by_side(out)} == {(("left", 1), ("right", 2))}
    assert world.detections == 8  # frames 0, 5, ..., 35: never more
    assert out[0].keypoints.shape == (2, 21, 3) and (out[0].track_id != NO_TRACK).all()
    assert out[0].data["handedness"].tolist() == ["right", "right"]  # plain images: swapped


def test_a_lost_hand_is_looked_for_at_once_and_a_returning_hand_gets_a_new_id():
    still = (150, 240, 100)
    frames = [[still, (450, 200, 110)]] * 6 + [[still]] * 6 + [[still, (450, 220, 110)]] * 6
    world = World(frames)
    out = track(world, every=100)  # the detector only when the tracker asks for it
    assert [len(d) for d in out] == [2] * 6 + [1] * 6 + [1] * 6  # not found again: no detector
    assert world.detections == 2  # frame 0, and frame 6 when the right hand was lost
    assert set(ids_by_side(out)[-1].values()) == {1}


@pytest.mark.parametrize(
    ("away", "back_at", "right_id"),
    [
        (4, (450, 220), 2),  # soon, near where it was lost: its id again
        (4, (450, 420), 3),  # soon, elsewhere: another hand
        (40, (450, 220), 3),  # after keep_lost (30) frames: a new id
    ],
)
def test_a_hand_that_comes_back_is_found_at_the_next_detection(away, back_at, right_id):
    still = (150, 240, 100)
    frames = [[still, (450, 200, 110)]] * 4 + [[still]] * away + [[still, (*back_at, 110)]] * 4
    out = track(World(frames), every=4)
    assert [len(d) for d in out] == [2] * 4 + [1] * away + [2] * 4
    assert ids_by_side(out)[0] == {"left": 1, "right": 2}
    assert ids_by_side(out)[-1] == {"left": 1, "right": right_id}


def test_a_hand_lost_with_every_other_is_not_given_back():
    """Every hand gone at once may be a cut to another scene: a lone hand that leaves and
    comes back where it was is a new one; so is one of another side."""
    alone = [[(450, 200, 110)]] * 4 + [[]] * 4 + [[(450, 220, 110)]] * 4
    assert [d.track_id.tolist() for d in track(World(alone), every=4)][-1] == [2]
    other_side = World([[(150, 240, 100), (450, 200, 110)]] * 4 + [[(150, 240, 100)]] * 4
                       + [[(150, 240, 100), (450, 220, 110)]] * 4)  # fmt: skip
    other_side.left = lambda x, y: 0.1 if x > 300 and y > 210 else 0.9  # its crop says left
    assert ids_by_side(track(other_side, every=4))[-1] == {"left": 1, "right": 3}
    a, b = (150, 240, 100), (450, 200, 110)  # b leaves, then a: b is forgotten with a
    both_gone = World([[a, b]] * 4 + [[a]] * 3 + [[]] * 3 + [[b]] * 4)
    assert [d.track_id.tolist() for d in track(both_gone, every=4)][-1] == [3]


def test_byte_track_gives_boxes_ids_that_follow_them():
    tracker = BoxTracker(fps=30, score_threshold=0.5)
    ids = []
    for i in range(10):
        det = Detections(
            [
                [100 + 3 * i, 100, 200 + 3 * i, 200],
                [400, 100 + 2 * i, 500, 200 + 2 * i],
                [0, 0, 9, 9],
            ],
            [0.8, 0.9, 0.2],  # the weak box only helps ByteTrack, it is not returned
            [1, 1, 1],
            ("hand",) * 3,
        )
        out = tracker(Frame(i, None), det)
        assert len(out) == 2 and out.scores.tolist() == pytest.approx([0.9, 0.8])
        ids.append(sides(out, middle=300))
    assert ids[0] == {"left": NO_TRACK, "right": NO_TRACK}  # ids from a box's second frame on
    assert ids[-1]["left"] != ids[-1]["right"] and all(i == ids[-1] for i in ids[1:])


def test_id_switches_counts_a_hand_changing_id_not_a_hand_missed():
    from handspot.tracking import id_switches

    truth = [np.array([[0, 0, 10, 10], [50, 50, 60, 60]], np.float32)] * 4

    def found(*ids):
        boxes = [[0, 0, 10, 10], [50, 50, 60, 60]][: len(ids)]
        return Detections(
            boxes, [0.9] * len(ids), [1] * len(ids), ("hand",) * len(ids), track_id=ids
        )

    frames = [found(1, 2), found(1), found(3, 2), found(3, NO_TRACK)]
    result = id_switches(truth, frames)
    assert result["switches"] == 1 and result["switches_per_100_frames"] == 25
    assert result["found"] == pytest.approx(6 / 8)  # hand 1 missed in frames 1 and 3


def paced(
    world: World, every: int = 5, most: int = 10, hands: int = 4
) -> tuple[list[Detections], list[int]]:
    """The tracker with the loop asking it which frames to detect on; the frames it said."""
    options = TrackOptions(detect_every=every, max_every=most, max_hands=hands)
    tracker = HandTracker(lambda: world, LandmarkOptions(), options, model=world)
    out, asked = [], []
    image = np.zeros((480, 640, 3), np.uint8)
    for i in range(len(world.frames)):
        world.now = i
        det = None
        if tracker.should_detect(i):
            asked.append(i)
            det = world.detect(image)
        out.append(tracker(Frame(i, image), det))
    return out, asked


def test_the_detector_is_paced_by_how_well_the_tracks_hold():
    """Issue 28: while every hand holds, the interval doubles (5 -> 10, no further); a hand
    coming in is found at the next detection and the pace falls back to 5. The pace for frame
    i is the one after frame i - LAG (16) was tracked: the same whatever the loop's timing."""
    still = [(150, 240, 100), (450, 200, 110)]
    frames = [still] * 40 + [[*still, (320, 400, 90)]] * 40
    out, asked = paced(World(frames))
    assert asked == [0, 5, 10, 15, 20, 30, 40, 50, 56, 61, 71]
    assert [len(d) for d in out] == [2] * 40 + [3] * 40


def test_the_detector_rests_while_max_hands_hands_hold():
    """With room for 2 hands and 2 followed, the loop is not asked to detect (after the first
    LAG frames, paced before the hands were found); the hand that leaves is looked for at
    once, and while there is room again but the loop's pace, LAG frames late, still says
    full, the tracker looks itself once the longest interval has passed: the hand back at
    frame 70 is found at 71, where it left, with its id."""
    still = [(150, 240, 100), (450, 200, 110)]
    frames = [still] * 60 + [still[:1]] * 10 + [still] * 40
    world = World(frames)
    out, asked = paced(world, hands=2)
    assert asked == [0, 5, 10, 15, 76, 81, 86]
    assert world.detections == len(asked) + 2  # + frame 60 (a hand lost) and 71 (overdue)
    assert [len(d) for d in out] == [2] * 60 + [1] * 11 + [2] * 39
    assert ids_by_side(out)[-1] == {"left": 1, "right": 2}
    roomy, asked_roomy = paced(World(frames), hands=4)
    assert len(asked_roomy) == 15 and [len(d) for d in roomy] == [2] * 60 + [1] * 10 + [2] * 40


@pytest.mark.parametrize("workers,items", [(1, 5), (2, 1), (2, 2), (2, 5), (3, 7), (4, 2)])
def test_crops_of_a_frame_come_back_in_order_whoever_ran_them(workers, items):
    import threading

    from handspot.crops import Crops

    crops = Crops(model=None, variant="lite", workers=workers)
    ran_on = []
    want = min(workers, items)  # threads that can take items at once
    all_in = threading.Event()

    def slow(x):  # an item holds its thread until every thread that can has one (or 5 s)
        ran_on.append(threading.current_thread().name)
        if len(set(ran_on)) == want:
            all_in.set()
        all_in.wait(5)
        return x * 10

    try:
        assert crops.each(slow, range(items)) == [10 * x for x in range(items)]
        threads = set(ran_on)
        quick = crops.each(lambda x: -x, range(items))  # whoever takes them, in order
    finally:
        crops.close()
    assert quick == [-x for x in range(items)]
    assert threading.current_thread().name in threads  # this thread takes items too
    assert len(threads) == want  # and, items being slow, the pool's threads at once


class Filmed(World):
    """The scripted world on film: each image carries its frame's index (its first pixels), so
    the stand-in landmark model answers from the image it is given, on any thread, and, as
    the real one, a little differently for another crop of one hand; it counts the crops run
    on frames the tracking has not reached yet."""

    def __init__(self, frames):
        super().__init__(frames)
        self.ahead = self.runs = 0

    def image(self, index: int) -> np.ndarray:
        image = np.zeros((480, 640, 3), np.uint8)
        image.reshape(-1)[:2] = divmod(index, 256)
        return image

    def run(self, image, roi: Roi) -> Hand:
        index = 256 * int(image.reshape(-1)[0]) + int(image.reshape(-1)[1])
        self.ahead += index > self.now
        self.runs += 1
        for x, y, s in self.frames[index]:
            if abs(roi.cx - x) < s / 2 and abs(roi.cy - y) < s / 2:  # a little off, by the crop
                at = (x + (roi.cx - x) / 20, y - 10 + (roi.cy - y) / 20)
                return Hand(upright_hand(*at, s / 100), 0.95, 0.9, roi)
        return Hand(upright_hand(roi.cx, roi.cy), 0.05, 0.5, roi)


def filmed(world: Filmed, workers: int, monkeypatch, read: int = 6) -> list[Detections]:
    """The tracker as run_multi drives it: frames read ``read`` ahead of the hook."""
    monkeypatch.setattr("handspot.crops.LandmarkModel", lambda variant: world)
    tracker = HandTracker(lambda: world, LandmarkOptions(), TrackOptions(detect_every=4),
                          model=world, workers=workers)  # fmt: skip
    n, out = len(world.frames), []
    try:
        for i in range(min(read, n)):
            tracker.read_ahead(Frame(i, world.image(i)))
        for i in range(n):
            world.now = i
            det = world.detect(world.image(i)) if tracker.should_detect(i) else None
            out.append(tracker(Frame(i, world.image(i)), det))
            if i + read < n:
                tracker.read_ahead(Frame(i + read, world.image(i + read)))
    finally:
        tracker.close()
    return out


def test_crops_run_ahead_on_the_frames_read_and_change_nothing(monkeypatch):
    """Each followed hand's crop on the next frame read starts as soon as its crop on this
    one is done: with two workers the crops run ahead of the tracking, and the hands, ids,
    a hand lost and found again are the same as one crop after the other."""
    moving = [[(150 + 3 * i, 240 + i, 100), (450 - 2 * i, 200, 110)] for i in range(20)]
    left_only = [[(210 + i, 260, 100)] for i in range(10)]  # the right hand leaves
    back = [[(220, 260, 100), (430, 220, 110)] for i in range(10)]  # it comes back
    frames = moving + left_only + back
    alone, ahead = Filmed(frames), Filmed(frames)
    one = filmed(alone, workers=1, monkeypatch=monkeypatch)
    two = filmed(ahead, workers=2, monkeypatch=monkeypatch)
    assert alone.ahead == 0 and ahead.ahead > 20
    assert ahead.runs == alone.runs  # no crop run for nothing: a chain stops with its hand
    assert [len(d) for d in two] == [2] * 20 + [1] * 16 + [2] * 4  # found at a detection
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        assert a.track_id.tolist() == b.track_id.tolist()
    assert sides(two[-1]) == {"left": 1, "right": 2}  # back near where it left: its id


def test_closing_while_frames_are_read_ahead_stops_every_crop(monkeypatch):
    world = Filmed([[(150, 240, 100), (450, 200, 110)]] * 30)
    monkeypatch.setattr("handspot.crops.LandmarkModel", lambda variant: world)
    tracker = HandTracker(lambda: world, LandmarkOptions(), model=world, workers=2)
    tracker(Frame(0, world.image(0)), world.detect(None))
    tracker.close()
    tracker.read_ahead(Frame(1, world.image(1)))  # the capture thread, a moment late
    assert world.ahead == 0


class Crowd(Filmed):
    """The filmed world, noting which threads refine the detector's boxes (new hands); a
    refine holds its thread until ``meet`` threads are refining (or 5 s), as a real crop
    would hold it long enough for the other thread to take the next box."""

    def __init__(self, frames, meet: int = 1):
        import threading

        super().__init__(frames)
        self.refined_on: set[str] = set()
        self.meet, self.met = meet, threading.Event()

    def refine(self, image, box, options) -> Hand:
        import threading

        self.refined_on.add(threading.current_thread().name)
        if len(self.refined_on) >= self.meet:
            self.met.set()
        self.met.wait(5)
        return super().refine(image, box, options)


def test_new_hands_of_a_frame_are_refined_at_once_and_change_nothing(monkeypatch):
    """Three hands coming in at once: with two workers their first crops run on two threads,
    and the hands, their ids and the order they were found in are the same as one after
    the other."""
    three = [(120, 240, 100), (320, 200, 100), (520, 260, 100)]
    frames = [[]] * 2 + [[(x + i, y, s) for x, y, s in three] for i in range(10)]
    alone, crowd = Crowd(frames), Crowd(frames, meet=2)
    one = filmed(alone, workers=1, monkeypatch=monkeypatch)
    two = filmed(crowd, workers=2, monkeypatch=monkeypatch)
    assert len(alone.refined_on) == 1 and len(crowd.refined_on) == 2
    assert [len(d) for d in two] == [0] * 2 + [3] * 10  # no hand followed: looked for at once
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        assert a.track_id.tolist() == b.track_id.tolist()
    assert two[-1].track_id[np.argsort(two[-1].boxes[:, 0])].tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("box", "frames", "want"),
    [
        ([100, 100, 200, 200], 0, 0.0),  # where it was
        ([130, 100, 230, 200], 3, 0.0),  # where it was heading (10 px a frame to the right)
        ([100, 100, 200, 200], 3, 0.3),  # where it was, 3 frames on: 30 px behind
        ([100, 180, 200, 280], 0, 0.8),  # 80 px below, in sizes of 100 px
    ],
)
def test_a_lost_hand_is_looked_for_where_it_was_heading_in_python_and_the_page(box, frames, want):
    from handspot.handedness import HandednessOptions, Vote
    from handspot.tracking import _Gone
    from tests.handspot import hands_js

    lost = np.array([100, 100, 200, 200], np.float64)
    gone = _Gone(1, Vote(HandednessOptions()), lost, np.array([10.0, 0.0]), frame=5)
    assert gone.distance(np.array(box, np.float64), 5 + frames) == pytest.approx(want)
    page = {"box": lost.tolist(), "motion": [10, 0], "frame": 5}
    (theirs,) = hands_js(("goneDistance", [page, box, 5 + frames]))
    assert theirs == pytest.approx(want)
