"""Serve the browser demo on 127.0.0.1 with the headers wasm threads need (COOP/COEP).

    python -m webexport.serve [--model exported/hands_ssd320] [--port 8000]

Everything comes from this origin: ``/`` the page (webexport/web), ``/model/`` the exported
model folder, ``/vendor/`` TF.js and its wasm binaries from webexport/node_modules.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import sys
import threading
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlsplit

from common import DEFAULT_MODEL, UserError, fail

WEB = Path(__file__).resolve().parent
TFJS = WEB / "node_modules" / "@tensorflow"
VENDOR = {
    "tf.min.js": TFJS / "tfjs" / "dist" / "tf.min.js",
    "tf-backend-wasm.min.js": TFJS / "tfjs-backend-wasm" / "dist" / "tf-backend-wasm.min.js",
    **{p.name: p for p in (TFJS / "tfjs-backend-wasm" / "dist").glob("*.wasm")},
}


MISSING = "/nonexistent"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]"}


class Handler(http.server.SimpleHTTPRequestHandler):
    routes: ClassVar[dict[str, Path]] = {}
    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
    }

    def translate_path(self, path: str) -> str:
        """Only files under the served folders, after resolving links and ``..``: anything
        else (absolute or encoded remainders, links out of a folder) is a missing file."""
        path = unquote(urlsplit(path).path)
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
        return super().send_head()

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args):
        pass


def make_server(
    model: Path = DEFAULT_MODEL, port: int = 8000, extra: dict[str, Path] | None = None
) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A server bound to 127.0.0.1 (port 0: any free port) and its base URL."""
    model = Path(model)
    if not (model / "model_card.json").is_file() or not (model / "tfjs" / "model.json").is_file():
        raise UserError(
            f"{model} has no TF.js model (tfjs/model.json); export one with "
            "python -m pipelines.export"
        )
    if not VENDOR["tf.min.js"].is_file():
        raise UserError(f"TF.js packages missing: run `npm ci` in {WEB}")
    routes = {"/model/": model, "/": WEB / "web"}
    routes.update({f"/{k.strip('/')}/": Path(v) for k, v in (extra or {}).items()})
    handler = type("RoutedHandler", (Handler,), {"routes": routes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def serve_in_background(**kwargs) -> tuple[http.server.ThreadingHTTPServer, str]:
    server, url = make_server(**kwargs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, url


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m webexport.serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--port", type=int, default=8000)
    args = p.parse_args(argv)
    try:
        server, url = make_server(args.model, args.port)
    except (UserError, OSError) as e:
        return fail(str(e))
    print(f"serving {args.model} at {url} (Ctrl-C to stop)")
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
