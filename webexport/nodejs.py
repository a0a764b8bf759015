"""Run TF.js graph models in Node from Python. The npm packages and the runner script live in
``webexport/`` (its package.json); this module only drives them."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from handspot.errors import UserError

WEB = Path(__file__).resolve().parent  # webexport/: package.json, node_modules
RUNNER = WEB / "node" / "run_graph.mjs"


def node_ready() -> bool:
    return (
        shutil.which("node") is not None
        and (WEB / "node_modules" / "@tensorflow" / "tfjs").is_dir()
    )


def require_node() -> None:
    if shutil.which("node") is None:
        raise UserError("node not found: install Node.js >= 18")
    if not node_ready():
        raise UserError(f"TF.js packages missing: run `npm ci` in {WEB}")


CHUNK = 64  # images per Node process: its results stay far below V8's string limit


def run_graph(
    model_dir: str | Path,
    images: Sequence[np.ndarray],
    *,
    outputs: Sequence[str] | None = None,
    backend: str = "cpu",
    warmup: int = 0,
    repeat: int = 1,
    timeout: float = 900,
) -> tuple[list[dict[str, np.ndarray]], list[float]]:
    """Run ``model_dir`` (a TF.js graph model) on each image (uint8 HxWx3, batched as 1), in
    chunks of ``CHUNK`` images per Node process. Returns per image ``{output name: array}`` and
    the milliseconds of each run."""
    rows: list[dict[str, np.ndarray]] = []
    ms: list[float] = []
    for start in range(0, max(len(images), 1), CHUNK):
        r, m = _run_chunk(
            model_dir, images[start : start + CHUNK], outputs, backend, warmup, repeat, timeout
        )
        rows += r
        ms += m
    return rows, ms


def _run_chunk(model_dir, images, outputs, backend, warmup, repeat, timeout):
    require_node()
    if not (Path(model_dir) / "model.json").is_file():
        raise UserError(f"{model_dir} has no model.json")
    with tempfile.TemporaryDirectory() as tmp:
        inputs = []
        for i, image in enumerate(images):
            path = Path(tmp) / f"{i}.raw"
            image = np.ascontiguousarray(image, np.uint8)
            path.write_bytes(image.tobytes())
            inputs.append({"data": str(path), "shape": [1, *image.shape], "dtype": "int32"})
        request = {
            "model": str(Path(model_dir).resolve()),
            "backend": backend,
            "outputs": list(outputs) if outputs else None,
            "inputs": inputs,
            "warmup": warmup,
            "repeat": repeat,
            "out": str(Path(tmp) / "out.json"),
        }
        (Path(tmp) / "request.json").write_text(json.dumps(request))
        result = subprocess.run(
            ["node", str(RUNNER), str(Path(tmp) / "request.json")],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=WEB,
        )
        if result.returncode != 0:
            raise UserError(f"TF.js run failed: {result.stderr.strip()[-500:]}")
        data = json.loads((Path(tmp) / "out.json").read_text())
    rows = [
        {
            o["name"]: np.frombuffer(base64.b64decode(o["data"]), np.float32).reshape(o["shape"])
            for o in row
        }
        for row in data["outputs"]
    ]
    return rows, data["ms"]
