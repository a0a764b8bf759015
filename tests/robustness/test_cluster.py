"""Issue 22, case 5: multi-worker waits that end within their stated timeout, a port that is
taken, an evaluator task. The waits run in C++ (deaf to Python's timeouts and SIGTERM): before,
a worker whose peer's port was held by another program hung for good after the rendezvous."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from common.paths import DEFAULT_MODEL
from handspot.errors import UserError
from pipelines.distribute import parse_tf_config, wait_for_workers
from tests.pipelines.test_distribute import free_ports, run_train, task


class Impostor:
    """Another program on a port: accepts connections, holds them, never says a word."""

    def __init__(self, port: int):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        self.sock.close()
        for s in self.held:
            s.close()


@pytest.mark.slow
def test_a_peers_port_held_by_another_program_ends_within_the_timeout():
    """The rendezvous probe finds the port open, then TensorFlow waits for a worker that never
    registers: now one error within --connect-timeout (TensorFlow's registration deadline, a
    watchdog behind it), from either side (the chief, which hosts the coordination service, and
    a worker whose chief is the impostor)."""
    pipeline = str(DEFAULT_MODEL / "pipeline.config")
    procs, impostors = [], []
    t0 = time.monotonic()
    try:
        for index in (0, 1):  # the chief with an impostor for worker 1, worker 1 with one chief
            ports = free_ports(2)
            impostors.append(Impostor(ports[1 - index]))
            args = ["--pipeline", pipeline, "--model-dir", "/nonexistent/never-written",
                    "--num-workers", "2", "--connect-timeout", "5"]  # fmt: skip
            cluster = {"worker": [f"localhost:{p}" for p in ports]}
            procs.append(run_train(*args, tf_config=task(cluster, index), wait=False))
        results = [(p, *p.communicate(timeout=150)) for p in procs]
        elapsed = time.monotonic() - t0
    finally:
        for p in procs:
            p.kill()
        for i in impostors:
            i.close()
    for proc, _, err in results:
        assert proc.returncode != 0 and "Traceback" not in err, err[-1500:]
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1, err[-1500:]
        assert errors[0].startswith("error: the workers did not all join within 5 s"), errors
    assert elapsed < 90  # 5 s of waiting (25 s at worst: the watchdog) plus start-up


def test_this_workers_port_taken_is_one_clear_error():
    (port,) = free_ports(1)
    taken = Impostor(port)
    try:
        cluster = parse_tf_config(
            json.dumps(task({"worker": [f"localhost:{port}", "localhost:1"]}, 0))
        )
        with pytest.raises(UserError, match=f"cannot listen on this worker's port {port}"):
            wait_for_workers(cluster, timeout_s=5)
    finally:
        taken.close()


def test_evaluator_tasks_are_not_workers():
    """The TFJob's cluster lists the evaluator beside the workers: the workers train without it;
    train started as the evaluator says what to run there instead."""
    cluster = {"worker": ["a:1", "b:2"], "evaluator": ["e:3"]}
    assert parse_tf_config(json.dumps(task(cluster, 1))).workers == ["a:1", "b:2"]
    with pytest.raises(UserError, match=r"'evaluator' does not train: .*--follow"):
        parse_tf_config(json.dumps(task(cluster, 0, "evaluator")))
