"""Run the unmodified PyPI OD API (``tf-models-research-object-detection==2.8.0.post1``) on
TensorFlow 2.19, tf-keras, protobuf 5 and Pillow >= 10. Nothing in site-packages is edited.

Import this module before anything from ``object_detection``::

    from pipelines import odapi_compat  # noqa: F401  (installs the compatibility shims)
    from object_detection.builders import model_builder

What it handles:
1. ``object_detection/protos/*_pb2.py`` are protoc < 3.20 gencode, which protobuf >= 4 rejects
   ("Descriptors cannot be created directly"). An import hook loads each of them from the
   serialized FileDescriptor embedded in the old file, the way current gencode does
   (``google.protobuf.internal.builder``).
2. ``tf.compat.v1.estimator`` is gone; ``inputs.py`` and ``model_lib.py`` import it at module
   level. A stand-in provides ``ModeKeys``; anything else names the missing Estimator API.
3. tf_slim calls ``control_flow_ops.cond/case``, which moved; they point to ``tf.cond/case``.
4. Pillow 10 removed ``FreeTypeFont.getsize`` (used to draw labels); it is rebuilt on getbbox.
5. ``deepmac_meta_arch`` imports ``tensorflow_io``, whose binary does not load on TF 2.19; a
   stand-in supplies the one function it uses (``rgb_to_lab``) in plain TensorFlow.
It also sets ``TF_USE_LEGACY_KERAS=1`` (the OD API is written for Keras 2 / tf-keras), and
gives ``no_autograph()``: the OD API is graph-mode TF1-style code (``tf.cond``, no Python
control flow on tensors), so AutoGraph has nothing to convert in it, yet converting its input
and model functions took most of a short training run's start.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
import types

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import warnings

from common.tfenv import tf

warnings.filterwarnings("ignore", message=r".*set_learning_phase.*is deprecated")

_PROTO_PREFIX = "object_detection.protos."


@contextlib.contextmanager
def no_autograph():
    """Functions traced inside (``tf.data`` maps, ``tf.function``s without their own setting)
    are traced as written, not converted by AutoGraph."""
    from tensorflow.python.autograph.core import ag_ctx

    with ag_ctx.ControlStatusCtx(status=ag_ctx.Status.DISABLED):
        yield


# ---------------------------------------------------------------- 1. old protobuf gencode


class _DescriptorLoader(importlib.abc.Loader):
    """Builds an old-style ``*_pb2`` module from the serialized descriptor inside it."""

    def __init__(self, path: str):
        self.path = path

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        from google.protobuf import descriptor_pool
        from google.protobuf.internal import builder

        with open(self.path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), self.path)
        serialized = None
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):  # dependencies first
                exec(compile(ast.Module([node], []), self.path, "exec"), module.__dict__)
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == "serialized_pb":
                serialized = ast.literal_eval(node.value)
                break
        if serialized is None:
            raise ImportError(f"{self.path}: no serialized_pb descriptor to rebuild")
        descriptor = descriptor_pool.Default().AddSerializedFile(serialized)
        module.DESCRIPTOR = descriptor
        builder.BuildMessageAndEnumDescriptors(descriptor, module.__dict__)
        builder.BuildTopDescriptorsAndMessages(descriptor, module.__name__, module.__dict__)


class _ProtoFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if not (fullname.startswith(_PROTO_PREFIX) and fullname.endswith("_pb2")):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return spec
        with open(spec.origin, encoding="utf-8") as f:
            if "_builder" in f.read(4096):  # already current gencode
                return spec
        spec.loader = _DescriptorLoader(spec.origin)
        return spec


# ---------------------------------------------------------------- 2. tf.compat.v1.estimator


class _MissingEstimator(types.ModuleType):
    class ModeKeys:
        TRAIN = "train"
        EVAL = "eval"
        PREDICT = "infer"

    def __getattr__(self, name):
        raise AttributeError(
            f"tf.compat.v1.estimator.{name}: the Estimator API was removed in TensorFlow 2.16; "
            "use the TF2 path (model_lib_v2 / pipelines.train)"
        )


# ---------------------------------------------------------------- 5. tensorflow_io stand-in


def _rgb_to_lab(rgb, illuminant="D65", observer="2", name=None):
    """sRGB in [0, 1] -> CIE L*a*b* (D65), as ``tfio.experimental.color.rgb_to_lab``."""
    rgb = tf.convert_to_tensor(rgb, tf.float32)
    linear = tf.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = tf.constant(
        [
            [0.412453, 0.212671, 0.019334],
            [0.357580, 0.715160, 0.119193],
            [0.180423, 0.072169, 0.950227],
        ],
        tf.float32,
    )
    xyz = tf.tensordot(linear, m, axes=1) / tf.constant([0.95047, 1.0, 1.08883])
    f = tf.where(xyz > 0.008856, tf.pow(tf.maximum(xyz, 1e-12), 1 / 3), 7.787 * xyz + 16 / 116)
    x, y, z = tf.unstack(f, axis=-1)
    lightness = tf.where(xyz[..., 1] > 0.008856, 116 * y - 16, 903.3 * xyz[..., 1])
    return tf.stack([lightness, 500 * (x - y), 200 * (y - z)], axis=-1)


def _tensorflow_io_stub() -> types.ModuleType:
    tfio = types.ModuleType("tensorflow_io")
    tfio.__doc__ = "Stand-in by pipelines.odapi_compat: only experimental.color.rgb_to_lab."
    tfio.experimental = types.SimpleNamespace(color=types.SimpleNamespace(rgb_to_lab=_rgb_to_lab))
    return tfio


# ---------------------------------------------------------------- install


def _getsize(self, text, *args, **kwargs):
    left, top, right, bottom = self.getbbox(text, *args, **kwargs)
    return right - left, bottom - top


def install() -> None:
    """Install every shim (idempotent)."""
    if not any(isinstance(f, _ProtoFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _ProtoFinder())

    if (
        not hasattr(tf.compat.v1, "estimator")
        or "tensorflow.compat.v1.estimator" not in sys.modules
    ):
        stub = _MissingEstimator("tensorflow.compat.v1.estimator")
        sys.modules.setdefault("tensorflow.compat.v1.estimator", stub)
        try:
            tf.compat.v1.estimator  # noqa: B018
        except AttributeError:
            tf.compat.v1.estimator = stub

    from tensorflow.python.ops import control_flow_ops

    if not hasattr(control_flow_ops, "cond"):
        control_flow_ops.cond = tf.cond
    if not hasattr(control_flow_ops, "case"):
        control_flow_ops.case = tf.case

    from PIL import ImageFont

    for cls in (ImageFont.FreeTypeFont, ImageFont.ImageFont):
        if not hasattr(cls, "getsize"):
            cls.getsize = _getsize

    if "tensorflow_io" not in sys.modules:
        sys.modules["tensorflow_io"] = _tensorflow_io_stub()


install()
