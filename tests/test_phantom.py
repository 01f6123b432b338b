"""The phantom: exact MRNet format, deterministic, real-looking intensities, findings where they belong."""

import filecmp
import json
import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest

from mrnet.layout import read_labels
from mrnet.validate import validate_dataset
from phantom.exam import make_exam
from phantom.findings import RUNGS
from phantom.writer import default_phantom, generator_sha256, write_phantom

# every style, the default rung and the faintest one (the ladder's ends)
VARIANTS = [("v3", "anatomical"), ("faint", "anatomical"), ("v3", "geometric"), ("faint", "geometric")]


def _variant(rung, style):
    scale, contrast = RUNGS[rung]
    return dict(lesion_scale=scale, lesion_contrast=contrast, style=style)

# CONTRACT.md, measured on 32 real exams: mean and sd of series means, share of pixels < 10 (%)
REAL = {"sagittal": (58.4, 4.7, 5), "coronal": (58.7, 6.6, 31), "axial": (63.1, 7.3, 13)}


def test_layout_is_valid_mrnet(tiny_phantom):
    validate_dataset(tiny_phantom)
    labels = read_labels(tiny_phantom)
    assert len(labels.loc["train"]) == 12 and len(labels.loc["valid"]) == 6
    assert (tiny_phantom / "train-acl.csv").read_text().splitlines()[0] == "0000," + str(labels.iloc[0]["acl"])
    lines = (tiny_phantom / "valid-paths.csv").read_text().splitlines()
    assert lines[:3] == [f"MRNet-v1.0/valid/{p}/0012.npy" for p in ("sagittal", "coronal", "axial")]
    series = np.load(tiny_phantom / "valid" / "coronal" / "0012.npy", allow_pickle=False)
    assert series.dtype == np.uint8 and series.shape[1:] == (256, 256) and 17 <= series.shape[0] <= 61


def test_same_seed_gives_identical_bytes(tiny_phantom, tmp_path):
    again = write_phantom(tmp_path / "MRNet-v1.0", n_train=12, n_valid=6, seed=3, render_size=64, workers=2,
                          progress=False)
    cmp = filecmp.dircmp(tiny_phantom, again)
    names = [p.relative_to(tiny_phantom) for p in tiny_phantom.rglob("*") if p.is_file()]
    match, mismatch, errors = filecmp.cmpfiles(tiny_phantom, again, names, shallow=False)
    assert not mismatch and not errors and len(match) == len(names) > 50
    assert not cmp.left_only and not cmp.right_only


def test_a_sagittal_only_phantom_holds_the_whole_phantoms_sagittal_series(tiny_phantom, tmp_path):
    """write_phantom(planes=("sagittal",)), for checks that read sagittal alone: the same sagittal
    files, labels and anatomy truth as the whole layout's, and no other plane; a set of planes that
    is not a leading part of (sagittal, coronal, axial) is refused, since each stack draws on from
    the ones before it."""
    part = write_phantom(tmp_path / "MRNet-v1.0", n_train=12, n_valid=6, seed=3, render_size=64, workers=1,
                         progress=False, planes=("sagittal",))
    names = [p.relative_to(tiny_phantom) for p in tiny_phantom.rglob("*.npy") if "sagittal" in p.parts]
    names += [Path(f"{split}-{task}.csv") for split in ("train", "valid") for task in ("abnormal", "acl", "meniscus")]
    match, mismatch, errors = filecmp.cmpfiles(tiny_phantom, part, names, shallow=False)
    assert not mismatch and not errors and len(match) == len(names) > 18
    assert sorted(p.name for p in (part / "train").iterdir()) == ["sagittal"]
    whole, sagittal = (np.load(d / "phantom-anatomy.npz", allow_pickle=False) for d in (tiny_phantom, part))
    assert sorted(sagittal.files) == sorted(k for k in whole.files if k.startswith("sagittal-"))
    assert all(np.array_equal(whole[k], sagittal[k]) for k in sagittal.files)
    with pytest.raises(ValueError, match="leading part"):
        make_exam(3, 0, render_size=64, planes=("coronal",))


