"""``--profile``: the time each stage of detection takes per frame, summed over threads."""

from __future__ import annotations

import contextlib
import threading
import time

_NONE = contextlib.nullcontext()


class Profile:
    """Seconds spent in each stage, summed over threads."""

    STAGES = ("decode", "resize", "model", "draw", "encode+write", "json")
    HOOK = ("landmarks", "track", "new hands", "masks")  # video mode's tracking, frame order

    def __init__(self):
        self.seconds = dict.fromkeys(self.STAGES + self.HOOK, 0.0)
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def stage(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.seconds[name] += time.perf_counter() - t

    def table(self, frames: int, wall: float, workers: int) -> str:
        """ms per frame in each stage and the thread it runs in: capture decodes, the worker
        pool runs the model (and, with several workers, draws), video mode's tracking runs in
        frame order (its crops on a pool of their own), the writer writes in order."""
        lines = ["| stage | ms/frame | thread |", "|---|---|---|"]
        pool = f"{workers} worker(s)"
        where = {"decode": "capture", "resize": "capture", "model": pool}
        where |= dict.fromkeys(self.HOOK, "tracking (frame order)")
        if workers > 1:
            where["draw"] = pool
        hooked = any(self.seconds[k] for k in self.HOOK)
        for name in self.STAGES + (self.HOOK if hooked else ()):
            ms = 1000 * self.seconds[name] / max(frames, 1)
            lines.append(f"| {name} | {ms:.2f} | {where.get(name, 'writer')} |")
        serial = {
            "capture": self.seconds["decode"] + self.seconds["resize"],
            "writer": sum(self.seconds[k] for k in ("encode+write", "json"))
            + (0 if workers > 1 else self.seconds["draw"]),
            "worker": (self.seconds["model"] + (self.seconds["draw"] if workers > 1 else 0))
            / workers,
            "tracking": sum(self.seconds[k] for k in self.HOOK),
        }
        busiest = max(serial, key=serial.get)
        lines.append(
            f"wall {1000 * wall / max(frames, 1):.2f} ms/frame; busiest: {busiest} thread at "
            f"{1000 * serial[busiest] / max(frames, 1):.2f} ms/frame; all stages together "
            f"{1000 * sum(self.seconds.values()) / max(frames, 1):.2f} ms/frame"
        )
        return "\n".join(lines)


def stage(profile: Profile | None, name: str):
    """``profile.stage(name)``, or nothing when not profiling."""
    return profile.stage(name) if profile else _NONE
