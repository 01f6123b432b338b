"""Ragged slice pooling, batch invariance, and per-exam augmentation on the real model code."""

import numpy as np
import pytest

from learning.layers import ExamAugment, ExamPool
from learning.model import build_model


@pytest.mark.parametrize("mode", ["max", "mean", "attention"])
def test_exam_pool_pools_each_exam_over_its_own_slices(mode):
    rng = np.random.default_rng(0)
    counts = [3, 1, 5]
    feats = rng.normal(size=(sum(counts), 4)).astype("float32")
    layer = ExamPool(mode)
    out = np.asarray(layer([feats, np.array(counts, "int32")]))
    assert out.shape == (3, 4)
    start = 0
    for e, n in enumerate(counts):
        block = feats[start:start + n]
        if mode == "max":
            np.testing.assert_allclose(out[e], block.max(0), rtol=1e-6)
        elif mode == "mean":
            np.testing.assert_allclose(out[e], block.mean(0), rtol=1e-5)
        else:
            assert np.all(out[e] <= block.max(0) + 1e-5) and np.all(out[e] >= block.min(0) - 1e-5)
        start += n


@pytest.mark.parametrize("pooling", ["max", "attention"])
def test_exam_output_does_not_depend_on_its_batch(pooling):
    rng = np.random.default_rng(1)
    model = build_model(pooling=pooling, width=8, augment=False, crops=False)
    counts = [7, 12, 4]
    slices = rng.integers(0, 256, (sum(counts), 256, 256), dtype=np.uint8)
    mixed = np.asarray(model({"slices": slices, "counts": np.array(counts, "int32")}, training=False))
    alone = np.asarray(model({"slices": slices[7:19], "counts": np.array([12], "int32")}, training=False))
    np.testing.assert_allclose(alone[0], mixed[1], atol=1e-5)


def test_a_pretrained_applications_backbone_trains_without_batch_statistics(tmp_path):
    """--weights PATH (or imagenet): the backbone's BatchNorm keeps its statistics while training, so
    an exam's training-mode logits are the same alone and beside other exams (a 256 px batch holds
    about one exam, and BatchNorm over one exam ranked exams inversely). From scratch it learns from
    the batch, which the same comparison shows."""
    import keras

    rng = np.random.default_rng(3)
    counts = [5, 6]
    slices = rng.normal(0, 40, (sum(counts), 64, 64)).astype("float32") + 100
    shape = dict(backbone="efficientnetb0", input_size=64, augment=False, pooled_input=True, crops=False,
                 dropout=0.0)
    scratch = build_model(**shape)
    saved = tmp_path / "efficientnetb0.weights.h5"
    scratch.get_layer("efficientnetb0").get_layer("efficientnetb0").save_weights(str(saved))
    before = scratch.get_layer("efficientnetb0").get_layer("efficientnetb0").get_weights()

    def alone_and_mixed(model):
        mixed = np.asarray(model({"slices": slices, "counts": np.array(counts, "int32")}, training=True))
        alone = np.asarray(model({"slices": slices[5:], "counts": np.array([6], "int32")}, training=True))
        return alone[0], mixed[1]

    assert np.abs(np.subtract(*alone_and_mixed(scratch))).max() > 1e-3  # batch statistics: the mates matter
    pretrained = build_model(**shape, weights=str(saved))
    inner = pretrained.get_layer("efficientnetb0").get_layer("efficientnetb0")
    for a, b in zip(inner.get_weights(), before):  # the file's weights, not the scratch model's trained-on ones
        np.testing.assert_array_equal(a, b)
    norms = [layer for layer in inner.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) > 10 and not any(layer.trainable for layer in norms)
    np.testing.assert_allclose(*alone_and_mixed(pretrained), atol=1e-4)


def test_augmentation_moves_all_slices_of_an_exam_together():
    layer = ExamAugment(25, 25, seed=3)
    rng = np.random.default_rng(2)
    one = rng.normal(size=(1, 64, 64, 1)).astype("float32")
    other = rng.normal(size=(1, 64, 64, 1)).astype("float32")
    images = np.concatenate([one, one, one, other, other])
    out = np.asarray(layer([images, np.array([3, 2], "int32")], training=True))
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)
    np.testing.assert_allclose(out[0], out[2], atol=1e-6)
    assert not np.allclose(out[0], images[0])  # it did transform
    np.testing.assert_array_equal(np.asarray(layer([images, np.array([3, 2], "int32")], training=False)), images)


def test_early_stopping_waits_for_half_the_epochs(tmp_path):
    """fit.py's callbacks on a model whose tuning AUC cannot improve: patience 0 would stop after one
    epoch; patience counts only from half of the epochs, so the run gets at least that far."""
    import keras

    from learning.training import plane_callbacks

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, 2, (32, 1)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse",  # learning rate 0: nothing ever improves
                  metrics=[keras.metrics.AUC(name="auc")])
    history = model.fit(x, y, validation_data=(x, y), epochs=8, verbose=0,
                        callbacks=plane_callbacks(tmp_path, tmp_path / "tb", epochs=8, patience=0))
    # monitoring starts at epoch index 4, whose AUC is the first best; index 5 does not improve: stop.
    # Counted from the start, patience 0 would have stopped at index 1 (2 epochs).
    assert len(history.history["loss"]) == 6


