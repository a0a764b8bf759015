"""The browser demo's origin: 127.0.0.1 with the headers wasm threads need (COOP/COEP).

Everything comes from this origin: ``/`` the page (webexport/web), ``/model/`` the exported
model folder, ``/vendor/`` TF.js, LiteRT.js and their wasm binaries from
webexport/node_modules (npm ci), ``/vendor/tasks-vision/`` MediaPipe Tasks for the web (npm, for
tasks.html), and ``/vendor/mediapipe/`` MediaPipe's hand landmark models (inside the
``handspot`` package).
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import socket
import threading
import time
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlsplit

from common.paths import DEFAULT_MODEL
from handspot.assets import LANDMARK_MODELS, landmark_model
from handspot.card import FILE as CARD
from handspot.card import ModelCard
from handspot.errors import UserError

WEB = Path(__file__).resolve().parent  # webexport/: the page and its npm packages
TFJS = WEB / "node_modules" / "@tensorflow"
LITERT = WEB / "node_modules" / "@litertjs"
TASKS = WEB / "node_modules" / "@mediapipe" / "tasks-vision"
VENDOR = {
    "tf.min.js": TFJS / "tfjs" / "dist" / "tf.min.js",
    "tf-backend-wasm.min.js": TFJS / "tfjs-backend-wasm" / "dist" / "tf-backend-wasm.min.js",
    **{p.name: p for p in (TFJS / "tfjs-backend-wasm" / "dist").glob("*.wasm")},
    # ES modules named by the page's import map, and the runtime's wasm builds
    "litertjs/core/index.js": LITERT / "core" / "dist" / "index.js",
    "litertjs/wasm-utils/index.js": LITERT / "wasm-utils" / "dist" / "index.js",
    **{f"litertjs/wasm/{p.name}": p for p in (LITERT / "core" / "wasm").glob("*")},
    # MediaPipe Tasks for the web (tasks.html: the exported .tflite in its ObjectDetector)
    "tasks-vision/vision_bundle.mjs": TASKS / "vision_bundle.mjs",
    **{f"tasks-vision/wasm/{p.name}": p for p in (TASKS / "wasm").glob("*")},
}


MISSING = "/nonexistent"


def landmark_model_path(name: str) -> str:
    """``hand_landmark_{lite,full}.tflite``, the package's files; any other name is missing."""
    variant = next((v for v, file in LANDMARK_MODELS.items() if file == name), None)
    return MISSING if variant is None else str(landmark_model(variant))


LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]"}


class Handler(http.server.SimpleHTTPRequestHandler):
    routes: ClassVar[dict[str, Path]] = {}
    files: ClassVar[dict[str, bytes]] = {}  # paths served from memory (a card being written)
    isolate: ClassVar[bool] = True  # COOP/COEP: cross-origin isolation, so wasm threads
    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
    }

    head_timeout: ClassVar[float] = 10.0  # seconds from waiting for a request to its last header

    def handle_one_request(self):
        """One request, its head (request line and headers) due within ``head_timeout`` of
        the wait for it: a client trickling a byte at a time is cut off, as an idle one is by
        ``timeout``, so slow clients cannot hold every slot."""
        self.server.head_clock.start(self.connection, self.head_timeout)
        try:
            super().handle_one_request()
        finally:
            self.server.head_clock.stop(self.connection)

    def parse_request(self) -> bool:
        self.server.head_clock.stop(self.connection)  # the head is in
        return super().parse_request()

    def translate_path(self, path: str) -> str:
        """Only files under the served folders, after resolving links and ``..``: anything
        else (absolute or encoded remainders, links out of a folder, a NUL) is a missing
        file."""
        path = unquote(urlsplit(path).path)
        if "\x00" in path:
            return MISSING
        if path.startswith("/vendor/mediapipe/"):  # the landmark models, from the pinned wheel
            return landmark_model_path(path.removeprefix("/vendor/mediapipe/"))
        if path.startswith("/vendor/"):
            target = VENDOR.get(path.removeprefix("/vendor/"))
            return str(target) if target else MISSING
        for prefix, folder in sorted(self.routes.items(), key=lambda kv: -len(kv[0])):
            if path.startswith(prefix):
                root = folder.resolve()
                target = (root / path.removeprefix(prefix).lstrip("/")).resolve()
                if target != root and root not in target.parents:
                    return MISSING
                return str(target)
        return MISSING

    def list_directory(self, path):
        self.send_error(404, "no directory listings")
        return None

    def send_head(self):
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        if host not in LOCAL_HOSTS:  # a DNS-rebinding page names its own host here
            self.send_error(421, "unexpected Host header")
            return None
        body = self.files.get(unquote(urlsplit(self.path).path))
        if body is None:
            return super().send_head()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def end_headers(self):
        if self.isolate:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args):
        pass


