"""Explanations: the frozen explain endpoint agrees with the model, predict --explain draws one PNG per
exam without changing the predictions, and the hit-rate check counts what it says it counts."""

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PLANES = ("sagittal", "coronal", "axial")
EXAMS, EPOCHS = (160, 100), 10  # the trained check's phantom (train, valid) and schedule
LESION_SCALE = 1.4  # its tears' size against the default phantom's (findings.RUNGS: 1.0)


def test_each_slice_score_is_that_slice_as_a_one_slice_exam(tiny_phantom, tiny_bundle):
    import tensorflow as tf

    from mrnet.series import open_series

    model = tf.saved_model.load(str(tiny_bundle / "sagittal"))
    slices = np.asarray(open_series(tiny_phantom / "valid" / "sagittal" / "0012.npy"))[:6]
    out = model.explain(slices=tf.constant(slices), counts=tf.constant([len(slices)], tf.int32))
    assert out["cam"].shape[0] == len(slices) and out["cam"].shape[-1] == 3
    for i in (0, 3, 5):
        alone = model.serve(slices=tf.constant(slices[i:i + 1]), counts=tf.constant([1], tf.int32))["logits"]
        np.testing.assert_allclose(out["slice_logits"].numpy()[i], alone.numpy()[0], atol=1e-4)


