"""Process set-up every command shares: TensorFlow's native start-up lines kept off the screen.

TensorFlow's C++ runtime writes lines such as `I0000 ... oneDNN custom operations are on` and, on a
machine without a GPU, `E0000 ... failed call to cuInit: ... CUDA error`, straight to file
descriptor 2. Those printed before absl's logging is initialised ignore TF_CPP_MIN_LOG_LEVEL, so
the level alone cannot silence them: TensorFlow is imported (and the GPUs probed) with descriptor 2
pointed at a temporary file, and every line of it that is not a native log line is written back.
Python warnings and errors raised meanwhile therefore still reach the user.

`MRNET_VERBOSE=1` in the environment, or a command's `--verbose`, shows everything.

`use_project_venv()`, called first thing by every command in train/ and benchmarks/: where setup.sh
found the Python externally managed (PEP 668) it installed into the project's own `.venv/`; a
command started by another Python that lacks TensorFlow (`python train/fit.py` in a new shell)
re-executes itself under `.venv/bin/python`, same arguments and environment.
"""

import contextlib
import importlib.util
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository root (submission/mrnet/runtime.py)

NATIVE_LOG = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
                        r"|[IWEF]\d{4} [\d:.]+\s+\d+ [\w.\-]+:\d+\] )")


def project_venv_python(root, tensorflow_spec, prefix):
    """The interpreter to re-execute under, or None: root/.venv/bin/python when TensorFlow is not
    importable here (tensorflow_spec, importlib.util.find_spec's answer, is None), that python exists,
    and this interpreter (sys.prefix, prefix) is not already that venv's (no loop when the venv is
    incomplete: the command then fails there, on its own missing import)."""
    venv = Path(root) / ".venv"
    python = venv / "bin" / "python"
    if tensorflow_spec is not None or not python.exists():
        return None
    if Path(prefix).resolve() == venv.resolve():
        return None
    return python


def use_project_venv(root=ROOT):
    """Re-execute this command under root/.venv/bin/python when project_venv_python says so (a no-op
    everywhere else: an active environment with the dependencies, CI, the organisers' container,
    which has no .venv). Call before any heavy import. The command line is sys.orig_argv's, so
    `python -u train/fit.py ...` and `python -m pytest ...` come back unchanged."""
    python = project_venv_python(root, importlib.util.find_spec("tensorflow"), sys.prefix)
    if python is None:
        return
    argv = getattr(sys, "orig_argv", None)
    argv = argv[1:] if argv else sys.argv  # orig_argv: Python 3.10+
    if verbose():
        print(f"runtime: {sys.executable} has no TensorFlow; re-running under {python}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(str(python), [str(python), *argv])


def verbose():
    return os.environ.get("MRNET_VERBOSE", "") not in ("", "0")


def configure(verbose_flag=False):
    """Call before TensorFlow is imported: native logs off (level 3) unless verbose."""
    if verbose_flag:
        os.environ["MRNET_VERBOSE"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose() else "3")


@contextlib.contextmanager
def native_lines_filtered():
    """Descriptor 2 goes to a temporary file for the block; what is not a native log line comes back."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines(keepends=True)
                    if not NATIVE_LOG.match(line)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def import_tensorflow():
    """TensorFlow, imported quietly (see the module docstring); its GPU list is probed here too,
    since the probe is what prints the cuInit line on a machine without a GPU."""
    configure()
    if "tensorflow" in sys.modules or verbose():
        import tensorflow as tf
        return tf
    with native_lines_filtered():
        import tensorflow as tf
        tf.config.list_physical_devices("GPU")
    return tf
