"""The plane combiner (learning/combine.py, applied by mrnet/combiner.py): never far below the best
plane on small tuning sets, LR where the data can tell, plain JSON, deterministic.

Logits are drawn as benchmarks/combiner.py's --synthetic draws them; every AUC that decides a test
is measured on a fresh set of 3000 exams drawn the same way, so it is the combiner's, not the
draw's."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from learning.combine import CANDIDATES, auc, fit_combiner, logistic
from mrnet import combiner as comb
from mrnet.contract import PLANES, TASKS

ROOT = Path(__file__).resolve().parents[1]
FRESH = 3000


def _benchmark():
    spec = importlib.util.spec_from_file_location("combiner_benchmark", ROOT / "benchmarks" / "combiner.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _benchmark()


def balanced(rng, n):
    return (rng.random((n, 3)) < 0.5).astype(int)


def noise_plane(weak):
    """Sagittal the signal, coronal pure noise with five times the spread, axial `weak` signal."""
    return {"sagittal": {t: (2.0, 1.0) for t in TASKS}, "coronal": {t: (0.0, 5.0) for t in TASKS},
            "axial": {t: (weak, 1.0) for t in TASKS}}


def draw(seed, n, design, labels=bench.draw_labels):
    rng = np.random.default_rng(seed)
    y_tune = labels(rng, n)
    x_tune = bench.draw_logits(rng, y_tune, design)
    y_fresh = labels(rng, FRESH)
    return x_tune, y_tune, bench.draw_logits(rng, y_fresh, design), y_fresh


def below_best_plane(combined, x, y, t):
    """Combined AUC minus the best single plane's for task t."""
    return auc(y[:, t], combined[:, t]) - max(auc(y[:, t], x[p][:, t]) for p in PLANES)


@pytest.mark.parametrize("weak, n_tune", [(0.0, 49), (1.0, 100)], ids=["two-noise-planes-49", "noise-and-weak-100"])
def test_a_noise_plane_does_not_pull_the_combination_below_the_best_plane(weak, n_tune):
    """A plane of pure noise (with the largest spread) and another that is the signal: in every
    one of 8 tuning draws and every task, the combination is at most 0.01 below the best plane. With
    a third plane of weak real signal the mean of the planes is tempting and 49 exams cannot always
    tell (README of the benchmark); 100 can. The old combiner (LR over the raw logits) loses up to
    0.13 on the first case."""
    worst_new, worst_old = 1.0, 1.0
    for seed in range(8):
        x, y, fresh_x, fresh_y = draw(seed, n_tune, noise_plane(weak), balanced)
        new = comb.apply(fit_combiner(x, y, "tune", seed=seed), fresh_x)
        old = comb.apply(bench.old_combiner(x, y, seed), fresh_x)
        for t, task in enumerate(TASKS):
            gap = below_best_plane(new, fresh_x, fresh_y, t)
            assert gap >= -0.01, (seed, task, gap)
            worst_new = min(worst_new, gap)
            worst_old = min(worst_old, below_best_plane(old, fresh_x, fresh_y, t))
    if weak == 0.0:
        assert worst_old < worst_new - 0.05, (worst_old, worst_new)