def test_a_cached_phantom_made_by_other_generator_code_is_made_again(tmp_path):
    """The cache key names the version and parameters; the code's hash catches the rest."""
    small = dict(n_train=2, n_valid=1, render_size=64)
    path = default_phantom(progress=False, cache=tmp_path, **small)
    truth = json.loads((path / "phantom-truth.json").read_text())
    assert truth["generator_sha256"] == generator_sha256() and len(truth["generator_sha256"]) == 64
    made = (path / "train-acl.csv").stat().st_mtime_ns
    assert default_phantom(progress=False, cache=tmp_path, **small) == path  # same code: reused
    assert (path / "train-acl.csv").stat().st_mtime_ns == made
    (path / "phantom-truth.json").write_text(json.dumps({**truth, "generator_sha256": "0" * 64}))
    (path / "left by the old code").write_text("")
    assert default_phantom(progress=False, cache=tmp_path, **small) == path
    assert not (path / "left by the old code").exists()
    assert json.loads((path / "phantom-truth.json").read_text())["generator_sha256"] == generator_sha256()
    validate_dataset(path)


@pytest.mark.parametrize("style", ["anatomical", "geometric"])
def test_intensities_match_real_series(style):
    stats = {p: [] for p in REAL}
    for i in range(12):
        for plane, s in make_exam(11, i, style=style)["series"].items():
            stats[plane].append((s.mean(), (s < 10).mean() * 100, (s == 255).mean() * 100))
    for plane, (mean, sd, dark) in REAL.items():
        v = np.array(stats[plane])
        assert abs(v[:, 0].mean() - mean) < 2 * sd, (plane, v[:, 0].mean())
        assert abs(v[:, 1].mean() - dark) < 10, (plane, v[:, 1].mean())
        assert 0.4 < v[:, 2].mean() < 1.6, (plane, v[:, 2].mean())  # about 1 % saturate at 255


@pytest.mark.parametrize("rung,style", VARIANTS)
def test_findings_sit_in_their_anatomy(rung, style):
    acl_seen = men_seen = 0
    for i in range(40 if (rung, style) == VARIANTS[0] else 12):  # seed 5: 1 ACL and 3 meniscal tears in the first 12
        exam = make_exam(5, i, render_size=64, with_masks=True, **_variant(rung, style))
        abnormal, acl, men = exam["labels"]
        assert abnormal >= max(acl, men)  # every tear is abnormal
        if not abnormal:
            assert exam["findings"] == []
        for plane, masks in exam["masks"].items():
            for name, mask in masks.items():
                if name == "ACL tear" and mask.any():
                    acl_seen += 1
                    # the tear interrupts the ligament: it overlaps where the ACL was drawn
                    assert (mask & masks["ACL"]).sum() > 0.2 * mask.sum()
                if name.startswith("meniscal tear") and mask.any():
                    men_seen += 1
                    side = name.split()[2]
                    inside = (mask & masks[f"{side} meniscus"]).sum() / mask.sum()
                    assert inside > 0.5, (i, plane, name, inside)
                    # only on slices where that meniscus is
                    assert not (mask.any(axis=(1, 2)) & ~masks[f"{side} meniscus"].any(axis=(1, 2))).any()
    assert acl_seen > 0 and men_seen > 0


def _stat_features(i, variant):
    exam = make_exam(21, i, render_size=64, **_variant(*variant))  # intensity statistics: no need of detail
    row = []
    for s in exam["series"].values():
        row += [s.mean(), s.std(), *np.percentile(s, [5, 25, 50, 75, 95, 99])]
    return row, exam["labels"]


@pytest.mark.parametrize("style", ["anatomical", "geometric"])
def test_rungs_keep_exams_and_shrink_only_the_lesions(style):
    """The ladder changes lesions, nothing else, in either style: same labels, findings and slice
    counts; smaller tears; a normal knee's very bytes. So a fainter rung can only weaken an intensity
    shortcut, and test_no_intensity_shortcut checks the default rung alone."""
    normal = 0
    for i in range(8):
        base = make_exam(7, i, with_masks=True, **_variant("v3", style))
        faint = make_exam(7, i, with_masks=True, **_variant("faint", style))
        assert base["labels"] == faint["labels"] and base["findings"] == faint["findings"]
        planes = list(base["series"])
        assert all(base["series"][p].shape == faint["series"][p].shape for p in planes)
        for name in (n for n in base["masks"]["sagittal"] if "tear" in n):
            voxels = [sum(int(exam["masks"][p][name].sum()) for p in planes) for exam in (base, faint)]
            assert 0 < voxels[1] < 0.8 * voxels[0], (i, name, voxels)  # summed over planes: 1 mm tears are coarse
        if base["labels"] == (0, 0, 0):  # no lesion at all: the very same bytes
            normal += 1
            assert all(np.array_equal(base["series"][p], faint["series"][p]) for p in base["series"])
    assert normal, "the seed's first exams hold no normal knee: the same-bytes branch checked nothing"


