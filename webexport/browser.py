"""Headless Chromium (Debian's /usr/bin/chromium, no browser download) driven by Playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

from prep.common import UserError

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
def browser_page(timeout_s: float = 120) -> Iterator:
    """A fresh page in a fresh profile; closed (with the browser) on exit."""
    if not chromium_ready():
        raise UserError(f"headless Chromium not available ({CHROMIUM}); apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1300, "height": 900},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(timeout_s * 1000)
            yield page
        finally:
            context.close()
