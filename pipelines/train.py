"""Train an OD API model from a pipeline.config: exact step count, progress, checkpoints every N
steps and on Ctrl-C, TensorBoard summaries, and resume from the last checkpoint.

    python -m pipelines.train --pipeline pipelines/ssd_mobilenet_v2_fpnlite_320_hands.config \\
        --model-dir runs/ssd [--steps 2000] [--checkpoint-every 500] [--from-scratch]

Built on the OD API's own ``model_lib_v2`` pieces (model builder, ``inputs.train_input``,
``eager_train_step``, ``load_fine_tune_checkpoint``), without ``model_main_tf2``'s 100-step
blocks, so the step count is exact and every step shows. Re-running the same command after a
kill continues from the last checkpoint in ``--model-dir``.

The same command trains on several devices or machines (pipelines/distribute.py chooses the
strategy as ``model_main_tf2`` does: every local GPU, ``--num-workers`` with TF_CONFIG,
``--tpu``); ``--batch-size`` is the global batch. Only the chief writes checkpoints, summaries
and the as-run config into ``--model-dir`` (a folder every worker can read, to resume).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from handspot.errors import UserError, fail
from handspot.files import atomic_write_json, disk_full
from handspot.options import add_options, from_args, option
from handspot.signals import Stopped, exit_code, on_stop_signals, restore_signals
from pipelines import fast_input
from pipelines import pipeline_config as cfg
from pipelines.distribute import CONNECT_TIMEOUT_S, Cluster, make_strategy
from pipelines.odapi_compat import no_autograph, tf

from object_detection import inputs, model_lib_v2
from object_detection.builders import model_builder, optimizer_builder
from object_detection.utils import config_util

AS_RUN_CONFIG = "pipeline.config"


def check_resume(model_dir: Path, proto) -> None:
    """Refuse to resume checkpoints trained with another model: the as-run pipeline.config in
    ``model_dir`` must have the same ``model`` section (architecture, classes, input size)."""
    path = Path(model_dir) / AS_RUN_CONFIG
    if not path.is_file():
        return
    before = cfg.load(path)
    if before.model == proto.model:
        return
    size = lambda p: "x".join(map(str, cfg.input_size(p)))  # noqa: E731
    pairs = (
        ("architecture", cfg.meta_arch(before), cfg.meta_arch(proto)),
        ("classes", cfg.num_classes(before), cfg.num_classes(proto)),
        ("input", size(before), size(proto)),
    )
    differs = [f"{w} {a} -> {b}" for w, a, b in pairs if a != b] or ["the model section differs"]
    raise UserError(
        f"{model_dir} holds checkpoints of another model ({'; '.join(differs)}): resume with "
        f"the config they were trained with ({path}), or train into a new --model-dir"
    )


def zoo_hint(prefix: str) -> str:
    return (
        f"fine_tune_checkpoint {prefix} not found. Put the pretrained checkpoint there (for "
        "SSD: the TF2 zoo's ssd_mobilenet_v2_fpnlite_320x320_coco17_tpu-8, unpacked under "
        "pretrained/; or the handtrack.js import), point --checkpoint at another one, or pass "
        "--from-scratch"
    )


DISTRIBUTION = "distribution (as model_main_tf2; --batch-size is the global batch)"


@dataclass(frozen=True)
class TrainOptions:
    """How a run overrides its pipeline.config and where it runs; read by the CLI (one flag a
    field) and by ``Trainer``."""

    steps: int | None = option(None, "total steps (default: train_config.num_steps)", type=int)
    batch_size: int | None = option(None, type=int)
    checkpoint_every: int = option(500)
    checkpoint: str | None = option(
        None, "fine-tune checkpoint prefix (overrides the config)", type=str
    )
    from_scratch: bool = option(False, "train without a fine-tune checkpoint (slow to learn)")
    full_res_decode: bool = option(
        False,
        "decode training JPEGs at full size (default: the smallest libjpeg scale that covers "
        "the model input; see pipelines/fast_input.py)",
    )
    num_workers: int = option(
        1,
        "> 1: MultiWorkerMirroredStrategy over the workers TF_CONFIG lists (also chosen "
        "whenever TF_CONFIG lists several)",
        group=DISTRIBUTION,
    )
    tpu: str | None = option(
        None, "TPUStrategy on this TPU (name, grpc:// address or 'local')", type=str,
        group=DISTRIBUTION,
    )  # fmt: skip
    cpu_replicas: int = option(
        0,
        "MirroredStrategy over N logical CPU devices (testing; several local GPUs are used "
        "without a flag)",
        group=DISTRIBUTION,
    )
    connect_timeout: float = option(
        CONNECT_TIMEOUT_S,
        f"seconds to wait for the other workers (default {CONNECT_TIMEOUT_S:.0f})",
        group=DISTRIBUTION,
    )
    seed: int | None = option(None, "TensorFlow's global seed", type=int, group=DISTRIBUTION)
    max_to_keep: int = option(3, cli=False)
    quiet: bool = option(False, cli=False)

    def check(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise UserError("--steps must be at least 1")
        if self.checkpoint_every < 1:
            raise UserError("--checkpoint-every must be at least 1")
        if self.num_workers < 1 or self.cpu_replicas < 0 or self.connect_timeout <= 0:
            raise UserError("--num-workers >= 1, --cpu-replicas >= 0, --connect-timeout > 0")


class Trainer:
    """One model, its optimizer, input pipeline and checkpoint manager."""

    def __init__(
        self,
        pipeline: str | Path,
        model_dir: str | Path,
        options: TrainOptions | None = None,
        *,
        strategy: tf.distribute.Strategy | None = None,
        cluster: Cluster | None = None,
    ):
        options = options or TrainOptions()
        options.check()
        self.options = options
        self.model_dir = Path(model_dir)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.cluster = cluster
        self.is_chief = cluster is None or cluster.is_chief
        self.notes: list[str] = []
        self.proto = self._config(pipeline)
        self.total_steps = self.proto.train_config.num_steps
        configs = config_util.create_configs_from_pipeline_proto(self.proto)
        self.model_config, self.train_config = configs["model"], configs["train_config"]
        config_util.update_fine_tune_checkpoint_type(self.train_config)
        self._check_batch()
        self.shard_by_file = self._shard_by_file(configs["train_input_config"])
        self._seed()
        with self.strategy.scope():
            self._build(configs["train_input_config"])
        self.learning_rate = self._lr if callable(self._lr) else (lambda: self._lr)
        # Every worker saves (the save is collective); only the chief's copy is kept.
        self.save_dir = (
            self.model_dir
            if self.is_chief
            else Path(tempfile.mkdtemp(prefix=f"hands-train-worker{cluster.task_index}-"))
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(self.save_dir), max_to_keep=options.max_to_keep
        )
        self.step = self._step_function()

    def _config(self, pipeline: str | Path):
        """The config with the options' overrides, checked; refused where it cannot resume
        this model dir or its starting checkpoint is missing."""
        options, proto = self.options, cfg.load(pipeline)
        if options.steps is not None:
            proto.train_config.num_steps = options.steps
        if options.batch_size is not None:
            proto.train_config.batch_size = options.batch_size
        if options.checkpoint is not None:
            proto.train_config.fine_tune_checkpoint = options.checkpoint
        if options.from_scratch:
            cfg.make_from_scratch(proto)
        cfg.check(proto, source=str(pipeline))
        self.latest = tf.train.latest_checkpoint(str(self.model_dir))
        if self.latest:
            check_resume(self.model_dir, proto)
        ft = proto.train_config.fine_tune_checkpoint
        if ft and not self.latest and not cfg.checkpoint_exists(ft):
            raise UserError(zoo_hint(ft))
        if proto.train_config.num_steps < 1:
            raise UserError(f"{pipeline}: train_config.num_steps must be set (or pass --steps)")
        return proto

    def _check_batch(self) -> None:
        """The global batch splits evenly over the replicas; a warning where this worker's
        share will not fit in memory (before minutes of building)."""
        replicas = self.strategy.num_replicas_in_sync
        if self.train_config.batch_size % replicas:
            raise UserError(
                f"batch size {self.train_config.batch_size} (the global batch) must be a "
                f"multiple of the {replicas} replicas"
            )
        here = self.train_config.batch_size // (len(self.cluster.workers) if self.cluster else 1)
        if warning := cfg.memory_warning(self.proto, cfg.available_memory_gb(), here):
            print(f"warning: {warning}", file=sys.stderr)

    def _seed(self) -> None:
        seed = self.options.seed
        if self.cluster is not None:
            # Workers sharding by file must shuffle the file list alike (the OD API shuffles
            # before sharding); workers reading every file must not draw the same batches.
            seed = (seed or 0) + (0 if self.shard_by_file else self.cluster.task_index)
        if seed is not None:
            tf.random.set_seed(seed)

    def _build(self, input_config) -> None:
        """The model, its distributed input, step counter, optimizer and checkpoint (in the
        strategy's scope)."""
        self.model = model_builder.build(self.model_config, is_training=True, add_summaries=False)
        fast = not self.options.full_res_decode
        min_side = fast_input.model_min_side(self.model_config) if fast else 0

        def dataset_fn(context: tf.distribute.InputContext):
            if not self.shard_by_file:
                context = _BatchOnly(context)
            scaled = (
                fast_input.scaled_jpeg_decoding(min_side) if min_side else contextlib.nullcontext()
            )
            with scaled, no_autograph():
                return inputs.train_input(
                    self.train_config,
                    input_config,
                    self.model_config,
                    model=self.model,
                    input_context=context,
                ).repeat()

        self.dataset = self.strategy.distribute_datasets_from_function(dataset_fn)
        self.global_step = tf.Variable(
            0,
            trainable=False,
            dtype=tf.int64,
            name="global_step",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        self.optimizer, (self._lr,) = optimizer_builder.build(
            self.train_config.optimizer, global_step=self.global_step
        )
        self.checkpoint = tf.train.Checkpoint(
            step=self.global_step, model=self.model, optimizer=self.optimizer
        )

    def _step_function(self):
        """One training step on every replica, the losses summed over them."""
        tc, strategy = self.train_config, self.strategy
        clip = tc.gradient_clipping_by_norm if tc.gradient_clipping_by_norm > 0 else None

        def replica_step(features, labels):
            filtered = tc.update_trainable_variables or tc.freeze_variables
            losses = model_lib_v2.eager_train_step(
                _Trainable(self.model, tc) if filtered else self.model,
                features,
                labels,
                tc.unpad_groundtruth_tensors,
                self.optimizer,
                training_step=self.global_step,
                add_regularization_loss=tc.add_regularization_loss,
                clip_gradients_value=clip,
                num_replicas=strategy.num_replicas_in_sync,  # each replica's share of the mean
            )
            self.global_step.assign_add(1)
            return losses

        @tf.function(autograph=False)  # graph-mode OD API code: nothing to convert
        def step_fn(features, labels):
            per_replica = strategy.run(replica_step, args=(features, labels))
            return {  # one reduce per loss, as model_lib_v2 does (a dict fails multi-worker)
                k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in per_replica.items()
            }

        return step_fn

    def _shard_by_file(self, reader) -> bool:
        """Workers split the training files when every pattern has a file for each of them;
        otherwise each worker reads every file in its own random order (and says so)."""
        pipelines = len(self.cluster.workers) if self.cluster else 1
        if pipelines == 1:
            return True
        few = {
            p: n
            for p in reader.tf_record_input_reader.input_path
            if (n := len(glob.glob(p))) < pipelines
        }
        if few:
            listed = ", ".join(f"{p} ({n})" for p, n in few.items())
            self.notes.append(
                f"fewer record files than the {pipelines} workers in {listed}: every worker "
                "reads all the files in its own random order instead of its share of them "
                "(write more shards to split them by file)"
            )
        return not few

    def restore(self) -> int:
        """Resume from the model dir, else load the fine-tune checkpoint; return the start step."""
        with self.strategy.scope():
            return self._restore()

    def _restore(self) -> int:
        if self.latest:
            earlier = sorted(
                (p.with_suffix("") for p in self.model_dir.glob("ckpt-*.index")),
                key=lambda p: int(p.name.split("-")[-1]),
            )
            earlier = [str(p) for p in earlier if str(p) != self.latest]
            hint = (
                f"; delete its files to resume from {earlier[-1]}"
                if earlier
                else "; delete its files to start again"
            )
            cfg.verify_checkpoint(self.latest, hint)
            self.checkpoint.restore(self.latest).expect_partial()
        elif self.train_config.fine_tune_checkpoint:
            tc = self.train_config
            cfg.verify_checkpoint(tc.fine_tune_checkpoint)
            model_lib_v2.load_fine_tune_checkpoint(
                self.model,
                tc.fine_tune_checkpoint,
                tc.fine_tune_checkpoint_type,
                tc.fine_tune_checkpoint_version,
                tc.run_fine_tune_checkpoint_dummy_computation,
                self.dataset,
                tc.unpad_groundtruth_tensors,
            )
        return int(self.global_step.numpy())

    def save(self, step: int) -> None:
        """Checkpoint ``ckpt-<step>``. A disk (or quota, or ``ulimit -f``) that fills up midway
        is one error: the partial files are removed and the checkpoint list still names only
        complete ones, so the same command resumes from the last of them."""
        try:
            self.manager.save(checkpoint_number=step)
        except Exception as e:
            if (why := disk_full(e)) is None:
                raise
            for partial in self.save_dir.glob(f"ckpt-{step}[._]*"):
                if partial.is_dir():
                    shutil.rmtree(partial, ignore_errors=True)
                else:
                    partial.unlink(missing_ok=True)
            last = tf.train.latest_checkpoint(str(self.save_dir))
            resume = f"the last complete one, {last}, is kept" if last else "none was kept"
            raise UserError(
                f"cannot write checkpoint ckpt-{step} in {self.save_dir}: {why}; {resume}: "
                "free some space and run the same command to resume"
            ) from None

    def run(self, summary_every: int = 10) -> dict:
        """Train to ``total_steps``; checkpoint every ``options.checkpoint_every`` steps, at the
        end and on Ctrl-C."""
        checkpoint_every, quiet = self.options.checkpoint_every, self.options.quiet
        if self.is_chief:
            self.model_dir.mkdir(parents=True, exist_ok=True)
            cfg.save(self.proto, self.model_dir / AS_RUN_CONFIG)
        quiet = quiet or not self.is_chief
        for note in self.notes if not quiet else ():
            print(f"note: {note}", file=sys.stderr)
        start = self.restore()
        if start >= self.total_steps:
            if not self.is_chief:
                shutil.rmtree(self.save_dir, ignore_errors=True)
            return {"start_step": start, "step": start, "steps_run": 0, "seconds": 0.0}
        writer = (
            tf.summary.create_file_writer(str(self.model_dir / "train"))
            if self.is_chief
            else tf.summary.create_noop_writer()
        )
        iterator = iter(self.dataset)
        bar = tqdm(
            total=self.total_steps,
            initial=start,
            desc="train",
            unit="step",
            disable=quiet,
            dynamic_ncols=True,
        )
        step, losses, t0 = start, {}, time.perf_counter()
        timed_from, timed_t = start, t0
        interrupted = threading.Event()
        stop_signal = [signal.SIGINT]

        def on_stop(signum, _frame):
            stop_signal[0] = signum
            interrupted.set()

        # Ctrl-C and SIGTERM (a pod stopped, docker stop) set a flag the loop checks between
        # steps: a KeyboardInterrupt raised inside TensorFlow or a finaliser can be swallowed.
        handlers = on_stop_signals(on_stop)
        try:
            with writer.as_default():
                while step < self.total_steps and not interrupted.is_set():
                    features, labels = next(iterator)
                    losses = self.step(features, labels)
                    step += 1
                    bar.update()
                    if step == start + 1:  # leave tracing and the first batch out of the rate
                        timed_from, timed_t = step, time.perf_counter()
                    if step % summary_every == 0 or step == self.total_steps:
                        values = {k: float(v) for k, v in losses.items()}
                        for k, v in values.items():
                            tf.summary.scalar(k, v, step=step)
                        tf.summary.scalar("learning_rate", float(self.learning_rate()), step=step)
                        bar.set_postfix(loss=f"{values['Loss/total_loss']:.3f}")
                    if step % checkpoint_every == 0:
                        self.save(step)
            if interrupted.is_set():
                raise Stopped(stop_signal[0])
        except KeyboardInterrupt:
            self.save(int(self.global_step.numpy()))
            bar.close()
            raise
        finally:
            restore_signals(handlers)
            bar.close()
            writer.flush()
        if self.manager.latest_checkpoint != str(self.save_dir / f"ckpt-{step}"):
            self.save(step)
        if not self.is_chief:
            shutil.rmtree(self.save_dir, ignore_errors=True)
        elapsed = time.perf_counter() - t0
        timed = step - timed_from
        result = {
            "start_step": start,
            "step": step,
            "steps_run": step - start,
            "seconds": round(elapsed, 2),
            "s_per_step": round((time.perf_counter() - timed_t) / timed, 4) if timed else None,
            "batch_size": self.train_config.batch_size,
            "replicas": self.strategy.num_replicas_in_sync,
            "workers": len(self.cluster.workers) if self.cluster else 1,
            "losses": {k: round(float(v), 5) for k, v in losses.items()},
            "checkpoint": str(self.model_dir / f"ckpt-{step}"),
        }
        if self.is_chief:
            atomic_write_json(self.model_dir / "train_result.json", result)
        return result


class _Trainable:
    """The model as the OD API's train step sees it, with the variables it updates filtered by
    ``train_config.update_trainable_variables`` (kept: a name matching one) and
    ``freeze_variables`` (left: a name matching one), regular expressions searched in the
    variable names as the OD API's TF1 loop did (its TF2 loop ignores both fields)."""

    def __init__(self, model, train_config):
        self._model = model
        self._keep = list(train_config.update_trainable_variables)
        self._freeze = list(train_config.freeze_variables)

    @property
    def trainable_variables(self):  # read after the forward pass has built the model
        variables = self._model.trainable_variables
        if self._keep:
            variables = [v for v in variables if any(re.search(k, v.name) for k in self._keep)]
        variables = [v for v in variables if not any(re.search(f, v.name) for f in self._freeze)]
        if not variables:
            raise UserError(
                f"update_trainable_variables {self._keep} / freeze_variables {self._freeze} "
                "leave no variable to train"
            )
        return variables

    def __getattr__(self, name):
        return getattr(self._model, name)


class _BatchOnly:
    """An input context that keeps the per-replica batch size but does not shard files."""

    def __init__(self, context: tf.distribute.InputContext):
        self._context = context
        self.num_input_pipelines, self.input_pipeline_id = 1, 0

    def get_per_replica_batch_size(self, global_batch_size: int) -> int:
        return self._context.get_per_replica_batch_size(global_batch_size)


def train(pipeline, model_dir, options: TrainOptions | None = None, **fields) -> dict:
    """Train under the strategy the options choose (pipelines/distribute.py); ``fields``
    override options (``train(p, d, steps=5, quiet=True)``)."""
    options = replace(options or TrainOptions(), **fields)
    options.check()
    strategy, cluster = make_strategy(
        num_workers=options.num_workers,
        tpu=options.tpu,
        cpu_replicas=options.cpu_replicas,
        connect_timeout_s=options.connect_timeout,
    )
    return Trainer(pipeline, model_dir, options, strategy=strategy, cluster=cluster).run()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipelines.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--pipeline", required=True, help="pipeline.config")
    p.add_argument("--model-dir", required=True, help="checkpoints, summaries, as-run config")
    add_options(p, TrainOptions)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = train(args.pipeline, args.model_dir, from_args(TrainOptions, args))
    except UserError as e:
        return fail(str(e))
    except KeyboardInterrupt as stop:
        print(
            f"\ninterrupted; checkpoint saved in {args.model_dir}; run the same command to resume",
            file=sys.stderr,
        )
        return exit_code(stop)
    if result["steps_run"] == 0:
        print(
            f"{args.model_dir} is already at step {result['step']}; nothing to do "
            "(raise --steps to train longer)"
        )
    else:
        print(
            f"trained steps {result['start_step']}..{result['step']} in {result['seconds']} s "
            f"({result['s_per_step']} s/step at batch {result['batch_size']}); "
            f"loss {result['losses'].get('Loss/total_loss')}; checkpoint {result['checkpoint']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
