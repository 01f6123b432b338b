"""What a person sees in the terminal: no TensorFlow native start-up lines, and tables without nan.

Each command runs in a fresh process with the environment a user has (no TF_CPP_MIN_LOG_LEVEL).
"""

import os
import re
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


def test_a_one_class_split_reads_undefined_in_fits_table(capsys):
    """fit.py's table for a valid split whose labels are all 0: every AUC and the mean read
    'undefined (one class)' and 'undefined', never nan; the tuning split is scored as usual."""
    import numpy as np

    from learning.report import auc_table, print_table

    rng = np.random.default_rng(0)
    tune_y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    logits = {"valid": {p: rng.normal(size=(5, 3)) for p in ("sagittal", "coronal", "axial")},
              "tune": {p: rng.normal(size=(4, 3)) for p in ("sagittal", "coronal", "axial")}}
    combined = {"valid": rng.random((5, 3)), "tune": tune_y * 0.8 + 0.1}
    table = auc_table(logits, combined, {"valid": np.zeros((5, 3), int), "tune": tune_y})
    print_table(table)
    screen = capsys.readouterr().out
    assert "nan" not in screen.lower()
    valid = screen.split("ROC AUC on valid")[1].split("ROC AUC on tune")[0]
    for row in ("sagittal", "coronal", "axial", "combined"):
        line = next(x for x in valid.splitlines() if x.startswith(row))
        assert line.count("undefined (one class)") == 3 and line.rstrip().endswith("undefined"), line
    tune = next(x for x in screen.split("ROC AUC on tune")[1].splitlines() if x.startswith("combined"))
    assert tune.split() == ["combined", "1.000", "1.000", "1.000", "1.000"]


@pytest.mark.slow
def test_fit_is_quiet_and_says_where_its_windows_came_from(tiny_phantom, tmp_path):
    """fit.py as a user runs it (no TF_CPP_MIN_LOG_LEVEL), crops at the phantom's true anatomy (the
    benchmark's ceiling): no native start-up line, each plane says how many exams had no confident
    place, the table lands in report.json and no bundle is written (predict has no truth)."""
    import json

    r = _run([ROOT / "train" / "fit.py", "--data-dir", tiny_phantom, "--run-dir", tmp_path / "run", "--bundle",
              tmp_path / "bundle", "--epochs", "1", "--batch-slices", "64", "--width", "8", "--crop-width", "8",
              "--quiet", "--tune-fraction", "0.5", "--xla", "off", "--crops", "--localiser", "truth", "--init", "none"])
    assert r.returncode == 0, r.stderr[-3000:]
    screen = r.stdout + r.stderr
    assert not NATIVE.search(screen), NATIVE.findall(screen)
    assert "nan" not in screen.lower() and "RuntimeWarning" not in screen
    assert "devices: 0 GPU(s)" in screen  # our own device line stays
    log = (tmp_path / "run" / "sagittal" / "train.log").read_text()  # each plane's worker says it in its log
    # at the true anatomy, only a stack whose knee is outside the field of view has no place on any slice
    from learning.pipeline import split
    from mrnet.layout import read_labels
    from phantom.writer import read_truth

    fit_exams = split(read_labels(tiny_phantom), 0.5, 0)[0]["fit"].index
    outside = sum(read_truth(tiny_phantom)["exams"][c]["bad_stacks"].get("sagittal") == "out of field of view"
                  for c in fit_exams)
    assert f"[sagittal] windows placed by the phantom truth; fit: {outside} of {len(fit_exams)} exams" in log
    assert "crops, axial: fit 0 of" in screen and "bundle: none (--localiser truth" in screen
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    coronal = report["localised"]["coronal"]["valid"]
    assert coronal["exams"] == 6 and coronal["fell_back"] == 0 and 0 < coronal["windows_used"] < 1
    assert set(report["auc"]["valid"]) == {"sagittal", "coronal", "axial", "combined"}
    assert not (tmp_path / "bundle").exists()


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
