"""Video mode's landmark crops on threads: ``Crops`` runs the crops of one frame at once (the
calling thread and a pool, a model each), ``Ahead`` runs each followed hand's crops ahead on the
frames the loop has read, one chain a hand (the same crops as one after the other)."""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from handspot.landmarks import Hand, LandmarkModel, LandmarkOptions, Roi


class Followed(Protocol):
    """A followed hand, as the chains see it: its track's id and its next crop."""

    id: int
    roi: Roi


class Crops:
    """The landmark model on several crops of one frame: in turn with one worker; with more,
    ``workers`` at once, the calling thread taking its share and a pool's threads the rest,
    a model each (LiteRT lets go of the GIL while it runs). The pool (``workers`` threads)
    also runs the crops ahead (``submit``)."""

    def __init__(self, model: LandmarkModel, variant: str, workers: int):
        self.model, self.variant, self.workers = model, variant, workers
        self._pool, self._mine = None, threading.local()
        if workers > 1:  # the threads' models made now, not at the first frames (16 ms each)
            self._models = [LandmarkModel(variant) for _ in range(workers)]
            self._pool = cf.ThreadPoolExecutor(workers, "landmarks", initializer=self._own)

    @property
    def pooled(self) -> bool:
        return self._pool is not None

    def _own(self) -> None:
        self._mine.model = self._models.pop()  # list.pop is atomic: one model a thread

    def submit(self, work: Callable[[LandmarkModel], object]) -> cf.Future:
        """``work(model)`` on a pool thread, with that thread's own model."""
        return self._pool.submit(lambda: work(self._mine.model))

    def run(self, image: np.ndarray, rois: list[Roi]) -> list[Hand]:
        return self.each(lambda roi: self.model.run(image, roi), rois,
                         lambda roi: self._mine.model.run(image, roi))  # fmt: skip

    def refine(self, image: np.ndarray, boxes: list, options: LandmarkOptions) -> list[Hand]:
        """``LandmarkModel.refine`` on each detector's box, at once."""
        return self.each(lambda box: self.model.refine(image, box, options), boxes,
                         lambda box: self._mine.model.refine(image, box, options))  # fmt: skip

    def each(self, work: Callable, items, pooled: Callable | None = None) -> list:
        """``work(item)`` for every item, in order; with a pool, this thread and up to
        ``workers - 1`` of the pool's take the items one at a time until none is left
        (``pooled(item)`` there, where given: the pool's threads keep their own model), so a
        pool thread slow to start leaves its items to this one instead of being waited for."""
        items = list(items)
        if self._pool is None or len(items) < 2:
            return [work(item) for item in items]
        done: list = [None] * len(items)
        taken = itertools.count()  # next() on it is atomic: each item is taken once

        def take(run: Callable) -> None:
            while (i := next(taken)) < len(items):
                done[i] = run(items[i])

        helpers = [self._pool.submit(take, pooled or work)
                   for _ in range(min(self.workers, len(items)) - 1)]  # fmt: skip
        take(work)
        for helper in helpers:
            if not helper.cancel():  # started: it may be running an item
                helper.result()
        return done

    def close(self) -> None:
        if self._pool is not None:  # crops queued ahead are not run
            self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Chain:
    """One followed hand's crops run ahead: the next crop's frame and place, and the crops
    started."""

    roi: Roi
    waiting: int | None  # the frame the next crop waits for (None: one runs, or it stopped)
    results: dict[int, cf.Future] = field(default_factory=dict)
    alive: bool = True


class Ahead:
    """Each followed hand's crops, run ahead on the frames the loop has read (``read``) and
    not yet hooked: a hand's crop on the next frame starts on a pool thread as soon as its
    crop on this frame is done, from its keypoints there, so a hand waits neither for the
    other hands of its frame nor for the tracking's bookkeeping (video mode +5% on 2 hands).
    These are the crops the tracking would take in turn: the results are the same. A hand
    lost or dropped stops its chain. Off without a pool (one worker) and where nothing is
    read ahead: ``hands`` runs the crops then."""

    def __init__(self, crops: Crops, presence: float):
        self.crops, self.presence = crops, presence
        self._lock = threading.Lock()
        self._frames: dict[int, np.ndarray] = {}  # read, not yet tracked
        self._chains: dict[int, _Chain] = {}  # track id -> its chain
        self._closed = False

    def read(self, index: int, image: np.ndarray) -> None:
        if not self.crops.pooled:
            return
        with self._lock:
            if self._closed:
                return
            self._frames[index] = image
            for chain in self._chains.values():
                if chain.waiting == index:
                    self._start(chain, index)

    def _start(self, chain: _Chain, index: int) -> None:  # with the lock
        chain.waiting = None
        image = self._frames[index]
        chain.results[index] = self.crops.submit(
            lambda model: self._step(model, chain, index, image)
        )

    def _step(self, model: LandmarkModel, chain: _Chain, index: int, image: np.ndarray) -> Hand:
        """A chain's crop on frame ``index``, then its next crop, where the hand holds."""
        hand = model.run(image, chain.roi)
        with self._lock:
            if not self._closed and chain.alive and hand.presence >= self.presence:
                chain.roi = Roi.from_keypoints(hand.keypoints)
                chain.waiting = index + 1
                if index + 1 in self._frames:
                    self._start(chain, index + 1)
        return hand

    def hands(self, image: np.ndarray, index: int, tracks: Sequence[Followed]) -> list[Hand]:
        """Each track's hand on frame ``index``: its chain's, else run now."""
        with self._lock:
            ahead = [self._chains[t.id].results.pop(index, None) if t.id in self._chains
                     else None for t in tracks]  # fmt: skip
        missing = [i for i, f in enumerate(ahead) if f is None]
        ran = iter(self.crops.run(image, [tracks[i].roi for i in missing]))
        return [next(ran) if f is None else f.result() for f in ahead]

    def follow(self, index: int, tracks: Sequence[Followed]) -> None:
        """Frame ``index`` tracked: a chain for each track kept (from its keypoints there,
        where none runs ahead), none for the others."""
        if not self.crops.pooled:
            return
        with self._lock:
            if self._closed:
                return
            self._frames.pop(index, None)
            kept = {t.id for t in tracks}
            for gone in [i for i in self._chains if i not in kept]:
                self._chains.pop(gone).alive = False
            for t in tracks:
                chain = self._chains.get(t.id)
                if chain is None or (chain.waiting is None and index + 1 not in chain.results):
                    chain = self._chains[t.id] = _Chain(t.roi, index + 1)
                    if index + 1 in self._frames:
                        self._start(chain, index + 1)

    def close(self) -> None:
        """No crop starts any more (the pool's owner shuts it down)."""
        with self._lock:
            self._closed = True
            self._frames.clear()
