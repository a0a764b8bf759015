"""pipelines.train under tf.distribute on this CPU machine: MirroredStrategy over two logical CPU
devices against one device, two local workers with TF_CONFIG (chief-only writes, resume), and
one clear error for a bad TF_CONFIG or a worker that never comes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from common.paths import DEFAULT_MODEL
from handspot.errors import UserError
from pipelines import pipeline_config as cfg
from pipelines.distribute import parse_tf_config
from prep.tfrecord import shard_pattern

ROOT = Path(__file__).resolve().parents[2]


def run_train(*args: str, tf_config: dict | None = None, wait: bool = True, timeout: int = 300):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    cmd = [sys.executable, "-m", "pipelines.train", *args]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if not wait:
        return proc
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def task(cluster: dict, index: int, kind: str = "worker") -> dict:
    return {"cluster": cluster, "task": {"type": kind, "index": index}}


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture(scope="module")
def same_frame_config(real_data, tmp_path_factory) -> Path:
    """The shipped model's config on one real EgoHands frame repeated, in file order, without
    augmentation, batch 2, from the shipped weights: every replica's share of a batch is the
    same frame, so one device and two replicas must compute the same losses and updates (with
    different frames they differ by design: SSD normalises each replica's loss by its own
    matched anchors)."""
    from common.tfenv import tf

    root = tmp_path_factory.mktemp("distribute")
    first = next(iter(tf.data.TFRecordDataset(tf.io.gfile.glob(shard_pattern(real_data, "train")))))
    with tf.io.TFRecordWriter(str(root / "same.record")) as w:
        for _ in range(16):
            w.write(first.numpy())
    proto = cfg.load(DEFAULT_MODEL / "pipeline.config")
    reader = proto.train_input_reader
    reader.tf_record_input_reader.input_path[:] = [str(root / "same.record")]
    del reader.sample_from_datasets_weights[:]
    reader.shuffle, reader.num_readers = False, 1
    reader.label_map_path = str(DEFAULT_MODEL / "label_map.pbtxt")  # data/mix is not in a clone
    for r in proto.eval_input_reader:
        r.label_map_path = reader.label_map_path
    del proto.train_config.data_augmentation_options[:]
    proto.train_config.batch_size, proto.train_config.num_steps = 2, 3
    proto.train_config.fine_tune_checkpoint = str(DEFAULT_MODEL / "checkpoint" / "ckpt-0")
    cfg.save(proto, root / "pipeline.config")
    return root / "pipeline.config"


def weights(checkpoint: str) -> dict[str, np.ndarray]:
    from common.tfenv import tf

    reader = tf.train.load_checkpoint(checkpoint)
    return {
        k: reader.get_tensor(k)
        for k in reader.get_variable_to_shape_map()
        if k.startswith("model/") and "OPTIMIZER" not in k
    }


@pytest.mark.slow
def test_two_cpu_replicas_match_one_device(same_frame_config, tmp_path):
    """Global batch 2 on one device vs 1 + 1 on two logical CPUs, seed 0, 3 steps: the losses
    agree to 1e-4 relative and so do the trained weights (1e-5 absolute), which moved."""
    runs = {}  # side by side: each is mostly a single-threaded start-up
    for name, extra in (("one", []), ("two", ["--cpu-replicas", "2"])):
        args = ["--pipeline", str(same_frame_config), "--model-dir", str(tmp_path / name)]
        runs[name] = run_train(*args, "--seed", "0", *extra, wait=False)
    results = {}
    for name, proc in runs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        results[name] = json.loads((tmp_path / name / "train_result.json").read_text())
    one, two = results["one"], results["two"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    for key, value in one["losses"].items():
        assert two["losses"][key] == pytest.approx(value, rel=1e-4), key
    w1, w2 = weights(one["checkpoint"]), weights(two["checkpoint"])
    start = weights(str(DEFAULT_MODEL / "checkpoint" / "ckpt-0"))
    moved = 0
    for key, value in w1.items():
        np.testing.assert_allclose(w2[key], value, atol=1e-5, err_msg=key)
        if key in start and start[key].shape == value.shape:
            moved += not np.allclose(start[key], value)
    assert moved > 10  # training changed the weights, identically


@pytest.mark.slow
def test_two_workers_train_together_and_resume_from_the_chiefs_checkpoint(
    same_frame_config, tmp_path
):
    """Two local processes, TF_CONFIG on localhost ports, MultiWorkerMirroredStrategy: 3 steps,
    then the same command with --steps 5 resumes both from the chief's ckpt-3. Only the chief
    writes into --model-dir; each reports the same losses. The first run's cluster is two
    workers, the second's a chief and a worker; both list an evaluator (as Kubeflow's TFJob
    does), which the workers do not wait for."""
    ports = free_ports(3)
    evaluator = {"evaluator": [f"localhost:{ports[2]}"]}  # nobody there: the side-car's place
    clusters = [
        ({"worker": [f"localhost:{p}" for p in ports[:2]], **evaluator}, "worker"),
        ({"chief": [f"localhost:{ports[0]}"], "worker": [f"localhost:{ports[1]}"], **evaluator},
         "chief"),
    ]  # fmt: skip
    model_dir = tmp_path / "run"
    outputs = []
    for steps, (cluster, chief) in zip(("3", "5"), clusters, strict=True):
        args = ["--pipeline", str(same_frame_config), "--model-dir", str(model_dir),
                "--seed", "0", "--num-workers", "2", "--steps", steps,
                "--checkpoint-every", "2"]  # fmt: skip
        other = 1 if chief == "worker" else 0
        worker = run_train(*args, tf_config=task(cluster, other), wait=False)
        rc, out, err = run_train(*args, tf_config=task(cluster, 0, chief))
        w_out, w_err = worker.communicate(timeout=300)
        assert rc == 0 and worker.returncode == 0, (err[-1500:], w_err[-1500:])
        outputs.append((out, w_out))
    (first_chief, first_worker), (second_chief, second_worker) = outputs
    assert "trained steps 0..3" in first_chief and "trained steps 0..3" in first_worker
    assert "trained steps 3..5" in second_chief and "trained steps 3..5" in second_worker
    loss = lambda text: text.split("loss ")[1].split(";")[0]  # noqa: E731
    assert loss(second_chief) == loss(second_worker)
    result = json.loads((model_dir / "train_result.json").read_text())
    assert (result["start_step"], result["step"], result["workers"]) == (3, 5, 2)
    names = sorted(p.name for p in model_dir.iterdir())
    assert names == sorted(
        ["checkpoint", "pipeline.config", "train", "train_result.json"]
        + [f"ckpt-{i}.{e}" for i in (3, 4, 5) for e in ("index", "data-00000-of-00001")]
    )
    assert len(list((model_dir / "train").iterdir())) == 2  # one event file per run: the chief's
    # the chief's checkpoint restores into a one-device model (evaluate, export)
    from common.tfenv import tf

    assert (
        tf.train.load_checkpoint(str(model_dir / "ckpt-5")).get_tensor(
            "step/.ATTRIBUTES/VARIABLE_VALUE"
        )
        == 5
    )


def test_tf_config_is_checked_before_anything_starts():
    ok = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    cluster = parse_tf_config(json.dumps(ok))
    assert cluster.workers == ["a:1", "b:2"] and cluster.address == "b:2"
    assert not cluster.is_chief
    with_chief = task({"chief": ["c:1"], "worker": ["a:1"]}, 0, "chief")
    assert parse_tf_config(json.dumps(with_chief)).is_chief
    assert parse_tf_config(None) is None
    assert parse_tf_config(json.dumps(task({"worker": ["a:1"]}, 0))) is None  # one task
    two = {"worker": ["a:1", "b:2"]}
    bad = [
        ('{"cluster": ', "not valid JSON"),
        ("[]", '"cluster" object'),
        (json.dumps({"cluster": two}), '"task" object'),
        (json.dumps(task(two, 2)), "out of range"),
        (json.dumps(task({"worker": ["a:1", "b"]}, 0)), "is not host:port"),
        (json.dumps(task({"worker": ["a:1"], "ps": ["p:1"]}, 0)), "chief and worker tasks only"),
        (json.dumps(task(two, 0, "chief")), "not in its cluster"),
        # issue 22, case 5: two workers at one address hung for 11 minutes past every timeout
        (
            json.dumps(task({"worker": ["localhost:23456", "localhost:23456"]}, 0)),
            "lists localhost:23456 more than once",
        ),
        (json.dumps(task({"chief": ["a:1"], "worker": ["a:1", "b:2"]}, 0)), "a:1 more than once"),
    ]
    for text, message in bad:
        with pytest.raises(UserError, match=message):
            parse_tf_config(text)


@pytest.mark.slow
def test_bad_tf_config_and_unreachable_worker_are_one_clear_error(same_frame_config, tmp_path):
    rc, _, err = run_train(
        "--pipeline", str(same_frame_config), "--model-dir", str(tmp_path / "a"),
        tf_config=task({"worker": ["localhost:1"]}, 3),
    )  # fmt: skip
    assert rc == 2 and err.strip().splitlines()[-1].startswith("error: TF_CONFIG task index 3")
    assert "Traceback" not in err
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    t0 = time.monotonic()
    rc, _, err = run_train(
        "--pipeline", str(same_frame_config), "--model-dir", str(tmp_path / "b"),
        "--num-workers", "2", "--connect-timeout", "5",
        tf_config=task(cluster, 0), timeout=120,
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    assert rc == 2 and "Traceback" not in err, err[-1500:]
    assert err.strip().splitlines()[-1] == (
        f"error: worker(s) localhost:{ports[1]} not reachable after 5 s: start every worker "
        "with the same TF_CONFIG cluster (its own task index), check hosts, ports and "
        "firewalls, or raise --connect-timeout"
    )
    assert elapsed < 60  # 5 s of waiting plus start-up, not a hang
    assert not (tmp_path / "b").exists()  # nothing written