def test_on_the_adversarial_case_the_old_combiner_loses_abnormal_and_the_new_does_not():
    """The adversarial case (49 tuning exams, ACL logits with 20 times the abnormal ones' spread and
    correlated with abnormal): over 8 draws, the new combiner's abnormal AUC is on average no more
    than 0.01 below the best plane's; the old one's is well below (and, where its CV picked a
    small C, its abnormal score is an ACL detector: the ACL logits carry most of the weight)."""
    new_gaps, old_gaps, acl_share = [], [], []
    for seed in range(8):
        x, y, fresh_x, fresh_y = draw(seed, 49, bench.ADVERSARIAL)
        new = comb.apply(fit_combiner(x, y, "tune", seed=seed), fresh_x)
        old_combiner = bench.old_combiner(x, y, seed)
        old = comb.apply(old_combiner, fresh_x)
        new_gaps.append(below_best_plane(new, fresh_x, fresh_y, 0))
        old_gaps.append(below_best_plane(old, fresh_x, fresh_y, 0))
        coef = np.abs(old_combiner["tasks"]["abnormal"]["coef"])
        spread = comb.features(x).std(axis=0)  # a coefficient's weight in the score: times its logit's spread
        weight = coef * spread
        acl_share.append(weight[[comb.FEATURES.index(f"{p}:acl") for p in PLANES]].sum() / weight.sum())
    assert np.mean(new_gaps) >= -0.01, new_gaps
    assert np.mean(old_gaps) <= np.mean(new_gaps) - 0.02, (old_gaps, new_gaps)
    worst = int(np.argmin(old_gaps))
    assert old_gaps[worst] < -0.1 and acl_share[worst] > 0.5, (old_gaps, acl_share)
    assert min(new_gaps) > old_gaps[worst] + 0.05


def test_planes_of_equal_information_and_unequal_spread_are_averaged_standardised():
    """Three planes that know as much, one with logits ten times larger (a model's scale says
    nothing of its worth): on 49 exams the mean is kept in most draws (a single plane, first in the
    order, stays where a lucky draw makes it look as good), and it is the mean of standardised
    logits, far above any plane; a mean of the raw logits would be the loud plane alone."""
    design = {p: {t: (1.0, spread) for t in TASKS} for p, spread in zip(PLANES, (1.0, 1.0, 10.0))}
    means = 0
    for seed in range(4):
        x, y, fresh_x, fresh_y = draw(seed, 49, design, balanced)
        combiner = fit_combiner(x, y, "tune", seed=seed)
        combined = comb.apply(combiner, fresh_x)
        for t, task in enumerate(TASKS):
            gain = below_best_plane(combined, fresh_x, fresh_y, t)
            if combiner["tasks"][task]["choice"] == "mean":
                means += 1
                assert gain > 0.08, (seed, task)
            else:
                assert gain >= -0.03, (seed, task, combiner["tasks"][task]["why"])
    assert means >= 9, means


def complementary(rng, n):
    """Each task's positives of two kinds, one seen by sagittal, the other by coronal; axial noise."""
    y = (rng.random((n, 3)) < 0.4).astype(int)
    kind = rng.random((n, 3)) < 0.5
    x = {"sagittal": 2.5 * (y & kind) + rng.normal(size=(n, 3)),
         "coronal": 2.5 * (y & ~kind) + rng.normal(size=(n, 3)),
         "axial": rng.normal(size=(n, 3))}
    return x, y


def test_with_many_exams_and_complementary_planes_lr_is_chosen_and_beats_each_plane():
    rng = np.random.default_rng(0)
    x, y = complementary(rng, 400)
    fresh_x, fresh_y = complementary(rng, FRESH)
    combiner = fit_combiner(x, y, "tune", seed=0)
    combined = comb.apply(combiner, fresh_x)
    for t, task in enumerate(TASKS):
        entry = combiner["tasks"][task]
        assert entry["choice"] in ("lr3", "lr9"), entry["why"]
        assert below_best_plane(combined, fresh_x, fresh_y, t) > 0.1, task


def test_a_task_with_one_class_or_one_minority_exam_falls_back_to_the_plain_mean():
    rng = np.random.default_rng(1)
    y = balanced(rng, 40)
    y[:, 0] = 1  # abnormal: one class
    y[:, 1] = 0
    y[7, 1] = 1  # acl: one exam in the minority, too few for 2 folds
    x = bench.draw_logits(rng, y, noise_plane(1.0))
    combiner = fit_combiner(x, y, "tune", seed=0)
    for task, words in (("abnormal", "single-class"), ("acl", "too few for 2-fold CV")):
        entry = combiner["tasks"][task]
        assert entry["choice"] == "fallback" and words in entry["note"], entry
        assert entry["coef"] == [1 / 3 if f.endswith(":" + task) else 0.0 for f in comb.FEATURES]
        assert entry["intercept"] == 0.0
    assert combiner["tasks"]["meniscus"]["choice"] in [c for c in CANDIDATES if c != "single"] + [
        f"single:{p}" for p in PLANES]
    p = comb.apply(combiner, x)
    np.testing.assert_allclose(p[:, 0], 1 / (1 + np.exp(-np.mean([x[q][:, 0] for q in PLANES], axis=0))))
    assert comb.validate(combiner) is None


