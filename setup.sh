#!/usr/bin/env bash
# Installs everything into the active Python environment. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
"$PY" -m pip install --disable-pip-version-check -q -r requirements.txt
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "setup: NVIDIA GPU found, installing TensorFlow's CUDA variant"
  "$PY" -m pip install --disable-pip-version-check -q "tensorflow[and-cuda]==$(grep -E '^tensorflow==' requirements.txt | cut -d= -f3)"
fi
"$PY" - <<'PY'
import sys
sys.path.insert(0, "submission")
from mrnet.runtime import import_tensorflow  # TensorFlow's native start-up lines stay off the screen
tf = import_tensorflow()
import keras, sklearn, pandas, numpy
print(f"setup: ok  tensorflow {tf.__version__}  keras {keras.__version__}  "
      f"numpy {numpy.__version__}  GPUs {len(tf.config.list_physical_devices('GPU'))}")
PY
