"""Synthetic pretraining: slice labels from the phantom's truth, pretrain.py's folder, fit.py --init."""

import json
import os
import re
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

from learning.pretraining import MODEL_FLAGS, check_init, epoch_batches, slice_targets

ROOT = Path(__file__).resolve().parents[1]
SHAPE = ["--width", "8", "--input-size", "64"]


def test_slice_labels_come_from_where_the_generator_drew_each_lesion():
    exam = {"findings": ["ACL tear", "medial meniscal tear"],
            "lesion_slices": {"sagittal": {"ACL notch fluid": [9, 10, 11, 12], "ACL tear": [10, 11],
                                           "meniscal tear medial posterior": [3, 4]}}}
    y = slice_targets(exam, "sagittal", 20)
    assert y.shape == (20, 3)
    assert np.flatnonzero(y[:, 1]).tolist() == [10, 11] and np.flatnonzero(y[:, 2]).tolist() == [3, 4]
    assert np.flatnonzero(y[:, 0]).tolist() == [3, 4, 9, 10, 11, 12]  # any lesion on the slice
    assert slice_targets({**exam, "findings": ["effusion"]}, "sagittal", 20)[:, 0].all()  # fluid everywhere
    assert not slice_targets(exam, "coronal", 5).any()


def test_each_epoch_holds_every_positive_slice_and_as_many_others():
    targets = np.zeros((500, 3), np.float32)
    targets[[3, 70, 71, 300], 1] = 1
    batches = epoch_batches(targets, 4, np.random.default_rng(0))
    chosen = batches.ravel()
    assert batches.shape[1] == 4 and len(set(chosen)) == len(chosen)
    assert {3, 70, 71, 300} <= set(chosen.tolist()) and len(chosen) == 8


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """pretrain.py as a user runs it, on a tiny corpus of one style, in a cache of its own."""
    tmp = tmp_path_factory.mktemp("pretrain")
    out = tmp / "pretrained"
    env = {**os.environ, "MRNET_CACHE": str(tmp / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, str(ROOT / "train" / "pretrain.py"), "--out", str(out),
                           "--corpus-styles", "geometric", "--corpus-exams", "16", "--epochs", "2",
                           "--quiet", *SHAPE], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.mark.slow
def test_pretrain_writes_weights_and_a_manifest_that_fit_checks(pretrained, tmp_path):
    manifest = json.loads((pretrained / "manifest.json").read_text())
    assert manifest["planes"] == ["sagittal", "coronal", "axial"] and manifest["corpus"]["styles"] == ["geometric"]
    assert manifest["corpus"]["exams"] == {"train": 16, "valid": 10} and manifest["model"]["width"] == 8
    auc = manifest["held_out_slice_auc"]["sagittal"]
    assert set(auc) == {"abnormal", "acl", "meniscus"} and all(np.isnan(v) or 0 <= v <= 1 for v in auc.values())
    args = Namespace(**{k: v for k, v in manifest["model"].items()})
    assert check_init(pretrained, args, "sagittal") == pretrained / "sagittal.weights.h5"
    with pytest.raises(SystemExit, match="another model shape: --width 8 \\(this run: 16\\)"):
        check_init(pretrained, Namespace(**{**vars(args), "width": 16}), "sagittal")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "manifest.json").write_text(json.dumps({**manifest, "planes": ["sagittal"]}))
    with pytest.raises(SystemExit, match="no weights for plane axial"):
        check_init(partial, args, "axial")
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    (tampered / "manifest.json").write_text((pretrained / "manifest.json").read_text())
    (tampered / "sagittal.weights.h5").write_bytes((pretrained / "sagittal.weights.h5").read_bytes() + b"x")
    with pytest.raises(SystemExit, match="does not match its manifest's sha256"):
        check_init(tampered, args, "sagittal")
    assert set(MODEL_FLAGS) <= set(manifest["model"])


@pytest.mark.slow
def test_fit_starts_from_the_pretrained_weights_and_can_hold_the_backbone_still(pretrained, tiny_phantom, tmp_path):
    """fit.py --init PATH --freeze-epochs 1 --lr 0: the first epoch trains the exam head alone (at the
    from-scratch rate), the second the whole network at rate 0. So the best epoch's backbone is the
    pretrained one bit for bit (the weights were loaded into the very model trained, and frozen) and
    its head is not; the manifest records the init by name and checksum, not by where it lies.

    With --jobs 1 the planes train one after another over ragged batches (XLA off), each compiled
    twice (frozen, then whole): each plane's own process traces its steps once per compile, so no
    "triggered tf.function retracing" warning, which one process for all three planes drew."""
    from learning.model import build_model

    run, bundle = tmp_path / "run", tmp_path / "bundle"
    proc = subprocess.run([sys.executable, str(ROOT / "train" / "fit.py"), "--data-dir", str(tiny_phantom),
                           "--run-dir", str(run), "--bundle", str(bundle), "--init", str(pretrained),
                           "--epochs", "2", "--freeze-epochs", "1", "--lr", "0", "--batch-slices", "64",
                           "--tune-fraction", "0.5", "--quiet", "--xla", "off", "--jobs", "1", *SHAPE],
                          capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = (bundle / "manifest.json").read_text()
    training = json.loads(text)["training"]
    assert training["init"] == "pretrained" and training["lr"] == 0 and training["freeze_epochs"] == 1
    assert training["init_weights"]["sagittal"]["sha256"] == json.loads(
        (pretrained / "manifest.json").read_text())["files"]["sagittal.weights.h5"]
    assert str(tmp_path) not in text and str(pretrained) not in text and str(tiny_phantom) not in text
    assert "backbone frozen for 1 epochs" in (run / "sagittal" / "train.log").read_text()
    assert "1 at a time" in proc.stdout
    for plane in ("sagittal", "coronal", "axial"):
        log = (run / plane / "train.log").read_text()
        assert "XLA off" in log and "retracing" not in log, log[-2000:]
        # each process says what it peaked at, for sizing a machine: TensorFlow alone is a few 100 MB
        peak = float(re.search(rf"\[{plane}\] peak memory of this process: ([0-9.]+) GiB", log).group(1))
        assert 0.2 < peak < 8, peak
    assert "retracing" not in proc.stdout + proc.stderr
    assert len((run / "sagittal" / "history.csv").read_text().splitlines()) == 3  # header + both phases
    models = []
    for weights in (pretrained / "sagittal.weights.h5", run / "sagittal" / "best.weights.h5"):
        model = build_model(width=8, input_size=64, augment=False, space_pool="avgmax", pooled_input=True)
        model.load_weights(str(weights))
        models.append(model)
    before, after = (m.get_layer("compact").get_weights() for m in models)
    assert len(before) > 5
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    head_before, head_after = (m.get_layer("logits").get_weights()[0] for m in models)
    assert np.abs(head_before - head_after).max() > 1e-4


def test_freezing_needs_a_pretrained_init():
    proc = subprocess.run([sys.executable, str(ROOT / "train" / "fit.py"), "--freeze-epochs", "2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--freeze-epochs needs a pretrained --init" in proc.stderr
