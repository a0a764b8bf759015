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

from handspot.detections import Detections
from handspot.detector import Detector
from handspot.profile import Profile, stage
from handspot.signals import on_stop_signals, restore_signals
from handspot.sinks import Annotator, PictureSink, Sink, stamp_fps
from handspot.sources import Frame, FrameSource, Hook, close_hook, schedule

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

    def close(self, failed: bool = False) -> None:
        """Every sink closed (``failed``: aborted, the outputs left as they were), even when one
        fails (its error raised after)."""
        error = None
        for sink in self.sinks:
            try:
                sink.abort() if failed else sink.close()
            except Exception as e:  # kept, and raised once all are closed
                error = error or e
        if error is not None and not failed:
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
    due = schedule(hook, detect_every)
    start = time.perf_counter()
    failed = True  # an error other than Ctrl-C: the outputs are left as they were
    try:
        for frame in source:
            det = None
            if due(frame.index):
                with stage(profile, "model"):
                    det = detector.detect(frame.rgb)
            if hook is not None:
                det = hook(frame, det)
            picture = writer.annotate(frame, det) if writer.needs_picture else None
            if not writer.write(frame, det, picture):
                break
        failed = False
    except KeyboardInterrupt:
        failed = False  # Ctrl-C: what was written is complete and kept
        raise
    finally:
        writer.close(failed)
        source.close()
        close_hook(hook)
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
    flight, so memory stays flat; a hook with ``read_ahead`` (video mode's tracking) is told
    of each frame as it is read, so its crops can run ahead. Ctrl-C (or a closed window)
    stops the capture, drops what is queued and closes the outputs. ``detect_every`` as in
    ``run_single``."""
    run = _MultiThreaded(make_detector, source, sinks, max(1, workers), hook, detect_every, profile)
    return run.run()


class _MultiThreaded:
    """One run of ``run_multi``: its queues, and its threads' work as methods (``capture`` in
    the capture thread, ``detect`` in the pool, ``write_queued`` in the writer thread, ``run``
    in the calling thread)."""

    def __init__(self, make_detector, source, sinks, workers, hook, detect_every, profile):
        self.source, self.hook, self.profile = source, hook, profile
        self.due = schedule(hook, detect_every)
        self.read_ahead = getattr(hook, "read_ahead", None)  # video mode's crops run ahead
        self.workers = workers
        detectors = [make_detector() for _ in range(workers)]
        self._mine, self._lock = threading.local(), threading.Lock()

        def take_detector():
            with self._lock:
                self._mine.detector = detectors.pop()

        self.pool = cf.ThreadPoolExecutor(workers, "detect", initializer=take_detector)
        self.writer = _Writer(sinks, profile)
        self.stop = threading.Event()
        self.slots = threading.Semaphore(3 * workers)  # frames in flight
        self.submitted: queue.Queue = queue.Queue()  # (frame, future of its result), in order
        self.to_write: queue.Queue = queue.Queue()  # (frame, detections, picture), in order
        self.errors: list[BaseException] = []
        self.interrupted = 0  # the signal that stopped the run (Ctrl-C, SIGTERM), if one did

    def detect(self, frame: Frame, due: bool):
        """A frame's detections, and its picture where no hook comes between (drawn here, in
        parallel; with a hook, the picture is drawn after it, in order)."""
        if self.stop.is_set():
            return _DROPPED  # interrupted: drop the frame instead of running the model
        det = None
        if due:
            with stage(self.profile, "model"):
                det = self._mine.detector.detect(frame.rgb)
        draw = self.hook is None and self.writer.needs_picture
        return det, self.writer.annotate(frame, det) if draw else None

    def submit(self, frame: Frame, due: bool) -> cf.Future:
        """The frame's work on the pool; a frame the detector skips with a hook after it has
        none there (its result is ready now: no thread woken for nothing)."""
        if due or self.hook is None:
            return self.pool.submit(self.detect, frame, due)
        ready: cf.Future = cf.Future()
        ready.set_result((None, None))
        return ready

    def capture(self) -> None:
        try:
            for frame in self.source:
                while not self.slots.acquire(timeout=0.1):
                    if self.stop.is_set():
                        return
                if self.stop.is_set():
                    return
                due = self.due(frame.index)  # asked in frame order
                if self.read_ahead is not None:
                    self.read_ahead(frame)
                self.submitted.put((frame, self.submit(frame, due)))
        except BaseException as e:  # raised again by run
            self.errors.append(e)
        finally:
            self.submitted.put(_END)

    def write_one(self, frame: Frame, det: Detections, picture) -> None:
        self.slots.release()
        if self.stop.is_set():
            return  # interrupted: what is left is dropped
        try:
            if isinstance(picture, cf.Future):
                picture = picture.result()
        except cf.CancelledError:
            return
        if not self.writer.write(frame, det, picture):
            self.stop.set()

    def write_queued(self) -> None:
        """The writer thread, so that the hook and the encoding overlap."""
        try:
            while (item := self.to_write.get()) is not _END:
                self.write_one(*item)
        except BaseException as e:
            self.errors.append(e)
            self.stop.set()

    def on_interrupt(self, signum, _frame) -> None:
        self.interrupted = signum
        self.stop.set()

    def next_result(self):
        """The next frame in order and its result, ``_DROPPED`` for a frame dropped on the way
        out, or None when the capture has ended or the run stops."""
        while not self.stop.is_set():
            try:
                item = self.submitted.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                return None
            frame, future = item
            while not self.stop.is_set():
                try:
                    return frame, future.result(timeout=0.1)
                except TimeoutError:
                    continue
            return _DROPPED
        return None

    def run(self) -> dict:
        previous = on_stop_signals(self.on_interrupt)
        capturing = threading.Thread(target=self.capture, daemon=True)
        writing = None
        if self.hook is not None:
            writing = threading.Thread(target=self.write_queued, daemon=True)
        start = time.perf_counter()
        for thread in (capturing, writing):
            if thread is not None:
                thread.start()
        failed = True
        try:
            while (item := self.next_result()) is not None:
                if item is not _DROPPED and item[1] is not _DROPPED:
                    self.handle(item[0], *item[1])
            failed = False
        except KeyboardInterrupt:
            failed = False  # Ctrl-C off the main thread: what was written is complete
            raise
        finally:
            self.shutdown(capturing, writing, failed or bool(self.errors))
            restore_signals(previous)
        if self.errors:
            raise self.errors[0]
        report = _report(self.writer.count, self.source, start, self.profile, self.workers)
        report["interrupted"] = self.interrupted
        return report

    def handle(self, frame: Frame, det: Detections | None, picture) -> None:
        """A frame's result, in frame order: written here, or (with a hook) hooked here, drawn
        in the pool and queued for the writer thread."""
        if self.hook is None:
            self.write_one(frame, det, picture)
            return
        det = self.hook(frame, det)
        if self.writer.needs_picture:
            picture = self.pool.submit(self.writer.annotate, frame, det)
        self.to_write.put((frame, det, picture))

    def shutdown(
        self, capturing: threading.Thread, writing: threading.Thread | None, failed: bool
    ) -> None:
        """Everything detected is written (unless stopped); threads joined; outputs closed, or
        (``failed``: an error, not Ctrl-C) left as they were."""
        if writing is not None and not self.errors and not self.stop.is_set():
            self.to_write.put(_END)
            writing.join()
        self.stop.set()
        close_hook(self.hook)  # a capture thread waiting on the tracking's pace lets go
        capturing.join(timeout=5)
        self.pool.shutdown(wait=True, cancel_futures=True)
        if writing is not None:
            self.to_write.put(_END)
            writing.join(timeout=5)
        self.writer.close(failed or bool(self.errors))
        self.source.close()


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
        report["profile_ms"] = {  # the tracking's stages where it ran
            k: round(1000 * v / max(frames, 1), 3)
            for k, v in profile.seconds.items()
            if v or k in profile.STAGES
        }
        report["profile_table"] = profile.table(frames, seconds, workers)
    return report
