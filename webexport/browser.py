"""Headless Chromium (Debian's /usr/bin/chromium, no browser download) driven by Playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence

import cv2
from tqdm import tqdm

from handspot.decode import MIN_SCORE
from handspot.errors import UserError
from webexport.server import VENDOR, WEB, serve_in_background

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
    height, width = frames_bgr[0].shape[:2]
    if width % 2 or height % 2:
        raise UserError("a y4m clip needs an even width and height")
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames_bgr:
            if frame.shape[:2] != (height, width):
                frame = cv2.resize(frame, (width, height))
            f.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())


def hands_js_detections(
    model_dir: str | os.PathLike,
    images: Sequence,
    *,
    runtime: str = "litert-threads",
    precision: str = "int8",
    score_threshold: float = MIN_SCORE,
    chunk: int = 16,
    card=None,
) -> list[list[dict]]:
    """The demo page's own detections (``hands.load({runtime, precision})`` then
    ``detect(img)``, the network alone: no landmark stage) on RGB images, in one headless
    Chromium page served from 127.0.0.1.
    Images reach the page as PNG, so it sees the very pixels given here. ``card``: a
    ``ModelCard`` to serve instead of the folder's file."""
    return page_detections(
        model_dir,
        images,
        f"index.html?runtime={runtime}&precision={precision}",
        "await window.handsDetector.detect(img, {scoreThreshold: threshold, landmarks: false})",
        score_threshold=score_threshold,
        chunk=chunk,
        card=card,
        desc=f"Chromium {runtime}",
    )


def tasks_js_detections(
    model_dir: str | os.PathLike,
    images: Sequence,
    *,
    file: str = "model_int8.tflite",
    score_threshold: float = MIN_SCORE,
    card=None,
) -> list[list[dict]]:
    """MediaPipe Tasks' ObjectDetector for the web (tasks.html, @mediapipe/tasks-vision from
    npm) on the folder's ``file``: ``[{box, score, label}]`` an image, boxes in pixels."""
    if not VENDOR["tasks-vision/vision_bundle.mjs"].is_file():
        raise UserError(f"@mediapipe/tasks-vision missing: run `npm ci` in {WEB}")
    return page_detections(
        model_dir,
        images,
        f"tasks.html?model={file}&threshold={score_threshold}",
        "window.tasksDetector.detect(img, threshold)",
        score_threshold=score_threshold,
        card=card,
        desc=f"Chromium MediaPipe Tasks {file}",
    )


RUN_IMAGES = """async ([urls, threshold]) => {
    const out = [];
    for (const u of urls) {
      const img = new Image();
      img.src = u;
      await img.decode();
      out.push(CALL);
    }
    return out;
}"""


def page_detections(
    model_dir: str | os.PathLike,
    images: Sequence,
    page_path: str,
    call: str,
    *,
    score_threshold: float,
    chunk: int = 16,
    card=None,
    desc: str = "Chromium",
) -> list[list[dict]]:
    """One page of webexport/web (``page_path``, served from 127.0.0.1 with the model folder)
    run on RGB images: ``call``, a JS expression of ``img`` and ``threshold``, an image, once
    the page sets ``document.body.dataset.ready`` (or ``.error``)."""
    with tempfile.TemporaryDirectory() as tmp:
        names = []
        for i, image in enumerate(images):
            ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            if not ok:
                raise UserError(f"cannot encode image {i} as PNG")
            names.append(f"{i:06d}.png")
            with open(os.path.join(tmp, names[-1]), "wb") as f:
                f.write(png.tobytes())
        server, url = serve_in_background(model=model_dir, port=0, extra={"media": tmp}, card=card)
        try:
            with browser_page(timeout_s=300) as page:
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(url + page_path)
                page.wait_for_function(
                    "document.body.dataset.ready === '1' || document.body.dataset.error"
                )
                state = page.evaluate("document.body.dataset.error")
                if state or errors:
                    raise UserError(f"the page {page_path} could not load: {state or errors}")
                found: list[list[dict]] = []
                bar = tqdm(total=len(names), desc=desc, leave=False)
                run = RUN_IMAGES.replace("CALL", call)
                for start in range(0, len(names), chunk):
                    urls = [f"/media/{n}" for n in names[start : start + chunk]]
                    found += page.evaluate(run, [urls, score_threshold])
                    bar.update(len(urls))
                bar.close()
        finally:
            server.shutdown()
    return found
