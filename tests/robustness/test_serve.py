"""The demo server serves only its own files: no traversal (plain, encoded, double slash,
absolute), no links out of the model folder, no directory listings, no foreign Host."""

from __future__ import annotations

import http.client
import shutil
from pathlib import Path

import pytest

from webexport.server import serve_in_background

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from webexport.nodejs import node_ready

    if not node_ready():
        pytest.skip("TF.js packages missing (npm ci in webexport/)")
    model = tmp_path_factory.mktemp("model")
    shutil.copy(ROOT / "exported" / "hands_ssd320" / "model_card.json", model)
    (model / "tfjs").mkdir()
    (model / "tfjs" / "model.json").write_text("{}")
    secret = tmp_path_factory.mktemp("outside") / "secret.txt"
    secret.write_text("not yours")
    (model / "link.txt").symlink_to(secret)
    (model / "linkdir").symlink_to(secret.parent)
    srv, _ = serve_in_background(model=model, port=0)
    yield srv.server_address[1]
    srv.shutdown()


def get(port: int, path: str, host: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("GET", path, skip_host=True)
    conn.putheader("Host", host or f"127.0.0.1:{port}")
    conn.endheaders()
    response = conn.getresponse()
    return response.status, response.read()


@pytest.mark.parametrize(
    "path",
    [
        "/model//etc/passwd",
        "/%2Fetc/passwd",
        "/model/%2Fetc/passwd",
        "/model/../../../../etc/passwd",
        "/model/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "//etc/passwd",
        "/model/link.txt",
        "/model/linkdir/secret.txt",
        "/%2Froot/",
        "/model/tfjs/",
        "/model/",
    ],
)
def test_nothing_outside_the_served_folders_and_no_listings(server, path):
    status, body = get(server, path)
    assert status == 404, (path, body[:200])
    assert b"root:" not in body and b"not yours" not in body


def test_the_page_and_the_model_are_served(server):
    assert get(server, "/index.html")[0] == 200
    assert get(server, "/model/tfjs/model.json") == (200, b"{}")
    assert get(server, "/model/model_card.json")[0] == 200
    assert get(server, "/index.html", host=f"localhost:{server}")[0] == 200


def test_a_foreign_host_header_is_refused(server):
    assert get(server, "/index.html", host="attacker.example:80")[0] == 421


def test_idle_sockets_are_capped_and_timed_out(tmp_path):
    """Issue 22, case 12: 200 slow sockets held 201 threads, with no timeout. Now at most
    ``max_connections`` are served at once (more are closed at once) and an idle one is closed
    after ``idle_timeout``; then the server answers again."""
    import socket
    import threading
    import time

    from webexport.nodejs import node_ready

    if not node_ready():
        pytest.skip("TF.js packages missing (npm ci in webexport/)")
    model = tmp_path / "model"
    (model / "tfjs").mkdir(parents=True)
    shutil.copy(ROOT / "exported" / "hands_ssd320" / "model_card.json", model)
    (model / "tfjs" / "model.json").write_text("{}")
    before = threading.active_count()
    srv, _ = serve_in_background(model=model, port=0, idle_timeout=1.0, max_connections=8)
    port = srv.server_address[1]
    try:
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(200)]
        time.sleep(0.3)
        assert (
            threading.active_count() - before <= 8 + 2
        )  # the slots, serve_forever, the head clock
        deadline = time.monotonic() + 10
        closed = 0
        for s in idle:  # every one is closed by the server: refused at once, or timed out
            s.settimeout(max(0.1, deadline - time.monotonic()))
            closed += s.recv(1) == b""
            s.close()
        assert closed == 200
        assert get(port, "/model/model_card.json")[0] == 200
    finally:
        srv.shutdown()


def test_clients_trickling_their_headers_cannot_hold_every_slot(tmp_path):
    """Issue 29, case 11: sockets sending one header byte every few seconds kept every slot
    (the idle timer restarts on each byte), and real requests got no answer. Now a request's
    head is due ``head_timeout`` after the server began waiting for it."""
    import socket
    import threading
    import time

    model = tmp_path / "model"
    (model / "tfjs").mkdir(parents=True)
    shutil.copy(ROOT / "exported" / "hands_ssd320" / "model_card.json", model)
    (model / "tfjs" / "model.json").write_text("{}")
    from webexport.nodejs import node_ready

    if not node_ready():
        pytest.skip("TF.js packages missing (npm ci in webexport/)")
    srv, _ = serve_in_background(
        model=model, port=0, idle_timeout=30.0, max_connections=8, head_timeout=2.0
    )
    port = srv.server_address[1]
    stop = threading.Event()

    def trickle(s: socket.socket) -> None:
        for byte in b"GET /model/model_card.json HTTP/1.1\r\nHost: 127.0.0.1\r\n":
            if stop.wait(0.5):
                return
            try:
                s.send(bytes([byte]))
            except OSError:
                return  # cut off by the server

    slow = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(8)]
    threads = [threading.Thread(target=trickle, args=(s,), daemon=True) for s in slow]
    try:
        for t in threads:
            t.start()
        time.sleep(0.5)
        start = time.monotonic()
        status = None
        while status is None and time.monotonic() - start < 10:
            try:
                status = get(port, "/model/model_card.json")[0]
            except (ConnectionError, http.client.HTTPException):
                time.sleep(0.2)  # refused while the slots are full
        assert status == 200 and time.monotonic() - start < 5
        assert all(s.recv(1) == b"" for s in slow)  # every trickler was closed
    finally:
        stop.set()
        for s in slow:
            s.close()
        srv.shutdown()


def test_a_nul_in_the_url_is_a_404_and_the_server_goes_on(server, capfd):
    assert get(server, "/model/model_card.json%00.txt")[0] == 404
    assert get(server, "/%00")[0] == 404
    assert get(server, "/model/model_card.json")[0] == 200
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("port", ["-1", "70000"])
def test_a_port_out_of_range_is_one_error(port):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "webexport.serve", "--port", port],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == f"error: --port must be from 0 (any free port) to 65535, got {port}\n"
