"""Run one of the OD API's own command-line mains on this stack, through pipelines.odapi_compat.

    python -m pipelines.odapi_main model_main_tf2 --pipeline_config_path=runs/ssd/pipeline.config \\
        --model_dir=runs/ssd --alsologtostderr
    python -m pipelines.odapi_main exporter_main_v2 --input_type=image_tensor \\
        --pipeline_config_path=runs/ssd/pipeline.config --trained_checkpoint_dir=runs/ssd \\
        --output_directory=exported/ssd
"""

from __future__ import annotations

import runpy
import sys

from pipelines import odapi_compat  # noqa: F401  (installs the compatibility shims)

MAINS = ("model_main_tf2", "exporter_main_v2", "export_tflite_graph_tf2")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in MAINS:
        print(__doc__, file=sys.stderr)
        print(f"error: the first argument must be one of {', '.join(MAINS)}", file=sys.stderr)
        return 2
    sys.argv = [argv[0], *argv[1:]]
    runpy.run_module(f"object_detection.{argv[0]}", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
