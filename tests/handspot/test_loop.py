"""The detection loops with a fake detector on tiny frames: frames come out in order whatever
order the workers finish in, the hook runs in frame order on one thread, at most 3 x workers
frames are in flight, Ctrl-C stops the run with the outputs closed, an error stops it too."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import numpy as np
import pytest

from handspot.detections import Detections
from handspot.detector import Detector
from handspot.loop import run_multi, run_single
from handspot.sinks import Sink
from handspot.sources import Frame


class Source:
    """``n`` 8x8 frames; counts how many the loop has taken."""

    def __init__(self, n: int):
        self.n, self.taken, self.closed, self.skipped = n, 0, False, 0

    def __iter__(self):
        for i in range(self.n):
            self.taken += 1
            yield Frame(i, i / 30, np.full((8, 8, 3), i % 256, np.uint8))

    def close(self):
        self.closed = True


class Slow(Detector):
    """One box a frame, its score the frame's pixel value / 255, after a random pause."""

    backend, labels = "fake", {1: "hand"}

    def __init__(self, pause: float = 0.004, fail_at: int | None = None):
        self.pause, self.fail_at, self.calls = pause, fail_at, []

    def detect(self, image):
        value = int(image[0, 0, 0])
        self.calls.append(value)
        if value == self.fail_at:
            raise RuntimeError("the model broke")
        time.sleep(random.uniform(0, self.pause))
        return Detections([[0, 0, 4, 4]], [value / 255], [1], ("hand",))


class Recorder(Sink):
    """The frames written, in the order written; optionally slow, optionally stopping."""

    def __init__(self, pause: float = 0.0, source: Source | None = None):
        self.frames, self.scores, self.pause, self.source = [], [], pause, source
        self.closed, self.ahead = False, 0

    def write(self, frame, det, picture):
        if self.source is not None:  # how far the capture ran ahead of the writing
            self.ahead = max(self.ahead, self.source.taken - len(self.frames))
        time.sleep(self.pause)
        self.frames.append(frame.index)
        self.scores.append(None if det is None or not len(det) else round(float(det.scores[0]), 4))
        return True

    def close(self):
        self.closed = True


def test_frames_come_out_in_order_whatever_order_the_workers_finish():
    random.seed(0)
    detectors = iter([Slow(), Slow(), Slow(), Slow()])
    sink, source = Recorder(), Source(120)
    report = run_multi(lambda: next(detectors), source, [sink], workers=4)
    assert sink.frames == list(range(120))
    assert sink.scores == [round(i / 255, 4) for i in range(120)]  # each frame its own result
    assert report["frames"] == 120 and sink.closed and source.closed


def test_the_hook_runs_in_frame_order_on_one_thread_and_skipped_frames_get_none():
    seen, threads = [], set()

    def hook(frame, det):
        seen.append((frame.index, det is None))
        threads.add(threading.get_ident())
        return det if det is not None else Detections()

    detectors = [Slow(), Slow()]
    made = iter(detectors)
    sink = Recorder()
    run_multi(lambda: next(made), Source(40), [sink], workers=2, hook=hook, detect_every=5)
    assert seen == [(i, i % 5 != 0) for i in range(40)]
    assert len(threads) == 1 and sink.frames == list(range(40))
    assert sorted(c for d in detectors for c in d.calls) == list(range(0, 40, 5))


def test_single_and_multi_threaded_write_the_same():
    a, b = Recorder(), Recorder()
    run_single(Slow, Source(30), [a], detect_every=3, hook=lambda f, d: d or Detections())
    run_multi(Slow, Source(30), [b], workers=3, detect_every=3, hook=lambda f, d: d or Detections())
    assert a.frames == b.frames and a.scores == b.scores


def test_at_most_three_frames_a_worker_are_in_flight():
    source = Source(200)
    sink = Recorder(pause=0.002, source=source)
    run_multi(lambda: Slow(pause=0), source, [sink], workers=2)
    assert sink.frames == list(range(200))
    assert sink.ahead <= 3 * 2 + 1  # the slots, and the frame the capture holds


def test_ctrl_c_stops_the_run_and_closes_the_outputs():
    source, sink = Source(10_000), Recorder(pause=0.001)
    before = signal.getsignal(signal.SIGINT)  # Python's, or SIG_IGN under a background job
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    start = time.perf_counter()
    report = run_multi(lambda: Slow(pause=0), source, [sink], workers=2)
    assert report["interrupted"] == signal.SIGINT and time.perf_counter() - start < 5
    assert 0 < report["frames"] == len(sink.frames) < 10_000
    assert sink.frames == list(range(len(sink.frames)))  # nothing out of order on the way out
    assert sink.closed and source.closed
    assert signal.getsignal(signal.SIGINT) is before  # restored


def test_an_error_in_the_detector_stops_the_run_and_is_raised_with_outputs_closed():
    source, sink = Source(500), Recorder()
    with pytest.raises(RuntimeError, match="the model broke"):
        run_multi(lambda: Slow(pause=0, fail_at=37), source, [sink], workers=2)
    assert sink.closed and source.closed and 37 not in sink.frames
