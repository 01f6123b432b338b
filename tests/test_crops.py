"""Localise, then look: the anatomy truth, the windows, the localiser's reading of a heat map, the
window labels, and the decisive window, each against values worked out by hand."""

import numpy as np
import pytest

from learning.crops import MARGIN, SCALE, WINDOW, crop_size, crops_at, cut_windows
from mrnet.contract import PLACES
from phantom.landmarks import places, slice_landmarks


def test_windows_are_the_image_around_each_centre_with_black_past_the_edges():
    rng = np.random.default_rng(0)
    slices = rng.integers(1, 255, (2, 256, 256)).astype(np.uint8)
    centres = np.array([[[100.2, 50.7], [3.0, 250.0], [128.0, 128.0]],
                        [[255.0, 0.0], [60.0, 61.0], [-40.0, 300.0]]], np.float32)
    size = 16
    windows = np.asarray(cut_windows(slices, centres, size))
    assert windows.shape == (2, 3, size, size)
    padded = np.pad(slices.astype(np.float32), ((0, 0), (size // 2, size // 2), (size // 2, size // 2)))
    for n in range(2):
        for k in range(3):
            r, c = np.clip(np.round(centres[n, k]).astype(int), 0, 256)
            np.testing.assert_array_equal(windows[n, k], padded[n, r:r + size, c:c + size])
    # the window's centre pixel is the centre's own (rounded), and past the edges it is black
    assert windows[0, 0, 8, 8] == slices[0, 100, 51]
    assert (windows[1, 0, 9:, :] == 0).all() and (windows[1, 0, :, :8] == 0).all()  # rows past 255, columns < 0
    assert (windows[1, 0, :9, 8:] > 0).all()


def test_a_training_window_cut_to_size_is_the_exported_window_bit_for_bit():
    """The pipeline keeps MARGIN pixels each side for shift augmentation; centred, that window is
    what the exported model cuts from the raw slice (same block alignment, same means)."""
    rng = np.random.default_rng(1)
    slices = rng.integers(0, 255, (3, 256, 256)).astype(np.uint8)
    centres = rng.uniform(-10, 266, (3, 3, 2)).astype(np.float32)
    wide = np.asarray(crops_at(slices, centres, MARGIN))
    exact = np.asarray(crops_at(slices, centres))
    m = MARGIN // SCALE
    assert wide.shape[-1] == crop_size(MARGIN) and exact.shape[-1] == crop_size() == WINDOW // SCALE
    np.testing.assert_array_equal(wide[:, :, m:-m, m:-m], exact)
    # and, away from the edges, a window SCALE pixels further on is the training window one averaged
    # pixel further on: the shift augmentation shows what a misplaced window shows
    inside = rng.uniform(40, 216, (3, 3, 2)).astype(np.float32)
    wide, shifted = np.asarray(crops_at(slices, inside, MARGIN)), np.asarray(crops_at(slices, inside + SCALE))
    np.testing.assert_array_equal(wide[:, :, m + 1:-m + 1, m + 1:-m + 1], shifted)


def _meniscus_masks():
    """Two menisci on a 4-slice sagittal stack: slice 1 shows the medial one's two horns, slice 2 a
    lateral sliver too small to count, slice 3 nothing; an ACL on slice 0."""
    shape = (4, 256, 256)
    medial, lateral, acl = (np.zeros(shape, bool) for _ in range(3))
    medial[1, 140:146, 100:120] = True  # anterior horn (image left)
    medial[1, 141:147, 160:184] = True  # posterior horn
    lateral[2, 150:152, 90:93] = True  # 6 pixels: below MIN_AREA
    acl[0, 100:130, 120:128] = True
    return {"ACL": acl, "medial meniscus": medial, "lateral meniscus": lateral}


def test_sagittal_landmarks_split_a_meniscus_into_its_horns():
    masks = _meniscus_masks()
    marks = slice_landmarks(masks, "sagittal")
    assert marks.shape == (4, len(PLACES), 5)
    np.testing.assert_array_equal(marks[:, :, 0], [[1, 0, 0], [0, 1, 1], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_allclose(marks[0, 0], [1, 114.5, 123.5, 30, 8])
    np.testing.assert_allclose(marks[1, 1], [1, 142.5, 109.5, 6, 20])  # anterior horn
    np.testing.assert_allclose(marks[1, 2], [1, 143.5, 171.5, 6, 24])  # posterior horn


def test_coronal_places_are_the_menisci_by_their_side_of_the_image():
    masks = _meniscus_masks()
    masks["lateral meniscus"][1, 150:160, 30:40] = True  # now to the image's left of the medial one
    found = places(masks, "coronal")
    assert found["meniscus A"] is masks["lateral meniscus"] and found["meniscus B"] is masks["medial meniscus"]


def test_the_phantom_writes_anatomy_truth_that_sits_on_its_structures(tiny_phantom):
    """Every present place's centre lies inside its structure's mask on that slice (the ACL's, a
    meniscus's): checked against masks drawn again for the same exam."""
    from phantom.exam import make_exam
    from phantom.landmarks import read_anatomy
    from phantom.writer import read_truth

    anatomy = read_anatomy(tiny_phantom)
    truth = read_truth(tiny_phantom)
    assert anatomy is not None and len(anatomy) == 18 * 3
    case = "0013"
    exam = make_exam(3, 13, render_size=64, with_masks=True)
    for plane in ("sagittal", "coronal", "axial"):
        marks = anatomy[(plane, case)]
        assert marks.shape == (len(exam["series"][plane]), 3, 5)
        np.testing.assert_array_equal(marks, slice_landmarks(exam["masks"][plane], plane))
        menisci = exam["masks"][plane]["medial meniscus"] | exam["masks"][plane]["lateral meniscus"]
        for k, mask in ((0, exam["masks"][plane]["ACL"]), (1, menisci), (2, menisci)):
            on = np.flatnonzero(marks[:, k, 0])
            assert len(on) >= 2, (plane, k)
            for i in on:  # the centroid of a horn or a C can fall in its gap: within the bounding box
                rows, cols = np.nonzero(mask[i])
                assert rows.min() <= marks[i, k, 1] <= rows.max() and cols.min() <= marks[i, k, 2] <= cols.max()
    assert set(truth["exams"][case]) >= {"tear_centres", "lesion_slices"}


def test_soft_argmax_reads_a_heat_map_peak_in_series_pixels():
    from learning.localiser import soft_argmax

    heat = np.full((1, 32, 32, 2), -30.0, np.float32)
    heat[0, 10, 20, 0] = 30.0  # cell (10, 20) of an 8 px grid: pixels 80-87 and 160-167, centre 83.5, 163.5
    heat[0, 5, 5, 1] = heat[0, 5, 6, 1] = 30.0  # two equal cells: half way between
    centre = np.asarray(soft_argmax(heat))
    np.testing.assert_allclose(centre[0, 0], [83.5, 163.5], atol=1e-3)
    np.testing.assert_allclose(centre[0, 1], [43.5, 47.5], atol=1e-3)


def test_precision_counts_distances_on_true_slices_and_presence_f1():
    from learning.localiser import precision

    targets = np.zeros((4, 3, 3), np.float32)
    targets[:3, 0] = [[1, 10, 10], [1, 20, 20], [1, 30, 30]]
    centres = np.zeros((4, 3, 2), np.float32)
    centres[:3, 0] = [[13, 14], [20, 20], [30, 36]]  # 5, 0, 6 px off
    presence = np.zeros((4, 3), np.float32)
    presence[[0, 1, 3], 0] = 0.9  # found on two true slices and one false
    out = precision(centres, presence, targets)["ACL"]
    assert out["median_px"] == pytest.approx(5.0) and out["p90_px"] == pytest.approx(5.8)
    assert out["precision"] == pytest.approx(2 / 3) and out["recall"] == pytest.approx(2 / 3)
    assert out["f1"] == pytest.approx(2 / 3) and out["slices"] == 3


def test_a_window_is_labelled_torn_where_a_tear_centre_lies_inside_it():
    from learning.pretraining import window_targets

    marks = np.zeros((3, 3, 5), np.float32)
    marks[:, 0, :3] = [1, 100, 100]
    marks[:, 1, :3] = [1, 150, 60]
    marks[:, 2, :3] = [1, 150, 130]
    exam = {"tear_centres": {"sagittal": {"ACL tear": {"1": [110.0, 95.0]},
                                          "meniscal tear medial posterior": {"2": [152.0, 140.0]}}}}
    y = window_targets(exam, "sagittal", marks, WINDOW)
    np.testing.assert_array_equal(y, [[0, 0, 0], [1, 0, 0], [0, 0, 1]])  # 140 is 80 px from 60: outside A
    marks[2, 2, 0] = 0  # a place not on the slice has no window to label
    assert window_targets(exam, "sagittal", marks, WINDOW)[2].sum() == 0


def test_the_decisive_window_is_the_largest_share_among_used_windows_of_the_tasks_places():
    from mrnet.explain import decisive_window

    shares = np.zeros((3, 3, 3), np.float32)
    shares[0, 0, 1] = 5.0  # the ACL window of slice 0, for the ACL task
    shares[1, 2, 2] = 2.0  # meniscus B of slice 1, for the meniscus task
    shares[2, 1, 2] = 9.0  # meniscus A of slice 2 scores more, but its window was not used
    gates = np.ones((3, 3), np.float32)
    gates[2, 1] = 0
    explained = {"window_logits": shares, "gates": gates}
    assert decisive_window(explained, "acl") == (0, 0)
    assert decisive_window(explained, "meniscus") == (1, 2)
    assert decisive_window(explained, "abnormal") is None
    assert decisive_window({**explained, "gates": np.zeros((3, 3))}, "acl") is None  # fell back


def test_an_exam_without_a_confident_place_falls_back_to_the_whole_slice(tmp_path):
    """A localiser sure of nothing (presence bias -100): the exported model's `localised` counts are
    0 and its logits are the whole-slice branch's with no window vote, whatever the windows show;
    with every window used, the windows do change the logits."""
    import keras
    import tensorflow as tf

    from learning.export import export_plane
    from learning.localiser import build_localiser
    from learning.model import build_model

    keras.utils.set_random_seed(0)
    model = build_model(width=8, crop_width=8, crops=True, pooled_input=True)
    localiser = build_localiser(width=4, refiner_width=4, refinements=1)
    unsure = localiser.get_layer("coarse").get_layer("presence")
    unsure.set_weights([unsure.get_weights()[0], np.full(3, -100.0, np.float32)])
    export_plane(model, tmp_path / "plane", localiser)
    served = tf.saved_model.load(str(tmp_path / "plane"))
    rng = np.random.default_rng(0)
    series = rng.integers(0, 255, (7, 256, 256)).astype(np.uint8)
    out = served.serve(slices=tf.constant(series), counts=tf.constant([7], tf.int32))
    np.testing.assert_array_equal(out["localised"].numpy(), [[0, 0, 0]])
    pooled = series.reshape(7, 64, 4, 64, 4).mean(axis=(2, 4)).astype(np.float32)
    counts = np.array([7], np.int32)
    for windows in (np.zeros((7, 3, 32, 32), np.float32), rng.normal(size=(7, 3, 32, 32)).astype(np.float32)):
        alone = model({"slices": pooled, "crops": windows, "gates": np.zeros((7, 3), np.float32), "counts": counts})
        np.testing.assert_allclose(out["logits"].numpy(), np.asarray(alone), atol=1e-5)
    voted = model({"slices": pooled, "crops": rng.normal(size=(7, 3, 32, 32)).astype(np.float32),
                   "gates": np.ones((7, 3), np.float32), "counts": counts})
    assert np.abs(np.asarray(voted) - out["logits"].numpy()).max() > 1e-3


def test_an_ensemble_plane_serves_and_explains_the_mean_of_its_members(tmp_path):
    """fit.py --ensemble: the plane's SavedModel holds its members and the shared localiser; its
    logits are the mean of the members' own on the same windows, and so are the slice scores."""
    import keras
    import tensorflow as tf

    from learning.crops import front
    from learning.export import export_plane
    from learning.localiser import build_localiser
    from learning.model import build_model

    keras.utils.set_random_seed(1)
    members = [build_model(width=8, crop_width=8, crops=True, pooled_input=True, seed=s) for s in (0, 1)]
    localiser = build_localiser(width=4, refiner_width=4, refinements=1)
    export_plane(members, tmp_path / "plane", localiser)
    served = tf.saved_model.load(str(tmp_path / "plane"))
    series = np.random.default_rng(2).integers(0, 255, (6, 256, 256)).astype(np.uint8)
    counts = np.array([4, 2], np.int32)
    seen = front(series, 64, True, localiser)
    x = {name: np.asarray(seen[name]) for name in ("slices", "crops", "gates")} | {"counts": counts}
    each = [np.asarray(m(x, training=False)) for m in members]
    assert np.abs(each[0] - each[1]).max() > 1e-3  # two different members: the mean is not either one
    out = served.serve(slices=tf.constant(series), counts=tf.constant(counts))
    np.testing.assert_allclose(out["logits"].numpy(), np.mean(each, axis=0), atol=1e-5)
    one = served.explain(slices=tf.constant(series[:4]), counts=tf.constant([4], tf.int32))
    assert one["slice_logits"].shape == (4, 3) and one["window_logits"].shape == (4, 3, 3)
