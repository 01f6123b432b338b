#!/usr/bin/env bash
# Installs everything into the active Python environment. Safe to run again.
#
# PYTHON=... chooses the interpreter (python3 by default). Where that Python refuses pip installs
# (PEP 668: an EXTERNALLY-MANAGED file in its stdlib folder and not a virtual environment, as the
# system Python of Debian 12 or Ubuntu 23.04 and later) and no virtual or conda environment is
# active, a project virtual environment .venv/ is made beside this file and everything goes there;
# the commands in train/ and benchmarks/ and pytest re-run themselves under it when the Python that
# started them lacks TensorFlow (submission/mrnet/runtime.py, tests/conftest.py).
#
# The tests' hooks (tests/test_setup.py), not for everyday use:
#   MRNET_SETUP_EXTERNALLY_MANAGED=FILE  look for FILE instead of <stdlib>/EXTERNALLY-MANAGED
#   MRNET_SETUP_VENV=DIR                 the virtual environment to make (.venv by default)
#   MRNET_SETUP_SYSTEM_SITE=1            make it with --system-site-packages (pip then finds the pins installed)
#   MRNET_SETUP_DRY_RUN=1                say where it would install, change nothing
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
PIP=(-m pip install --disable-pip-version-check -q)

managed=$("$PY" - "${MRNET_SETUP_EXTERNALLY_MANAGED:-}" <<'PY'
import os, sys, sysconfig
marker = sys.argv[1] or os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
opted_out = os.environ.get("PIP_BREAK_SYSTEM_PACKAGES", "").lower() in ("1", "true", "yes", "on")
print(int(os.path.isfile(marker) and sys.prefix == sys.base_prefix and not opted_out))
PY
)
if [ "$managed" = 1 ]; then
  PYPATH=$(command -v "$PY" || echo "$PY")
  active=${VIRTUAL_ENV:-${CONDA_PREFIX:-}}
  if [ -n "$active" ]; then
    echo "setup: $PYPATH is externally managed (PEP 668) but the environment $active is active:" \
         "run setup.sh with that environment's python (PYTHON=$active/bin/python), or deactivate it" >&2
    exit 1
  fi
  VENV=${MRNET_SETUP_VENV:-.venv}
  if [ "${MRNET_SETUP_DRY_RUN:-0}" = 1 ]; then
    echo "setup: dry run: $PYPATH is externally managed (PEP 668); would install into $VENV/"; exit 0
  fi
  if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    ver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    need="setup: $PYPATH is externally managed (PEP 668) and cannot make $VENV/ (no venv/ensurepip module):"
    need="$need install Debian's python3-venv (apt install python$ver-venv), then run bash setup.sh again"
    if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then echo "$need" >&2; exit 1; fi
    fresh=0; [ -e "$VENV" ] || fresh=1
    site=""; [ "${MRNET_SETUP_SYSTEM_SITE:-0}" = 1 ] && site=--system-site-packages
    if ! log=$("$PY" -m venv $site "$VENV" 2>&1); then
      echo "$log" >&2; echo "$need" >&2
      [ "$fresh" = 1 ] && rm -rf "$VENV"  # a half-made one (python, no pip) would be taken for the project's
      exit 1
    fi
  fi
  PY=$VENV/bin/python
  said="setup: $PYPATH is externally managed (PEP 668); installed into $VENV/ (train/, benchmarks/ and pytest"
  said="$said use it by themselves; source $VENV/bin/activate to use it by hand)"
elif [ "${MRNET_SETUP_DRY_RUN:-0}" = 1 ]; then
  echo "setup: dry run: would install into $(command -v "$PY" || echo "$PY")"; exit 0
fi

"$PY" "${PIP[@]}" -r requirements.txt
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "setup: NVIDIA GPU found, installing TensorFlow's CUDA variant"
  "$PY" "${PIP[@]}" "tensorflow[and-cuda]==$(grep -E '^tensorflow==' requirements.txt | cut -d= -f3)"
fi
[ -z "${said:-}" ] || echo "$said"
"$PY" - <<'PY'
import sys
sys.path.insert(0, "submission")
from mrnet.runtime import import_tensorflow  # TensorFlow's native start-up lines stay off the screen
tf = import_tensorflow()
import keras, sklearn, pandas, numpy
print(f"setup: ok  tensorflow {tf.__version__}  keras {keras.__version__}  "
      f"numpy {numpy.__version__}  GPUs {len(tf.config.list_physical_devices('GPU'))}  python {sys.executable}")
PY
