"""The detection loops: frames from a source, a detector on each, a per-frame hook in frame order
(where tracking goes), the annotated picture drawn from what the hook returns, then the sinks.

    report = run_multi(make_detector, FrameSource("video.mp4"), [JsonLinesSink("out.jsonl")])

``make_detector`` is a factory (each worker gets a detector of its own); ``hook(frame, det)``
returns the detections to draw and write, and is always called in frame order, in one thread
(``det`` is None on the frames the detector skips, with ``detect_every`` above 1).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import queue
import threading
import time
from collections.abc import Callable, Sequence

from common import on_stop_signals, restore_signals
from common.backends import Detector
from common.detections import Detections
from detect.profile import Profile, stage
from detect.sinks import Annotator, PictureSink, Sink, stamp_fps
from detect.sources import Frame, FrameSource

Hook = Callable[[Frame, Detections | None], Detections]
_END = object()
_DROPPED = object()


class RateMeter:
    """Frames per second over the last two seconds."""

    def __init__(self, window: float = 2.0):
        self.window = window
        self._times: collections.deque[float] = collections.deque()

    def tick(self) -> float:
        now = time.perf_counter()
        self._times.append(now)
        while now - self._times[0] >= self.window:
            self._times.popleft()
        return (len(self._times) - 1) / max(now - self._times[0], 1e-6)


class _Writer:
    """Hands one frame at a time, in order, to every sink (the frame rate stamped on streamed
    pictures); counts them."""

    def __init__(self, sinks: Sequence[Sink], profile: Profile | None):
        self.sinks = list(sinks)
        self.needs_picture = any(s.needs_picture for s in self.sinks)
        self.show_fps = not any(isinstance(s, PictureSink) for s in self.sinks)
        self.annotate = Annotator(profile)
        self.meter = RateMeter()
        self.count = 0

    def write(self, frame: Frame, det: Detections, picture) -> bool:
        self.count += 1
        fps = self.meter.tick()
        if picture is not None and self.show_fps:
            stamp_fps(picture, fps)
        go_on = True
        for sink in self.sinks:
            go_on = sink.write(frame, det, picture) and go_on
        return go_on

    def close(self) -> None:
        """Every sink closed, even when one fails (its error raised after)."""
        error = None
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as e:  # kept, and raised once all are closed
                error = error or e
        if error is not None:
            raise error


def run_single(
    make_detector: Callable[[], Detector],
    source: FrameSource,
    sinks: Sequence[Sink],
    *,
    hook: Hook | None = None,
    detect_every: int = 1,
    profile: Profile | None = None,
) -> dict:
    """One thread: decode, detect, hook, draw, write, frame after frame. With ``detect_every``
    N > 1 the detector runs on every Nth frame only and the hook gets None on the others."""
    detector = make_detector()
    writer = _Writer(sinks, profile)
    start = time.perf_counter()
    try:
        for frame in source:
            det = None
            if frame.index % detect_every == 0:
                with stage(profile, "model"):
                    det = detector.detect(frame.rgb)
            if hook is not None:
                det = hook(frame, det)
            picture = writer.annotate(frame, det) if writer.needs_picture else None
            if not writer.write(frame, det, picture):
                break
    finally:
        writer.close()
        source.close()
    return _report(writer.count, source, start, profile, 1)


def run_multi(
    make_detector: Callable[[], Detector],
    source: FrameSource,
    sinks: Sequence[Sink],
    *,
    workers: int = 2,
    hook: Hook | None = None,
    detect_every: int = 1,
    profile: Profile | None = None,
) -> dict:
    """A capture thread decodes and hands each frame to a pool of ``workers`` threads (a
    detector each, drawing the picture when no hook comes between); this thread takes the
    results in frame order and writes them. With a hook, this thread runs it in frame order,
    hands the drawing of its result back to the pool, and a writer thread writes the pictures
    in order (so the hook and the encoding overlap). At most ``3 * workers`` frames are in
    flight, so memory stays flat. Ctrl-C (or a closed window) stops the capture, drops what
    is queued and closes the outputs. ``detect_every`` as in ``run_single``."""
    workers = max(1, workers)
    detectors = [make_detector() for _ in range(workers)]
    mine = threading.local()
    lock = threading.Lock()

    def take_detector():
        with lock:
            mine.detector = detectors.pop()

    pool = cf.ThreadPoolExecutor(workers, "detect", initializer=take_detector)
    writer = _Writer(sinks, profile)
    stop = threading.Event()
    slots = threading.Semaphore(3 * workers)
    submitted: queue.Queue = queue.Queue()  # (frame, future of its detections), in frame order
    to_write: queue.Queue = queue.Queue()  # (frame, detections, future of its picture), in order
    errors: list[BaseException] = []

    def detect(frame: Frame):
        """A frame's detections, and its picture where no hook comes between (drawn here, in
        parallel; with a hook, the picture is drawn after it, in order)."""
        if stop.is_set():
            return _DROPPED  # interrupted: drop the frame instead of running the model
        det = None
        if frame.index % detect_every == 0:
            with stage(profile, "model"):
                det = mine.detector.detect(frame.rgb)
        picture = writer.annotate(frame, det) if hook is None and writer.needs_picture else None
        return det, picture

    def capture():
        try:
            for frame in source:
                while not slots.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                submitted.put((frame, pool.submit(detect, frame)))
        except BaseException as e:  # raised again below
            errors.append(e)
        finally:
            submitted.put(_END)

    def write_one(frame: Frame, det: Detections, picture) -> None:
        slots.release()
        if stop.is_set():
            return  # interrupted: what is left is dropped
        try:
            if isinstance(picture, cf.Future):
                picture = picture.result()
        except cf.CancelledError:
            return
        if not writer.write(frame, det, picture):
            stop.set()

    def write_queued():  # the writer thread, so that the hook and the encoding overlap
        try:
            while (item := to_write.get()) is not _END:
                write_one(*item)
        except BaseException as e:
            errors.append(e)
            stop.set()

    interrupted = 0  # the signal that stopped the run (Ctrl-C, SIGTERM), if one did

    def on_interrupt(signum, frame_):
        nonlocal interrupted
        interrupted = signum
        stop.set()

    previous = on_stop_signals(on_interrupt)
    capturing = threading.Thread(target=capture, daemon=True)
    writing = threading.Thread(target=write_queued, daemon=True) if hook is not None else None
    start = time.perf_counter()
    for thread in (capturing, writing):
        if thread is not None:
            thread.start()
    try:
        while not stop.is_set():
            try:
                item = submitted.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                break
            frame, future = item
            result = _DROPPED
            while not stop.is_set():
                try:
                    result = future.result(timeout=0.1)
                    break
                except TimeoutError:
                    continue
            if result is _DROPPED:
                continue
            det, picture = result
            if hook is None:  # nothing else for this thread to do: it writes
                write_one(frame, det, picture)
                continue
            det = hook(frame, det)
            if writer.needs_picture:
                picture = pool.submit(writer.annotate, frame, det)
            to_write.put((frame, det, picture))
    finally:
        if writing is not None and not errors and not stop.is_set():
            to_write.put(_END)
            writing.join()  # everything detected is written
        stop.set()
        capturing.join(timeout=5)
        pool.shutdown(wait=True, cancel_futures=True)
        if writing is not None:
            to_write.put(_END)
            writing.join(timeout=5)
        writer.close()
        source.close()
        restore_signals(previous)
    if errors:
        raise errors[0]
    report = _report(writer.count, source, start, profile, workers)
    report["interrupted"] = interrupted
    return report


def _report(
    frames: int, source: FrameSource, start: float, profile: Profile | None, workers: int
) -> dict:
    seconds = time.perf_counter() - start
    report = {
        "frames": frames,
        "seconds": round(seconds, 3),
        "fps": round(frames / seconds, 2) if seconds > 0 else 0.0,
        "skipped": source.skipped,
    }
    if profile is not None:
        report["profile_ms"] = {
            k: round(1000 * v / max(frames, 1), 3) for k, v in profile.seconds.items()
        }
        report["profile_table"] = profile.table(frames, seconds, workers)
    return report
