"""Import TensorFlow quietly: a CPU machine gets no CUDA-probe errors or third-party noise.

TensorFlow's C++ start-up writes to file descriptor 2 before its log level applies, so stderr is
captured during the import and replayed only if the import fails.
"""

import os
import sys
import tempfile
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")  # else it imports IPython off a TTY
warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\..*")


def _quiet_import():
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    tensorflow.get_logger().setLevel("ERROR")
    return tensorflow


tf = _quiet_import()

__all__ = ["tf"]