def _plain_json(value):
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(map(_plain_json, value))
    return value is None or type(value) in (str, int, float, bool)


def test_the_json_round_trips_through_the_bundle_and_apply_gives_the_same_probabilities(tmp_path):
    """No pickle, no numpy scalars: json.dumps / loads gives the same dict; the bundle writer and
    verify (which runs combiner.validate) give it back; apply gives the same numbers from each. The
    stored coefficients are the chosen score (on standardised logits) through the calibration."""
    from mrnet.bundle import verify, write_bundle

    x, y, fresh_x, _ = draw(2, 49, bench.ADVERSARIAL)
    combiner = fit_combiner(x, y, "train (tuning part)", seed=2)
    assert _plain_json(combiner)
    again = json.loads(json.dumps(combiner))
    assert again == combiner

    def export_plane(plane, folder):  # a stand-in SavedModel: this test is about the combiner
        folder.mkdir()
        (folder / "saved_model.pb").write_bytes(plane.encode())

    write_bundle(tmp_path / "bundle", export_plane, combiner, {"output_spec": {"tasks": list(TASKS)}})
    _, loaded = verify(tmp_path / "bundle")
    assert loaded == combiner and b"pickle" not in (tmp_path / "bundle" / "combiner.json").read_bytes()
    before = comb.apply(combiner, fresh_x)
    np.testing.assert_array_equal(comb.apply(again, fresh_x), before)
    np.testing.assert_array_equal(comb.apply(loaded, fresh_x), before)
    assert np.all((before > 0) & (before < 1))

    mean, sd = (np.asarray(combiner["standardisation"][k]) for k in ("mean", "sd"))
    z = (comb.features(x) - mean) / sd
    for t, task in enumerate(TASKS):
        entry = combiner["tasks"][task]
        score = z @ np.asarray(entry["score"]["coef"]) + entry["score"]["intercept"]
        calibrated = 1 / (1 + np.exp(-(entry["calibration"]["slope"] * score + entry["calibration"]["intercept"])))
        np.testing.assert_allclose(comb.apply(combiner, x)[:, t], calibrated, rtol=1e-9, atol=1e-12)
        assert entry["calibration"]["slope"] > 0
        assert auc(y[:, t], comb.apply(combiner, x)[:, t]) == pytest.approx(auc(y[:, t], score), abs=1e-12)
        assert set(entry["candidates"]) == set(CANDIDATES) and entry["why"]
        for name in CANDIDATES:
            scored = entry["candidates"][name]
            assert ("skipped" in scored) if name in ("lr3", "lr9") else ("skipped" not in scored), (name, scored)
            assert "skipped" in scored or (0 <= scored["auc"] <= 1 and scored["se"] >= 0)


@pytest.mark.parametrize("damage, reason", [
    (lambda c: c["tasks"]["acl"]["coef"].__setitem__(2, float("nan")), "coefficients for acl"),
    (lambda c: c["tasks"]["meniscus"]["coef"].pop(), "coefficients for meniscus"),
    (lambda c: c["tasks"]["abnormal"].pop("intercept"), "malformed"),
    (lambda c: c["tasks"]["abnormal"].__setitem__("intercept", float("inf")), "intercept for abnormal"),
    (lambda c: c["tasks"].pop("acl"), "malformed"),
], ids=["nan", "short", "no-intercept", "inf-intercept", "no-task"])
def test_validate_rejects_what_apply_could_not_use(damage, reason):
    x, y, _, _ = draw(0, 49, bench.ADVERSARIAL)
    combiner = fit_combiner(x, y, "tune", seed=0)
    assert comb.validate(combiner) is None
    damage(combiner)
    assert reason in comb.validate(combiner)