def make_server(
    model: Path = DEFAULT_MODEL,
    port: int = 8000,
    extra: dict[str, Path] | None = None,
    isolate: bool = True,
    card: ModelCard | None = None,
    idle_timeout: float = 30.0,
    max_connections: int = 64,
    head_timeout: float = 10.0,
) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A server bound to 127.0.0.1 (port 0: any free port) and its base URL. ``isolate=False``
    leaves out COOP/COEP, as a host without those headers would (no wasm threads); ``card``
    is served as the model's card instead of its file (the exporter's, before it is saved).
    A connection idle for ``idle_timeout`` seconds, or whose request head is not complete
    ``head_timeout`` seconds after the server began waiting for it, is closed; at most
    ``max_connections`` are served at once (``BoundedServer``)."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be from 0 (any free port) to 65535, got {port}")
    model = Path(model)
    runnable = (
        model / "litert" / "model_int8.tflite",
        model / "tfjs" / "model.json",
        model / "model_int8.tflite",  # tasks.html: MediaPipe Tasks
        model / "model_fp32.tflite",
    )
    has_card = card is not None or (model / CARD).is_file()
    if not has_card or not any(p.is_file() for p in runnable):
        raise UserError(
            f"{model} has no browser model (litert/model_int8.tflite, tfjs/model.json or "
            "model_int8.tflite); "
            "export one with python -m pipelines.export"
        )
    if not VENDOR["tf.min.js"].is_file() or not VENDOR["litertjs/core/index.js"].is_file():
        raise UserError(f"TF.js or LiteRT.js packages missing: run `npm ci` in {WEB}")
    routes = {"/model/": model, "/": WEB / "web"}
    routes.update({f"/{k.strip('/')}/": Path(v) for k, v in (extra or {}).items()})
    files = {}
    if card is not None:
        files["/model/" + CARD] = json.dumps(card.to_dict()).encode()
    handler = type(
        "RoutedHandler",
        (Handler,),
        {
            "routes": routes,
            "isolate": isolate,
            "files": files,
            "timeout": idle_timeout,
            "head_timeout": head_timeout,
        },
    )
    server = BoundedServer(("127.0.0.1", port), handler, max_connections=max_connections)
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class HeadClock:
    """One thread for a server: shuts the connections whose request head is overdue."""

    def __init__(self):
        self._due: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.closed = False

    def start(self, connection: socket.socket, seconds: float) -> None:
        with self._lock:
            self._due[connection] = time.monotonic() + seconds
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, daemon=True)
                self._thread.start()

    def stop(self, connection: socket.socket) -> None:
        with self._lock:
            self._due.pop(connection, None)

    def _watch(self) -> None:
        while not self.closed:
            time.sleep(0.2)
            now = time.monotonic()
            with self._lock:
                late = [c for c, due in self._due.items() if due <= now]
                for c in late:
                    del self._due[c]
            for c in late:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)


class BoundedServer(http.server.ThreadingHTTPServer):
    """At most ``max_connections`` connections served at once (one thread each); more are
    closed at once rather than queued behind idle ones. The handler's ``timeout`` closes a
    connection that sends nothing for that long (slow or idle sockets). The listen backlog is
    128, not socketserver's 5 (past which a burst of clients waits out SYN retries)."""

    request_queue_size = 128

    def __init__(self, address, handler, *, max_connections: int = 64):
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_connections)
        self.head_clock = HeadClock()

    def server_close(self):
        self.head_clock.closed = True
        super().server_close()

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # full: refuse, do not keep a thread waiting
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def serve_in_background(**kwargs) -> tuple[http.server.ThreadingHTTPServer, str]:
    server, url = make_server(**kwargs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, url
