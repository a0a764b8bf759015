"""The cluster recipe as shipped: the Kubeflow TFJob manifest has what the Training Operator
needs and runs our own CLIs with flags they accept; the GPU install keeps the CPU pins."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pipelines import evaluate, train

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "pipelines" / "cluster" / "tfjob.yaml"


def container(spec: dict) -> dict:
    (tf,) = [c for c in spec["template"]["spec"]["containers"] if c["name"] == "tensorflow"]
    return tf


def test_tfjob_manifest_has_what_the_operator_needs():
    job = yaml.safe_load(MANIFEST.read_text())
    assert job["apiVersion"] == "kubeflow.org/v1" and job["kind"] == "TFJob"
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", job["metadata"]["name"])
    replicas = job["spec"]["tfReplicaSpecs"]
    assert set(replicas) <= {"Chief", "Worker", "PS", "Evaluator"} and "Worker" in replicas
    for spec in replicas.values():
        assert isinstance(spec["replicas"], int) and spec["replicas"] >= 1
        assert spec["restartPolicy"] in {"Always", "OnFailure", "Never", "ExitCode"}
        pod = spec["template"]["spec"]
        c = container(spec)  # the operator finds TensorFlow's container by this name
        assert c["image"] and all(isinstance(a, str) for a in c["command"])
        volumes = {v["name"] for v in pod.get("volumes", [])}
        assert {m["name"] for m in c.get("volumeMounts", [])} <= volumes


def test_tfjob_runs_our_train_and_follow_commands_as_the_readme_says():
    job = yaml.safe_load(MANIFEST.read_text())
    replicas = job["spec"]["tfReplicaSpecs"]
    cmd = container(replicas["Worker"])["command"]
    assert cmd[:3] == ["python", "-m", "pipelines.train"]
    args = train.build_parser().parse_args(cmd[3:])  # flags our CLI accepts
    workers = replicas["Worker"]["replicas"] + replicas.get("Chief", {}).get("replicas", 0)
    assert args.num_workers == workers == 2
    assert args.batch_size % workers == 0
    side = container(replicas["Evaluator"])["command"]
    assert side[:3] == ["python", "-m", "pipelines.evaluate"]
    eval_args = evaluate.build_parser().parse_args(side[3:])
    assert eval_args.follow and str(eval_args.model_dir) == args.model_dir
    guide = (ROOT / "docs" / "cluster.md").read_text()
    assert "kubectl apply -f pipelines/cluster/tfjob.yaml" in guide


def test_gpu_requirements_keep_the_cpu_pins():
    gpu = (ROOT / "requirements-gpu.txt").read_text().split("\n")
    cpu = (ROOT / "requirements.txt").read_text()
    pin = re.search(r"^tensorflow==([\d.]+)$", cpu, re.M).group(1)
    lines = [x for x in gpu if x and not x.startswith("#")]
    assert lines == ["-r requirements.txt", f"tensorflow[and-cuda]=={pin}"]
