"""The tf.distribute strategy pipelines.train runs under, chosen as ``model_main_tf2`` does.

- ``--tpu NAME``: TPUStrategy on that TPU (``local`` for a TPU VM);
- ``--num-workers N`` > 1, or a TF_CONFIG naming several tasks: MultiWorkerMirroredStrategy,
  the cluster and this process's role read from TF_CONFIG (set by Kubeflow's TFJob operator,
  or by hand: ``{"cluster": {"worker": ["host0:port", "host1:port"]}, "task": {"type":
  "worker", "index": 0}}``); worker 0 (or the ``chief`` task) is the chief;
- ``--cpu-replicas N``: MirroredStrategy over N logical CPU devices (tests and the bench);
- otherwise MirroredStrategy over every local GPU when there are several, else the default
  one-device strategy.

Batch sizes stay global: each replica gets ``batch / replicas``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from handspot.errors import UserError
from pipelines.odapi_compat import tf

CONNECT_TIMEOUT_S = 120.0


@dataclass
class Cluster:
    """This process's place in a multi-worker job (from TF_CONFIG)."""

    workers: list[str] = field(default_factory=list)  # host:port of every task, chief first
    task_type: str = "worker"
    task_index: int = 0
    address: str = ""
    has_chief: bool = False

    @property
    def is_chief(self) -> bool:
        return self.task_type == "chief" or (
            self.task_type == "worker" and self.task_index == 0 and not self.has_chief
        )


def parse_tf_config(text: str | None) -> Cluster | None:
    """TF_CONFIG as a Cluster; None when unset or naming a single task. One clear error when it
    is not what the strategy needs."""
    if not text:
        return None
    try:
        conf = json.loads(text)
    except ValueError as e:
        raise UserError(f"TF_CONFIG is not valid JSON ({e})") from None
    if not isinstance(conf, dict) or not isinstance(conf.get("cluster"), dict):
        raise UserError('TF_CONFIG needs a "cluster" object, e.g. {"worker": ["host:port", ...]}')
    cluster, task = conf["cluster"], conf.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise UserError('TF_CONFIG needs a "task" object: {"type": "worker", "index": N}')
    kind, index = task["type"], task["index"]
    if kind == "evaluator":
        raise UserError(
            "TF_CONFIG task type 'evaluator' does not train: run the side-car "
            "`python -m pipelines.evaluate --model-dir DIR --follow` there (as "
            "pipelines/cluster/tfjob.yaml does)"
        )
    if kind not in cluster:
        raise UserError(f"TF_CONFIG task type {kind!r} is not in its cluster ({sorted(cluster)})")
    for name, hosts in cluster.items():
        if not isinstance(hosts, list) or not hosts:
            raise UserError(f"TF_CONFIG cluster {name!r} must be a non-empty list of host:port")
        for h in hosts:
            host, _, port = str(h).rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise UserError(f"TF_CONFIG cluster {name!r}: {h!r} is not host:port")
    if not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise UserError(
            f"TF_CONFIG task index {index!r} out of range: cluster {kind!r} has "
            f"{len(cluster[kind])} task(s)"
        )
    extra = sorted(set(cluster) - {"chief", "worker", "evaluator", "ps"})
    if extra or "ps" in cluster:
        raise UserError(
            f"TF_CONFIG cluster has {extra + (['ps'] if 'ps' in cluster else [])}: "
            "MultiWorkerMirroredStrategy takes chief and worker tasks only"
        )
    every = [str(h) for hosts in cluster.values() for h in hosts]
    twice = sorted({h for h in every if every.count(h) > 1})
    if twice:  # two tasks on one address: the second connects to the first and waits forever
        raise UserError(f"TF_CONFIG cluster lists {', '.join(twice)} more than once")
    workers = list(cluster.get("chief", [])) + list(cluster.get("worker", []))
    if len(workers) < 2:
        return None
    return Cluster(
        workers=workers,
        task_type=kind,
        task_index=index,
        address=cluster[kind][index],
        has_chief="chief" in cluster,
    )


def wait_for_workers(cluster: Cluster, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Rendezvous before the strategy starts (its constructor waits for every worker with no
    deadline, holding the interpreter): listen on our own port while every other task's port is
    probed; return once all answer, else one error naming those that did not in ``timeout_s``.
    The strategy's server takes the port over right after."""
    host, _, port = cluster.address.rpartition(":")
    listener = socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("", int(port)))
        listener.listen(64)  # the kernel completes the peers' probes; nothing is accepted
    except OSError as e:
        listener.close()
        raise UserError(f"cannot listen on this worker's port {port} ({e.strerror})") from None
    pending = [w for w in cluster.workers if w != cluster.address]
    deadline = time.monotonic() + timeout_s
    try:
        while pending:
            for w in list(pending):
                peer, _, peer_port = w.rpartition(":")
                try:
                    with socket.create_connection((peer.strip("[]"), int(peer_port)), timeout=2):
                        pending.remove(w)
                except OSError:
                    pass
            if pending and time.monotonic() > deadline:
                raise UserError(
                    f"worker(s) {', '.join(pending)} not reachable after {timeout_s:.0f} s: "
                    "start every worker with the same TF_CONFIG cluster (its own task index), "
                    "check hosts, ports and firewalls, or raise --connect-timeout"
                )
            if pending:
                time.sleep(0.5)
    finally:
        listener.close()


