"""What a person sees in the terminal: no TensorFlow native start-up lines, and tables without nan.

Each command runs in a fresh process with the environment a user has (no TF_CPP_MIN_LOG_LEVEL).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NATIVE = re.compile(r"^(I0000|E0000|W0000|WARNING: All log messages)", re.MULTILINE)


def _user_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "MRNET_VERBOSE")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def _run(args, **extra):
    return subprocess.run([sys.executable, *map(str, args)], env=_user_env(**extra), capture_output=True, text=True,
                          timeout=500)


@pytest.mark.slow
def test_fit_on_a_one_class_valid_split_is_quiet_and_says_undefined(tiny_phantom, tmp_path):
    data = tmp_path / "MRNet-v1.0"
    shutil.copytree(tiny_phantom, data)
    for task in ("abnormal", "acl", "meniscus"):  # every valid label 0: no task has an AUC on valid
        path = data / f"valid-{task}.csv"
        path.write_text("".join(line.split(",")[0] + ",0\n" for line in path.read_text().splitlines()))
    r = _run([ROOT / "train" / "fit.py", "--data-dir", data, "--run-dir", tmp_path / "run", "--bundle",
              tmp_path / "bundle", "--epochs", "1", "--batch-slices", "64", "--width", "8", "--quiet",
              "--tune-fraction", "0.5", "--xla", "off"])  # XLA's compile is a third of this fit; nothing here needs it
    assert r.returncode == 0, r.stderr[-3000:]
    screen = r.stdout + r.stderr
    assert not NATIVE.search(screen), NATIVE.findall(screen)
    assert "nan" not in screen.lower() and "RuntimeWarning" not in screen
    valid = screen.split("ROC AUC on valid")[1].split("ROC AUC on tune")[0]
    for row in ("sagittal", "coronal", "axial", "combined"):
        line = next(x for x in valid.splitlines() if x.startswith(row))
        assert line.count("undefined (one class)") == 3 and line.rstrip().endswith("undefined"), line
    assert "devices: 0 GPU(s)" in screen  # our own device line stays


def test_predict_is_quiet_unless_verbose(tiny_phantom, tiny_bundle, tmp_path):
    inp = tmp_path / "in.csv"
    inp.write_text("".join(f"{tiny_phantom}/valid/{p}/0012.npy\n" for p in ("sagittal", "coronal", "axial")))
    cmd = [ROOT / "submission" / "predict.py", inp, tmp_path / "out.csv", "--bundle", tiny_bundle]
    quiet = _run(cmd)
    assert quiet.returncode == 0, quiet.stderr
    assert not NATIVE.search(quiet.stdout + quiet.stderr), quiet.stderr
    assert "predict: wrote 1 rows" in quiet.stderr
    # the lines exist and only the filter hides them: MRNET_VERBOSE shows them again
    loud = _run(cmd, MRNET_VERBOSE="1")
    assert loud.returncode == 0 and NATIVE.search(loud.stderr), loud.stderr[-2000:]


def test_explore_and_evaluate_are_quiet(tiny_phantom, tmp_path):
    r = _run([ROOT / "train" / "explore.py", "--data-dir", tiny_phantom, "--out-dir", tmp_path / "explore"])
    assert r.returncode == 0, r.stderr
    assert not NATIVE.search(r.stdout + r.stderr) and "suspicious stacks:" in r.stdout
    pred = tmp_path / "pred.csv"
    pred.write_text("".join(f"0.{i}1,0.{i}2,0.{i}3\n" for i in range(6)))
    r = _run([ROOT / "train" / "evaluate.py", tiny_phantom / "valid-paths.csv", pred, "--labels-dir", tiny_phantom,
              "--bootstrap", "20", "--out", tmp_path / "ev"])
    assert r.returncode == 0, r.stderr
    assert not NATIVE.search(r.stdout + r.stderr) and "nan" not in r.stdout.lower() and "mean" in r.stdout