def test_the_choice_is_the_same_for_the_same_logits_and_seed():
    x, y, _, _ = draw(4, 49, bench.ADVERSARIAL)
    first = fit_combiner(x, y, "tune", seed=3)
    assert fit_combiner(x, y, "tune", seed=3) == first
    other = fit_combiner(x, y, "tune", seed=4)  # the seed is used: another shuffle of the folds
    assert other["cv"]["seed"] == 4
    assert [other["tasks"][t]["candidates"]["mean"]["auc"] for t in TASKS] != \
        [first["tasks"][t]["candidates"]["mean"]["auc"] for t in TASKS]


@pytest.mark.parametrize("n_tune", [49, 226])
def test_logistic_regression_is_a_candidate_only_with_ten_minority_exams_per_coefficient(n_tune):
    """MRNet's label frequencies: on 49 tuning exams (the phantom's) no task has 30 minority-class
    exams, so no LR is tried; on 226 (the real data's) every task has 30, so LR over the task's own
    three planes is tried, and LR over nine only where 90 are. A left-out candidate says why, and
    the choice is among the scored ones."""
    x, y, _, _ = draw(5, n_tune, bench.ADVERSARIAL)
    combiner = fit_combiner(x, y, "tune", seed=0)
    for t, task in enumerate(TASKS):
        minority = int(min(np.bincount(y[:, t], minlength=2)))
        expected = ("single", "mean") + (("lr3",) if minority >= 30 else ()) + (("lr9",) if minority >= 90 else ())
        assert len(expected) == (2 if n_tune == 49 else 3 + (minority >= 90)), (task, minority)
        entry = combiner["tasks"][task]
        assert tuple(n for n in CANDIDATES if "auc" in entry["candidates"][n]) == expected, (task, minority)
        for name in set(CANDIDATES) - set(expected):
            assert f"{minority} exams in the minority class" in entry["candidates"][name]["skipped"]
            assert "left out" in entry["why"]
        assert entry["choice"].split(":")[0] in expected


def test_the_newton_fit_and_the_auc_are_scikit_learns():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] + rng.normal(size=60) > 0.8).astype(int)
    for c in (0.01, 1.0, 100.0):
        w, b = logistic(x, y, c)
        ref = LogisticRegression(C=c, tol=1e-12, max_iter=10000).fit(x, y)
        np.testing.assert_allclose(w, ref.coef_[0], atol=1e-5)
        assert b == pytest.approx(ref.intercept_[0], abs=1e-5)
    score = np.round(x[:, 1], 1)  # with ties
    assert auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)


def test_fits_table_names_each_tasks_combiner(capsys):
    from learning.report import auc_table, print_table

    x, y, _, _ = draw(1, 49, bench.ADVERSARIAL)
    combiner = fit_combiner(x, y, "tune", seed=1)
    combined = comb.apply(combiner, x)
    table = auc_table({"valid": x, "tune": x}, {"valid": combined, "tune": combined}, {"valid": y, "tune": y})
    print_table(table, combiner)
    screen = capsys.readouterr().out
    line = next(line for line in screen.splitlines() if line.startswith("combined: "))
    texts = {task: combiner["tasks"][task]["choice_text"] for task in TASKS}
    assert line == "combined: " + ", ".join(f"{task} {texts[task]}" for task in TASKS)
    assert all(text in ("mean of 3 planes", "LR over 3 planes", "LR over 9") or text.endswith(" plane")
               for text in texts.values())
    assert screen.index("ROC AUC on valid") < screen.index(line) < screen.index("ROC AUC on tune")


