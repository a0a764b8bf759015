"""The Python surface gives what the command line gives: the same defaults decided in one place
(the landmark stage for a hand model, tracking for a video), the same detections on an image,
and ids that follow the hands in ``detect_for_video`` (the shipped model, tiny drawn frames)."""

from __future__ import annotations

import numpy as np
import pytest

import handspot
from handspot.cli import build_parser
from handspot.landmarks import HandLandmarker
from handspot.options import from_args
from handspot.tracking import BoxTracker, HandTracker


def test_python_and_the_cli_decide_the_same_defaults(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not read: only its kind (a file that is not an image) counts")
    from_python = handspot.DetectOptions(source=str(video))
    parsed = build_parser(None).parse_args(["--source", str(video)])
    from_cli = from_args(handspot.DetectOptions, parsed)
    assert from_python == from_cli
    assert from_python.resolved().landmarks and from_python.resolved().track
    assert isinstance(from_python.detector_factory()(), HandLandmarker)  # no resolved() needed
    hook, every = from_python.hook(30.0)
    assert isinstance(hook, HandTracker) and every == from_python.detect_every
    photos = handspot.DetectOptions(source=str(tmp_path))  # a folder: pictures, not a video
    assert photos.resolved().track is False and photos.hook(30.0) == (None, 1)
    boxes = handspot.DetectOptions(source=str(video), landmarks=False, track=True)
    assert isinstance(boxes.hook(30.0)[0], BoxTracker)


def test_bad_options_are_one_error_before_anything_loads(tmp_path):
    with pytest.raises(handspot.errors.UserError, match="score-threshold"):
        handspot.HandDetector(handspot.HandDetectorOptions(score_threshold=2))
    with pytest.raises(handspot.errors.UserError, match="not an exported model folder"):
        handspot.HandDetector(handspot.HandDetectorOptions(model=str(tmp_path)))


def test_max_hands_reaches_the_stage_and_the_tracking_and_needs_the_stage():
    default, two = handspot.HandDetectorOptions(), handspot.HandDetectorOptions(max_hands=2)
    assert default.landmark_options().max_hands is None and default.track_options().max_hands == 4
    assert two.landmark_options().max_hands == 2 and two.track_options().max_hands == 2
    bad = {
        "at least 1": {"max_hands": 0},
        "needs the landmark": {"max_hands": 2, "landmarks": False},
    }
    for message, fields in bad.items():
        with pytest.raises(handspot.errors.UserError, match=message):
            handspot.HandDetectorOptions(**fields).check()


def test_video_timestamps_must_increase():
    with handspot.HandDetector(handspot.HandDetectorOptions(landmarks=False)) as hands:
        frame = np.zeros((64, 64, 3), np.uint8)
        hands.detect_for_video(frame, 0)
        with pytest.raises(ValueError, match="must increase"):
            hands.detect_for_video(frame, 0)


def test_video_mode_runs_a_frames_crops_at_once_and_gives_what_one_thread_gives():
    """``detect_for_video`` on the moving 2-hand clip: the hands' crops of a frame run on the
    crop threads (beside the detector where it runs), the same detections and ids as on one
    thread, the ids stay with their hands, and ``close`` lets the threads go."""
    import threading

    from prep.samples import moving_hands_clip

    clip = moving_hands_clip(frames=16)
    if clip is None:
        pytest.skip("the shared data is needed for the moving-hands clip")

    def crop_threads_named():
        return [t for t in threading.enumerate() if t.name.startswith("landmarks")]

    runs = {}
    for threads in (1, 2):
        with handspot.HandDetector(handspot.HandDetectorOptions(crop_threads=threads)) as hands:
            runs[threads] = [hands.detect_for_video(rgb, 33 * t) for t, rgb in enumerate(clip[0])]
            running = len(crop_threads_named())
        assert running == (2 if threads == 2 else 0) and not crop_threads_named()
    for one, two in zip(runs[1], runs[2], strict=True):
        np.testing.assert_array_equal(one.boxes, two.boxes)
        np.testing.assert_array_equal(one.keypoints, two.keypoints)
        assert one.track_id.tolist() == two.track_id.tolist()
    ids = {tuple(sorted(d.track_id.tolist())) for d in runs[2] if len(d) == 2}
    assert len(ids) == 1 and sum(len(d) == 2 for d in runs[2]) >= 12


def test_max_hands_keeps_the_best_hands_of_an_image():
    from prep.samples import moving_hands_clip

    clip = moving_hands_clip(frames=1)
    if clip is None:
        pytest.skip("the shared data is needed for the moving-hands clip")
    rgb = clip[0][0]
    with handspot.HandDetector() as hands:
        every = hands.detect(rgb)
    with handspot.HandDetector(handspot.HandDetectorOptions(max_hands=1)) as hands:
        one = hands.detect(rgb)
    assert len(every) == 2 and len(one) == 1
    best = int(np.argmax(every.scores))
    np.testing.assert_allclose(one.boxes[0], every.boxes[best])
    np.testing.assert_allclose(one.keypoints[0], every.keypoints[best])
