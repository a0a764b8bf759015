"""Headless Chromium (Debian's /usr/bin/chromium, no browser download) driven by Playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence

from common import UserError

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_ready() -> bool:
    if not (shutil.which(CHROMIUM) or os.path.isfile(CHROMIUM)):
        return False
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def browser_page(timeout_s: float = 120, extra_args: Sequence[str] = ()) -> Iterator:
    """A fresh page in a fresh profile; closed (with the browser) on exit. ``extra_args`` are
    more Chromium flags (e.g. a fake camera)."""
    if not chromium_ready():
        raise UserError(f"headless Chromium not available ({CHROMIUM}); apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=[*FLAGS, *extra_args],
            viewport={"width": 1300, "height": 900},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(timeout_s * 1000)
            yield page
        finally:
            context.close()


def fake_camera_flags(y4m: str | os.PathLike) -> list[str]:
    """Chromium flags that make ``getUserMedia`` a camera playing ``y4m`` (looped), allowed
    without a prompt."""
    return [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={os.fspath(y4m)}",
    ]


def write_y4m(path: str | os.PathLike, frames_bgr: Sequence, fps: int = 10) -> None:
    """A raw YUV4MPEG2 (4:2:0) clip, the format Chromium's fake camera plays."""
    import cv2

    height, width = frames_bgr[0].shape[:2]
    if width % 2 or height % 2:
        raise UserError("a y4m clip needs an even width and height")
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames_bgr:
            if frame.shape[:2] != (height, width):
                frame = cv2.resize(frame, (width, height))
            f.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