def fake_run(tmp_path, members=1):
    """A run folder as fit.py --ensemble N leaves it: each unit's logits.npz ("sagittal", "sagittal-1",
    ...), report.json's split, over a data folder of labels: (run, splits, {unit: {split: logits}})."""
    from conftest import write_layout

    from learning.pipeline import split
    from mrnet.layout import read_labels

    rng = np.random.default_rng(7)
    train = {f"{i:04d}": tuple(int(v) for v in row) for i, row in enumerate(bench.draw_labels(rng, 60))}
    valid = {f"{i:04d}": tuple(int(v) for v in row) for i, row in enumerate(bench.draw_labels(rng, 30), start=60)}
    data = write_layout(tmp_path / "data", {"train": train, "valid": valid}, n_slices=1)
    splits, _ = split(read_labels(data), 0.5, 11)
    run = tmp_path / "run"
    saved = {}
    for m in range(members):
        logits = {name: bench.draw_logits(rng, frame[list(TASKS)].values) for name, frame in splits.items()}
        for plane in PLANES:
            unit = plane if m == 0 else f"{plane}-{m}"
            (run / unit).mkdir(parents=True)
            saved[unit] = {name: logits[name][plane] for name in splits}
            np.savez(run / unit / "logits.npz", **saved[unit])
    (run / "report.json").write_text(json.dumps({"split": {"data_dir": str(data), "seed": 11, "tune_fraction": 0.5},
                                                 "seconds": 100.0}))
    return run, splits, saved


def test_the_benchmark_reads_a_fit_run_folder(tmp_path, capsys):
    """benchmarks/combiner.py on a run folder as fit.py leaves it: each plane's logits.npz and the
    split that report.json records; the labels come from the data folder, split as fit.py split it."""
    run, splits, saved = fake_run(tmp_path)
    logits = {name: {plane: saved[plane][name] for plane in PLANES} for name in splits}
    results = bench.main([str(run)])
    screen = capsys.readouterr().out
    assert f"{run}: {len(splits['tune'])} tuning, 30 validation exams" in screen
    y = splits["valid"][list(TASKS)].values
    for t, task in enumerate(TASKS):
        assert results[0][task]["sagittal"] == pytest.approx(auc(y[:, t], logits["valid"]["sagittal"][:, t]))
    with pytest.raises(SystemExit, match="do not match"):  # another seed: another split, other lengths
        bench.main([str(run), "--seed", "12"])


def test_the_ensemble_benchmark_scores_member_0_against_the_members_mean(tmp_path, capsys):
    """benchmarks/ensemble.py on a run of three members: one model is member 0's logits, the
    ensemble the mean of the three units' (as the bundle averages them), each scored on valid."""
    spec = importlib.util.spec_from_file_location("ensemble_benchmark", ROOT / "benchmarks" / "ensemble.py")
    ensemble = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ensemble)
    run, splits, saved = fake_run(tmp_path, members=3)
    one, mean, n, seconds = ensemble.compare(run)
    assert (n, seconds) == (3, 100.0)
    y = splits["valid"][list(TASKS)].values
    for t, task in enumerate(TASKS):
        for plane in PLANES:
            averaged = np.mean([saved[u]["valid"][:, t] for u in (plane, f"{plane}-1", f"{plane}-2")], axis=0)
            assert one[task][plane] == pytest.approx(auc(y[:, t], saved[plane]["valid"][:, t]))
            assert mean[task][plane] == pytest.approx(auc(y[:, t], averaged))
    assert any(one[task][p] != mean[task][p] for task in TASKS for p in PLANES)  # the mean is not member 0
    ensemble.main([str(run)])
    assert "one model (member 0) against the mean of 3; 100 s" in capsys.readouterr().out
    for unit in ("sagittal-1", "sagittal-2"):
        shutil.rmtree(run / unit)
    with pytest.raises(SystemExit, match="one model per plane"):
        ensemble.compare(run)
