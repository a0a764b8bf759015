"""Image validation and the resumable download, against a Range-capable server on loopback."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest

from handspot.errors import UserError
from prep.sources import download, validate_image


class RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = b""
    cut_after: int | None = None  # drop the connection after this many bytes (first request)
    requests: ClassVar[list[str | None]] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        rng = self.headers.get("Range")
        type(self).requests.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        body = self.payload[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.cut_after is not None:
            self.wfile.write(body[: self.cut_after])
            type(self).cut_after = None
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def server():
    RangeHandler.payload = np.random.default_rng(0).bytes(3_000_000)
    RangeHandler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/egohands_data.zip"
    httpd.shutdown()


def test_download_resumes_after_a_dropped_connection(server, tmp_path):
    RangeHandler.cut_after = 1_000_000
    dest = tmp_path / "egohands_data.zip"
    with pytest.raises(UserError, match="run again to resume"):
        download(server, dest, chunk=65536)
    part = dest.with_name(dest.name + ".part")
    assert part.stat().st_size == 1_000_000 and not dest.exists()
    assert download(server, dest, chunk=65536) == dest
    assert dest.read_bytes() == RangeHandler.payload
    assert RangeHandler.requests == [None, "bytes=1000000-"]
    assert not part.exists()


def test_download_reports_unreachable_host(tmp_path):
    with pytest.raises(UserError, match="pass --source"):
        download("http://127.0.0.1:9/egohands_data.zip", tmp_path / "x.zip")


def test_validate_image(tmp_path):
    img = np.random.default_rng(1).integers(0, 255, (90, 160, 3), dtype=np.uint8)
    jpeg = cv2.imencode(".jpg", img)[1].tobytes()
    png = cv2.imencode(".png", img)[1].tobytes()
    assert validate_image(jpeg) == (160, 90, "jpeg")
    assert validate_image(png) == (160, 90, "png")
    with pytest.raises(ValueError, match="truncated"):
        validate_image(jpeg[: len(jpeg) // 2])
    with pytest.raises(ValueError, match="truncated PNG"):
        validate_image(png[: len(png) // 2])
    with pytest.raises(ValueError, match="not a JPEG or PNG"):
        validate_image(b"GIF89a")
    # Damage in the middle of the entropy-coded data, end marker intact.
    broken = jpeg[:400] + b"\xff\xd8" * 50 + jpeg[500:]
    with pytest.raises(ValueError):
        validate_image(broken)


def test_label_map_round_trip(tmp_path):
    from common.labelmap import read_label_map, write_label_map

    write_label_map(tmp_path / "lm.pbtxt", ["myleft", "myright"])
    assert read_label_map(tmp_path / "lm.pbtxt") == {1: "myleft", 2: "myright"}
    (tmp_path / "bad.pbtxt").write_text("item { name: 'x' }")
    with pytest.raises(UserError, match="needs an id"):
        read_label_map(tmp_path / "bad.pbtxt")
    assert Path(tmp_path / "lm.pbtxt").read_text().startswith("item {\n  id: 1\n  name: 'myleft'")
