"""Batches: packing to a slice budget, and the fixed-shape padding used under XLA and several replicas."""

import numpy as np

from learning.model import build_model
from learning.pipeline import make_dataset, pack, pad_batch, static_shape


def test_pack_respects_budget_and_keeps_every_exam_once():
    counts = np.array([30, 25, 61, 17, 40, 22])
    batches = pack(range(len(counts)), counts, 64)
    assert sorted(i for b in batches for i in b) == list(range(len(counts)))
    for b in batches:
        assert len(b) == 1 or counts[b].sum() <= 64  # a stack longer than the budget travels alone


def test_padding_fills_fixed_shapes_without_changing_real_exams():
    rng = np.random.default_rng(0)
    counts = np.array([5, 3], np.int32)
    slices = rng.integers(0, 256, (8, 256, 256), dtype=np.uint8)
    y = np.array([[1, 0, 1], [0, 1, 0]], np.float32)
    slots, total = static_shape([3, 5, 9], budget=12)
    s2, c2, y2, w2 = pad_batch(slices, counts, y, slots, total)
    assert s2.shape == (total, 256, 256) and c2.shape == (slots + 1,) and c2.sum() == total
    assert np.all(c2 >= 1) and list(w2) == [1, 1] + [0] * (slots - 1)
    np.testing.assert_array_equal(y2[:2], y)
    model = build_model(width=8, augment=False, crops=False)
    plain = np.asarray(model({"slices": slices, "counts": counts}, training=False))
    padded = np.asarray(model({"slices": s2, "counts": c2}, training=False))
    np.testing.assert_allclose(padded[:2], plain, atol=1e-5)


def test_worker_shards_split_one_epoch_evenly_and_completely(tiny_phantom):
    """Multi-worker: each worker keeps every n-th of the same planned batches, so the workers run
    the same number of steps and between them see each kept batch exactly once."""
    from mrnet.layout import read_labels, series_path

    labels = read_labels(tiny_phantom).loc["train"]
    paths = [series_path(tiny_phantom, "train", "sagittal", c) for c in labels.index]
    y = labels.values

    def epoch(**kw):
        ds = make_dataset(paths, y, 64, shuffle=True, seed=5, replicas=2, **kw)
        return [tuple(x["counts"].numpy()) + (float(t.numpy().sum()),) for x, t in ds]

    whole, first, second = epoch(), epoch(shard=(2, 0)), epoch(shard=(2, 1))
    assert len(whole) >= 4 and len(whole) % 2 == 0
    assert len(first) == len(second) == len(whole) // 2
    assert first == whole[0::2] and second == whole[1::2]


def test_block_averaging_in_the_pipeline_is_the_models_own_resampling(tiny_phantom):
    """Training feeds block-averaged slices to a model built with pooled_input; the exported model
    takes raw 256 px slices. Same weights, same logits: the two paths must not drift apart."""
    import keras

    from mrnet.layout import read_labels, series_path
    from mrnet.preprocess import block_average

    labels = read_labels(tiny_phantom).loc["train"].iloc[:4]
    paths = [series_path(tiny_phantom, "train", "axial", c) for c in labels.index]
    raw = next(iter(make_dataset(paths, labels.values, 400, shuffle=False)))[0]
    pooled = next(iter(make_dataset(paths, labels.values, 400, shuffle=False, input_size=64)))[0]
    assert pooled["slices"].shape[1:] == (64, 64) and pooled["slices"].dtype == "float32"
    np.testing.assert_array_equal(pooled["slices"], block_average(raw["slices"].numpy(), 64))
    keras.utils.set_random_seed(1)
    exported = build_model(width=8, augment=False, crops=False)
    trained = build_model(width=8, augment=False, pooled_input=True, crops=False)
    trained.set_weights(exported.get_weights())
    a = np.asarray(exported(raw, training=False))
    b = np.asarray(trained(pooled, training=False))
    assert a.shape == (4, 3) and np.std(a) > 0
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # the exported SavedModel's front averages the raw slices with the same bits (learning/export.py)
    from learning.crops import front

    np.testing.assert_array_equal(np.asarray(front(raw["slices"], 64, pooled=True)["slices"]), pooled["slices"])
    # the block mean itself, by hand, on one block
    first = raw["slices"].numpy()[0, :4, :4].astype(np.float64).mean()
    assert pooled["slices"].numpy()[0, 0, 0] == np.float32(first)
