"""Write a pipeline.config for a dataset folder from one of the templates in pipelines/.

python -m pipelines.configure --data data/egohands --model ssd --out runs/ssd/pipeline.config
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from handspot.errors import UserError, fail
from handspot.signals import command


def parse_weights(text: str) -> dict[str, float]:
    """``a=1,b=0.5`` -> ``{"a": 1.0, "b": 0.5}``: each name once, each weight finite and >= 0."""
    weights: dict[str, float] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, _, value = (part.strip() for part in item.partition("="))
        try:
            weight = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected NAME=WEIGHT, got {item!r}") from None
        if not name:
            raise argparse.ArgumentTypeError(f"expected NAME=WEIGHT, got {item!r}")
        if not (math.isfinite(weight) and weight >= 0):
            raise argparse.ArgumentTypeError(f"a weight must be a finite number >= 0, got {item!r}")
        if name in weights:
            raise argparse.ArgumentTypeError(f"source {name!r} is given twice")
        weights[name] = weight
    return weights


@command()
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pipelines.configure",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, required=True, help="a dataset folder written by prep")
    p.add_argument("--model", choices=("ssd", "mask_rcnn"), default="ssd")
    p.add_argument("--out", type=Path, required=True, help="pipeline.config to write")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--learning-rate", type=float, help="cosine schedule base rate")
    p.add_argument(
        "--input-size", type=int, help="SSD: square input side (multiple of 32; template 320)"
    )
    p.add_argument("--checkpoint", help="fine_tune_checkpoint prefix (e.g. .../ckpt-0)")
    p.add_argument("--from-scratch", action="store_true", help="no fine-tune checkpoint")
    p.add_argument(
        "--weights",
        type=parse_weights,
        default={},
        metavar="NAME=W[,NAME=W]",
        help="prep.mix folders: how often each source is sampled (default 1 each; 0 leaves "
        "a source out of training)",
    )
    args = p.parse_args(argv)
    try:
        from pipelines import pipeline_config as config

        proto = config.configure(
            args.model,
            args.data,
            batch_size=args.batch_size,
            steps=args.steps,
            checkpoint=args.checkpoint,
            from_scratch=args.from_scratch,
            learning_rate=args.learning_rate,
            weights=args.weights,
            input_size=args.input_size,
        )
        config.check(proto, source=str(args.out), need_eval=True)
        for warning in (
            config.batch_warning(proto, args.data),
            config.memory_warning(proto, config.available_memory_gb()),
        ):
            if warning:
                print(f"warning: {warning}", file=sys.stderr)
        config.save(proto, args.out)
    except UserError as e:
        return fail(str(e))
    ckpt = proto.train_config.fine_tune_checkpoint
    print(
        f"wrote {args.out}: {config.meta_arch(proto)}, {config.num_classes(proto)} class(es), "
        f"batch {proto.train_config.batch_size}, {proto.train_config.num_steps} steps, "
        f"fine-tune from {ckpt or 'scratch'}"
    )
    if ckpt and not config.checkpoint_exists(ckpt):
        print(
            f"note: {ckpt} does not exist yet; pipelines.train will stop until it does "
            "(or pass --from-scratch)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