@pytest.mark.slow
@pytest.mark.parametrize("variant", [v for v in VARIANTS if v[0] != "faint"])
def test_no_intensity_shortcut(variant):
    """The default rung in both styles: a fainter rung only shrinks lesions (test_rungs_keep_exams_and_
    shrink_only_the_lesions, both styles), so it can only weaken a shortcut."""
    # Simple per-plane intensity statistics must not predict the labels (mean AUC <= 0.70, 150-200 exams).
    from functools import partial

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with mp.get_context("fork").Pool(2) as pool:
        rows = pool.map(partial(_stat_features, variant=variant), range(200 if variant == VARIANTS[0] else 120))
    x = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    aucs = []
    for t in range(3):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        p = cross_val_predict(clf, x, y[:, t], cv=5, method="predict_proba")[:, 1]
        aucs.append(roc_auc_score(y[:, t], p))
    print(variant, np.round(aucs, 3), round(float(np.mean(aucs)), 3))
    assert np.mean(aucs) <= 0.70, aucs


def test_randomised_corpus_keeps_the_exam_and_changes_its_look():
    """The pretraining corpus (randomise=True): same anatomy, labels, findings and slice counts as
    the plain exam of that (seed, index), a lesion rung drawn per exam, and a rendering that differs
    from the style's own (contrast, coil, noise) from stack to stack."""
    means = {plane: [] for plane in ("sagittal", "coronal", "axial")}
    for index in range(6):
        plain = make_exam(11, index, render_size=64)
        rand = make_exam(11, index, render_size=64, randomise=True)
        assert rand["labels"] == plain["labels"] and rand["findings"] == plain["findings"]
        assert {p: s.shape for p, s in rand["series"].items()} == {p: s.shape for p, s in plain["series"].items()}
        assert 0.45 <= rand["lesion_scale"] <= 1.1 and 0.55 <= rand["lesion_contrast"] <= 1.0
        for plane, series in rand["series"].items():
            assert series.dtype == np.uint8 and not np.array_equal(series, plain["series"][plane])
            means[plane].append(float(series.mean()))
        again = make_exam(11, index, render_size=64, randomise=True)
        assert all(np.array_equal(again["series"][p], rand["series"][p]) for p in rand["series"])
    # contrast is drawn per stack: series means spread far wider than the plain style's (sd ~5-7)
    assert all(np.std(m) > 8 for m in means.values()), means


@pytest.mark.parametrize("style", ["anatomical", "geometric"])
def test_geometry_matches_a_real_knee(style):
    """The sagittal knee measured as ../shared/REAL_KNEE.md measured 31 real MRNet series: every
    comparable median (notch, joint-line rows, horn span, share of slices with a horn, condyle size,
    the stack's order ...) inside the real 10-90 % range, and the central notch slices show the ACL and
    no horn, as a real knee's do."""
    from phantom.geometry import REAL, exam_figures, outside_real, summarise

    exams = [make_exam(0, i, render_size=64, with_masks=True, with_anatomy=True, style=style) for i in range(240, 264)]
    summary = summarise([exam_figures(e) for e in exams])
    assert set(REAL) - set(summary) == set(), set(REAL) - set(summary)
    assert outside_real(summary) == [], outside_real(summary)
    for exam in (e for e in exams if not e["bad"].get("sagittal")):
        marks = exam["anatomy"]["sagittal"]
        horn = (marks[:, 1:, 0] > 0).any(axis=1)
        lo, hi = np.flatnonzero(horn)[[0, -1]]
        notch = np.flatnonzero(~horn[lo:hi + 1]) + lo
        assert len(notch) >= 3 and (marks[notch, 0, 0] > 0).any(), (exam["findings"], horn.astype(int))


def test_corpus_stack_that_misses_the_knee_shows_no_structure():
    """The randomised corpus's stacks whose field of view misses the knee hold no place in the truth (the
    localiser learns to report nothing on a real stack of noise), and are recorded as bad stacks."""
    seen = 0
    for index in range(120):
        exam = make_exam(7919, index, render_size=64, randomise=True, with_anatomy=True)
        for plane, kind in exam["bad"].items():
            if kind == "out of field of view":
                seen += 1
                assert not (exam["anatomy"][plane][..., 0] > 0).any(), (index, plane)
        if seen >= 2:
            break
    assert seen >= 2, "no stack missed the knee in 120 corpus exams: the check checked nothing"