def test_predict_explain_writes_one_png_per_exam_and_same_predictions(tiny_phantom, tiny_bundle, tmp_path):
    cases = ("0012", "0013")
    (tmp_path / "in.csv").write_text("".join(f"{tiny_phantom}/valid/{p}/{c}.npy\n" for c in cases for p in PLANES))
    base = [sys.executable, str(ROOT / "submission" / "predict.py"), str(tmp_path / "in.csv")]
    plain = subprocess.run(base + [str(tmp_path / "a.csv"), "--bundle", str(tiny_bundle), "--quiet"],
                           capture_output=True, text=True, timeout=300)
    explained = subprocess.run(base + [str(tmp_path / "b.csv"), "--bundle", str(tiny_bundle), "--quiet",
                                       "--explain", str(tmp_path / "why"), "--explain-task", "meniscus"],
                               capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0 and explained.returncode == 0, explained.stderr
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    pngs = sorted(p.name for p in (tmp_path / "why").iterdir())
    assert pngs == ["0012.png", "0013.png"]
    assert (tmp_path / "why" / "0012.png").read_bytes()[:4] == b"\x89PNG"


def test_chance_rate_matches_enumeration():
    from scoring.explanations import chance

    n, lesion = 7, {2, 3}
    for k in (1, 2, 3):
        draws = list(itertools.combinations(range(n), k))
        expected = sum(bool(lesion & set(d)) for d in draws) / len(draws)
        assert chance(n, lesion, k) == pytest.approx(expected)


def test_hit_rates_count_the_decisive_slices_and_windows_that_hold_the_tear(tiny_phantom, tiny_bundle):
    """hit_rates against the same count done by hand from the explain endpoint and the phantom's
    truth: the top-k slices by ACL score and chance k of n slices; and, for the meniscus (whose
    windows the tiny localiser does use; its ACL presence stays under the threshold), the decisive
    window (the largest meniscus share among the windows used) holding a tear's centre on its slice,
    beside chance: the share of the exam's used windows that hold one."""
    from math import comb

    from mrnet.explain import plane_explanation
    from mrnet.infer import load_bundle
    from mrnet.layout import read_labels
    from phantom.writer import read_truth
    from scoring.explanations import hit_rates

    models = load_bundle(tiny_bundle)[2]
    truth = read_truth(tiny_phantom)["exams"]
    train = read_labels(tiny_phantom).loc["train"]

    def explained(case):
        return plane_explanation(models["sagittal"], np.load(tiny_phantom / "train" / "sagittal" / f"{case}.npy",
                                                             allow_pickle=False))

    rates, n = hit_rates(models, tiny_phantom, ks=(1, 3), split="train")
    top, base, base3 = {1: 0, 3: 0}, 0.0, 0.0
    for case in train.index[train["acl"] == 1]:
        lesion = set(truth[case]["lesion_slices"]["sagittal"]["ACL tear"])
        seen = explained(case)
        slices = len(seen["slice_logits"])
        order = np.argsort(-seen["slice_logits"][:, 1], kind="stable")
        top[1] += int(order[0]) in lesion
        top[3] += bool({int(i) for i in order[:3]} & lesion)
        base += len(lesion) / slices
        base3 += 1 - comb(slices - len(lesion), 3) / comb(slices, 3)  # 3 random slices miss them all
    assert n == int(train["acl"].sum()) > 0  # every ACL tear of the phantom lies on some sagittal slice
    assert rates[1] == pytest.approx((top[1] / n, base / n)) and rates[3][0] == pytest.approx(top[3] / n)
    assert rates[3][1] == pytest.approx(base3 / n)

    rates, n = hit_rates(models, tiny_phantom, ks=(1,), task="meniscus", finding="meniscal tear", split="train")
    hits, chance, exams = 0, 0.0, 0
    for case in train.index[train["meniscus"] == 1]:
        centres = {}
        for name, per_slice in truth[case]["tear_centres"]["sagittal"].items():
            if name.startswith("meniscal tear"):
                for i, centre in per_slice.items():
                    centres.setdefault(int(i), []).append(centre)
        seen = explained(case)
        used = [(i, k) for i in range(len(seen["gates"])) for k in (1, 2) if seen["gates"][i, k] > 0]
        if not used or not centres:
            continue
        holds = {}
        for i, k in used:
            top_, left, bottom, right = seen["boxes"][i, k]
            holds[i, k] = any(top_ <= r < bottom and left <= c < right for r, c in centres.get(i, ()))
        best = max(used, key=lambda ik: seen["window_logits"][ik[0], ik[1], 2])
        hits += holds[best]
        chance += sum(holds.values()) / len(holds)
        exams += 1
    assert exams > 0 and rates["window"] == pytest.approx((hits / exams, chance / exams, exams))


@pytest.mark.slow
def test_a_trained_sagittal_model_points_at_the_acl_tear(tmp_path):
    """Real training as fit.py trains on a CPU (its recipe's whole-slice model, loss, optimiser,
    schedule and metric through learning.training.compile_plane; block-averaged slices, fixed-shape
    batches under XLA, 8 steps a call) on a small phantom, then the frozen explain endpoint: the
    decisive slices must hold the tear far more often than chance."""
    import keras
    import tensorflow as tf

    from learning.distributed import Devices
    from learning.export import export_plane
    from learning.model import build_model
    from learning.pipeline import count_batches, make_dataset
    from learning.recipe import fit_config, model_config
    from learning.training import compile_plane, positive_weights
    from mrnet.layout import read_labels, series_path
    from phantom.writer import write_phantom
    from scoring.explanations import hit_rates

    # Sagittal alone: the other two planes were two thirds of the phantom's time, and nothing reads them.
    # Tears 1.4x the default size: at the default, keras seeds 1 and 2 learnt no ACL in these 10 epochs
    # (valid AUC 0.56, 0.48; the decisive slice on the tear in 0 and 1 of 8 exams), so the check passed
    # on its seed's luck; at 1.4x seeds 0, 1, 2 hit 6, 4 and 3 of 8 exams against a chance of 0.14.
    data = write_phantom(tmp_path / "MRNet-v1.0", n_train=EXAMS[0], n_valid=EXAMS[1], seed=11, render_size=64,
                         workers=2, progress=False, planes=("sagittal",), lesion_scale=LESION_SCALE)
    train = read_labels(data).loc["train"]
    paths = [series_path(data, "train", "sagittal", c) for c in train.index]
    y = train[["abnormal", "acl", "meniscus"]].values
    keras.utils.set_random_seed(0)
    config = fit_config(model={"crops": False})
    model = build_model(**model_config(config.model), pooled_input=True)
    steps = count_batches(paths, config.compute.batch_slices)
    compile_plane(model, config.training.lr, config.compute, steps, EPOCHS, positive_weights(y, config.training.abnormal_weight), Devices(None, xla=True, replicas=1, workers=1, index=0))
    model.fit(make_dataset(paths, y, config.compute.batch_slices, shuffle=True, static=True,
                           input_size=config.model.input_size),
              epochs=EPOCHS, verbose=0)
    export_plane(model, tmp_path / "sagittal")

    rates, n = hit_rates({"sagittal": tf.saved_model.load(str(tmp_path / "sagittal"))}, data, ks=(1,))
    hit, chance = rates[1]
    assert n >= 5
    assert hit >= 2 * chance, (hit, chance, n)
