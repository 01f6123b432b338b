"""Synthetic pretraining: slice labels from the phantom's truth, pretrain.py's folder, fit.py --init."""

import csv
import json
import re
import subprocess
import sys
import shutil
from pathlib import Path

import numpy as np
import pytest

from learning.artefacts import check_init, init_shape
from learning.pipeline import epoch_indices
from learning.pretraining import slice_targets
from learning.recipe import MODEL_KEYS, Model, fit_config

ROOT = Path(__file__).resolve().parents[1]


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
    shows = targets.any(axis=1)
    batches = epoch_indices(shows, 4, np.random.default_rng(0), int(shows.sum()))
    chosen = batches.ravel()
    assert batches.shape[1] == 4 and len(set(chosen)) == len(chosen)
    assert {3, 70, 71, 300} <= set(chosen.tolist()) and len(chosen) == 8


@pytest.mark.slow
def test_pretrain_writes_weights_and_a_manifest_that_fit_checks(pretrained, tiny_phantom, tmp_path):
    """The folder names its corpus and the crop CNN's shape, and the held-out window AUCs it records
    are those of its own weights on the corpus's held-out windows, recomputed here."""
    from learning.crops import crop_size
    from learning.pretraining import load_windows, window_model
    from sklearn.metrics import roc_auc_score

    manifest = json.loads((pretrained / "manifest.json").read_text())
    assert manifest["planes"] == ["sagittal", "coronal", "axial"]
    assert manifest["corpus"] == {"generator_version": 6, "seeds": [3], "styles": ["anatomical"], "randomised": [False],
                                  "exams": {"train": 12, "valid": 6}}
    assert manifest["model"] == {"target": "windows", "crop_width": 8, "space_pool": "avgmax"}
    assert manifest["made_by"] == "python train/pretrain.py" and manifest["configuration"]["model"]["crop_width"] == 8
    model = window_model(8, "avgmax")
    model.get_layer("window_network").load_weights(str(pretrained / "sagittal.weights.h5"))
    windows, kinds, labels = load_windows([tiny_phantom], "sagittal", "valid", 0)
    assert windows.shape[1:] == (crop_size(), crop_size()) and set(kinds) == {0, 1}
    scores = np.asarray(model({"windows": windows, "kind": kinds}))
    recorded = manifest["measured"]["held_out_auc"]["sagittal"]
    for k, task in enumerate(("acl", "meniscus")):
        y, s = labels[kinds == k], scores[kinds == k]
        expected = roc_auc_score(y, s) if 0 < y.sum() < len(y) else None
        assert recorded[task] == (pytest.approx(expected, abs=1e-4) if expected is not None else None)
    crops = Model(crops=True, crop_width=8)
    assert check_init(pretrained, crops, "sagittal") == pretrained / "sagittal.weights.h5"
    with pytest.raises(SystemExit, match="another model shape: --crop-width 8 \\(this run: 16\\)"):
        check_init(pretrained, Model(crops=True, crop_width=16), "sagittal")
    whole = fit_config(model={"width": 8, "crops": False}).model  # a whole-slice run cannot start from window weights
    with pytest.raises(SystemExit, match="another model shape: --target windows \\(this run: slices\\)"):
        check_init(pretrained, whole, "sagittal")
    assert init_shape(whole) == {"target": "slices", **{k: getattr(whole, k) for k in MODEL_KEYS if k != "seed"}}
    partial = tmp_path / "partial"
    shutil.copytree(pretrained, partial)
    (partial / "manifest.json").write_text(json.dumps({**manifest, "planes": ["sagittal"]}))
    with pytest.raises(SystemExit, match="no weights for plane axial"):
        check_init(partial, crops, "axial")
    tampered = tmp_path / "tampered"
    shutil.copytree(pretrained, tampered)
    (tampered / "sagittal.weights.h5").write_bytes((pretrained / "sagittal.weights.h5").read_bytes() + b"x")
    with pytest.raises(SystemExit, match="sagittal.weights.h5: checksum mismatch"):
        check_init(tampered, crops, "sagittal")


@pytest.mark.slow
def test_fit_starts_from_the_pretrained_window_network_and_can_hold_it_still(tiny_bundle, pretrained, tiny_localiser,
                                                                      tiny_phantom):
    """The tiny bundle's fit (conftest: --init PATH --freeze-epochs 1 --lr 0 --jobs 1): the first epoch
    trains the rest of the model with the pretrained window network (crop CNN and window head) frozen,
    at the from-scratch rate, the second everything at rate 0. So the best epoch's window network is
    the pretrained one bit for bit; the manifest records the init and the localiser by name and
    checksum, not by where they lie.

    With --jobs 1 the planes train one after another, each compiled twice (frozen, then whole): each
    plane's own process traces its steps once per compile, so no "triggered tf.function retracing"
    warning, which one process for all three planes drew."""
    from learning.model import build_model

    run, bundle = tiny_bundle.parent / "run", tiny_bundle
    text = (bundle / "manifest.json").read_text()
    manifest = json.loads(text)
    training = manifest["configuration"]["training"]  # fit.py's settings, the init and localiser by name
    assert training["init"] == "pretrained" and training["lr"] == 0 and training["freeze_epochs"] == 1
    assert training["localiser"] == tiny_localiser.name and manifest["configuration"]["model"]["crop_width"] == 8
    assert manifest["init"]["sagittal"]["sha256"] == json.loads(
        (pretrained / "manifest.json").read_text())["files"]["sagittal.weights.h5"]
    assert manifest["localiser"]["folder"] == tiny_localiser.name and manifest["localiser"]["files"] == json.loads(
        (tiny_localiser / "manifest.json").read_text())["files"]
    assert str(run.parent) not in text and str(pretrained) not in text and str(tiny_phantom) not in text
    assert "window_network frozen for 1 epochs" in (run / "sagittal" / "train.log").read_text()
    assert "1 at a time" in (run.parent / "fit.log").read_text()
    for plane in ("sagittal", "coronal", "axial"):
        log = (run / plane / "train.log").read_text()
        assert "retracing" not in log, log[-2000:]
        # each process says what it peaked at, for sizing a machine: TensorFlow alone is a few 100 MB
        peak = float(re.search(rf"\[{plane}\] peak memory of this process: ([0-9.]+) GiB", log).group(1))
        assert 0.2 < peak < 8, peak
    assert len((run / "sagittal" / "history.csv").read_text().splitlines()) == 3  # header + both phases
    model = build_model(width=8, crop_width=8, crops=True, pooled_input=True)
    model.load_weights(str(run / "sagittal" / "best.weights.h5"))
    pretrained_network = build_model(width=8, crop_width=8, crops=True, pooled_input=True).get_layer("window_network")
    pretrained_network.load_weights(str(pretrained / "sagittal.weights.h5"))
    before, after = pretrained_network.get_weights(), model.get_layer("window_network").get_weights()
    assert len(before) > 5
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    # the second phase ran at rate 0: the model the tuning split saw after each epoch is the same one
    rows = list(csv.DictReader(open(run / "sagittal" / "history.csv")))
    assert float(rows[0]["val_loss"]) == pytest.approx(float(rows[1]["val_loss"]), abs=1e-6)


def test_freezing_needs_a_pretrained_init():
    proc = subprocess.run([sys.executable, str(ROOT / "train" / "fit.py"), "--init", "none", "--freeze-epochs", "2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--freeze-epochs needs a pretrained --init" in proc.stderr