def test_fit_trains_each_plane_in_its_own_process_without_retracing(tiny_bundle):
    """fit.py on a CPU: one process per plane (each logs to its own train.log), XLA over fixed-shape
    batches, so Keras' train and test steps are traced once: no 'triggered tf.function retracing'
    warning, whatever the exams' slice counts."""
    run = tiny_bundle.parent / "run"
    for plane in ("sagittal", "coronal", "axial"):
        log = (run / plane / "train.log").read_text()
        assert f"[{plane}] training:" in log and "XLA on" in log
        assert "retracing" not in log, log[-2000:]
        assert (run / plane / "logits.npz").is_file()


def test_the_logits_the_combiner_learnt_from_are_the_bundles_own(tiny_bundle, tiny_phantom):
    """fit.py predicts each plane's logits from block-averaged slices (4x faster than raw ones); the
    bundle's frozen models take raw 256 px slices. The combiner was fit on the former and runs on
    the latter, so the two must be the same numbers."""
    import tensorflow as tf

    from mrnet.layout import read_labels, series_path

    run = tiny_bundle.parent / "run"
    valid = read_labels(tiny_phantom).loc["valid"]
    for plane in ("sagittal", "axial"):
        saved = np.load(run / plane / "logits.npz", allow_pickle=False)["valid"]
        frozen_model = tf.saved_model.load(str(tiny_bundle / plane))
        for row, case in enumerate(valid.index):
            series = np.load(series_path(tiny_phantom, "valid", plane, case), allow_pickle=False)
            frozen = frozen_model.serve(tf.constant(series), tf.constant([len(series)], tf.int32))["logits"].numpy()[0]
            np.testing.assert_allclose(saved[row], frozen, rtol=1e-4, atol=1e-4)
        assert np.std(saved) > 0


def _tuning_targets(data_dir):
    from conftest import TINY_FIT_SEED

    from learning.pipeline import split
    from mrnet.contract import TASKS
    from mrnet.layout import read_labels

    splits, _ = split(read_labels(data_dir), 0.5, TINY_FIT_SEED)
    return splits["tune"][list(TASKS)].values


def test_the_kept_epoch_is_the_best_competition_mean_of_the_real_tuning_exams(tiny_bundle, tiny_phantom):
    """fit.py under XLA (fixed-shape batches padded with blank exams of weight 0): the val_auc that
    chose each plane's kept epoch is scikit-learn's mean AUC of that epoch's tuning logits, exam for
    exam what the table at the end prints. Keras' AUC, passed as a plain metric, counted the fillers."""
    import csv

    from scoring.metrics import auc_or_none

    targets = _tuning_targets(tiny_phantom)
    assert all(0 < targets[:, t].sum() < len(targets) for t in range(3)), "every task needs both classes"
    run = tiny_bundle.parent / "run"
    for plane in ("sagittal", "coronal", "axial"):
        assert "XLA on" in (run / plane / "train.log").read_text()
        rows = list(csv.DictReader(open(run / plane / "history.csv")))
        assert len(rows) == 2
        best = max(float(r["val_auc"]) for r in rows)
        tune = np.load(run / plane / "logits.npz", allow_pickle=False)["tune"]
        aucs = [auc_or_none(targets[:, t], tune[:, t]) for t in range(3)]
        assert best == pytest.approx(np.mean(aucs), abs=1e-6)
        kept = max(rows, key=lambda r: float(r["val_auc"]))
        assert [float(kept[f"val_auc_{task}"]) for task in ("abnormal", "acl", "meniscus")] == \
            pytest.approx(aucs, abs=1e-6)


def test_blank_fillers_of_fixed_shape_batches_cannot_move_the_tuning_metric(tiny_phantom):
    """The same exams in ragged batches and in XLA's fixed-shape batches (blank exams of weight 0
    fill each batch): identical logits, labels and val_auc, which is scikit-learn's mean AUC. Keras'
    AUC as a plain metric reads another number from the padded batches: the bug this guards against."""
    import keras

    from learning.pipeline import make_dataset, split_paths, split
    from learning.training import WeightedBCE, inference_step, split_logits, tune_logs
    from mrnet.contract import TASKS
    from mrnet.layout import read_labels
    from scoring.metrics import auc_or_none

    labels = read_labels(tiny_phantom)
    splits, source = split(labels, 0.5, 3)
    paths = split_paths(tiny_phantom, splits, source, "sagittal")["tune"]
    y = splits["tune"][list(TASKS)].values
    ragged = make_dataset(paths, y, 64, shuffle=False, input_size=64)
    static = make_dataset(paths, y, 64, shuffle=False, input_size=64, static=True)
    # the fillers are many: at least one for every two exams (the bug read them as negatives)
    assert sum(int((np.asarray(w) == 0).sum()) for *_, w in static) >= len(paths) / 2
    keras.utils.set_random_seed(0)
    model = build_model(width=8, input_size=64, pooled_input=True, augment=False, crops=False)
    step = inference_step(model)
    (a, ya), (b, yb) = split_logits(step, ragged), split_logits(step, static)
    np.testing.assert_array_equal(ya, y)
    np.testing.assert_array_equal(yb, y)
    np.testing.assert_allclose(a, b, atol=1e-5)
    loss = WeightedBCE([1.0, 1.0, 1.0])
    logs = tune_logs(yb, b, loss)
    assert logs["val_auc"] == pytest.approx(np.mean([auc_or_none(y[:, t], a[:, t]) for t in range(3)]), abs=1e-6)
    assert logs == pytest.approx(tune_logs(ya, a, loss), abs=1e-6)

    unweighted = keras.metrics.AUC(multi_label=True, from_logits=True, num_thresholds=500)
    for x, yy, _ in static:
        unweighted.update_state(yy, step(x))
    assert abs(float(unweighted.result()) - logs["val_auc"]) > 0.01