_WATCHDOG = """
import os, select, signal, sys
pid, seconds, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
if not select.select([sys.stdin], [], [], seconds)[0]:  # no word (or EOF) from the parent
    sys.stderr.write("error: " + message + "\\n")
    sys.stderr.flush()
    os.kill(pid, signal.SIGKILL)
"""


@contextlib.contextmanager
def watchdog(seconds: float, message: str) -> Iterator[None]:
    """End this process with ``error: message`` (killed: exit 137) if the block is still running
    after ``seconds``. TensorFlow's cluster waits run in C++, deaf to Python's timeouts and
    signals, so the clock runs in a separate little process, which exits with us."""
    dog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(seconds), message],
        stdin=subprocess.PIPE,
    )
    try:
        yield
    finally:
        dog.stdin.close()  # EOF: the block is over
        dog.wait()


def _first(e: Exception) -> str:
    return str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__


def _bound_registration(timeout_s: float) -> None:
    """The coordination service MultiWorkerMirroredStrategy starts, configured as it would
    configure it, but with the workers' registration bounded by ``timeout_s`` (its default is
    an hour)."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.distribute.cluster_resolver import TFConfigClusterResolver
    from tensorflow.python.eager import context

    spec = multi_worker_util.normalize_cluster_spec(TFConfigClusterResolver().cluster_spec())
    jobs = [
        coordination_config_pb2.CoordinatedJob(name=job, num_tasks=spec.num_tasks(job))
        for job in ("chief", "worker")
        if job in spec.jobs
    ]
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(spec),
        coordinated_jobs=jobs,
        cluster_register_timeout_in_ms=int(timeout_s * 1000),
    )


def make_strategy(
    *,
    num_workers: int = 1,
    tpu: str | None = None,
    cpu_replicas: int = 0,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> tuple[tf.distribute.Strategy, Cluster | None]:
    """The strategy (created before any model or dataset) and, for multi-worker, the cluster."""
    if tpu:
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as e:
            raise UserError(f"--tpu {tpu}: cannot reach the TPU ({e})") from None
        return tf.distribute.TPUStrategy(resolver), None
    cluster = parse_tf_config(os.environ.get("TF_CONFIG"))
    if num_workers > 1 and cluster is None:
        raise UserError(
            f"--num-workers {num_workers} needs TF_CONFIG describing the {num_workers} workers "
            "(the Kubeflow TFJob operator sets it; see README, Training on a cluster)"
        )
    if cluster is not None:
        if num_workers > 1 and num_workers != len(cluster.workers):
            raise UserError(
                f"--num-workers {num_workers} but TF_CONFIG lists {len(cluster.workers)} workers"
            )
        wait_for_workers(cluster, connect_timeout_s)
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=max(connect_timeout_s, 600.0)  # a collective stuck this long fails
        )
        late = (
            f"the workers did not all join within {connect_timeout_s:.0f} s ({cluster.workers}): "
            "start every worker with the same TF_CONFIG cluster (its own task index), check "
            "hosts, ports and firewalls (is a worker's port another program's?), or raise "
            "--connect-timeout"
        )
        _bound_registration(connect_timeout_s)
        try:  # TensorFlow's own deadline first; the watchdog if that wait does not end either
            with watchdog(connect_timeout_s + 20.0, late):
                strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        except (tf.errors.DeadlineExceededError, tf.errors.UnavailableError) as e:
            raise UserError(f"{late} ({_first(e)})") from None
        return strategy, cluster
    if cpu_replicas > 1:
        cpus = tf.config.list_physical_devices("CPU")
        with contextlib.suppress(RuntimeError):  # already configured in this process: see below
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration()] * cpu_replicas
            )
        logical = tf.config.list_logical_devices("CPU")
        if len(logical) < cpu_replicas:
            raise UserError(
                f"--cpu-replicas {cpu_replicas}: TensorFlow already started with "
                f"{len(logical)} CPU device(s)"
            )
        return tf.distribute.MirroredStrategy(
            [d.name for d in logical[:cpu_replicas]],
            cross_device_ops=tf.distribute.ReductionToOneDevice(),
        ), None
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy(), None
    return tf.distribute.get_strategy(), None
