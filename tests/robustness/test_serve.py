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
        assert threading.active_count() - before <= 8 + 1  # the slots and serve_forever
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
