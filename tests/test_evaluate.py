"""train/evaluate.py on real files: the metric, its intervals, a single-class task, bad predictions."""

import json

import numpy as np
import pytest
from conftest import write_layout
from sklearn.metrics import roc_auc_score

import evaluate


def _case(i):
    return f"{1130 + i:04d}"


def _setup(tmp_path, labels, scores, plane_order=("axial", "sagittal", "coronal")):
    root = write_layout(tmp_path / "MRNet-v1.0", {"valid": {_case(i): tuple(v) for i, v in enumerate(labels)}})
    lines = [f"{root}/valid/{plane}/{_case(i)}.npy\n" for i in range(len(labels)) for plane in plane_order]
    (tmp_path / "input.csv").write_text("".join(lines))
    (tmp_path / "pred.csv").write_text("".join(f"{a:.6f},{b:.6f},{c:.6f}\n" for a, b, c in scores))
    return root


def test_metric_intervals_operating_points_and_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (40, 3))
    labels[:2] = [[0, 0, 0], [1, 1, 1]]
    scores = np.clip(labels * 0.35 + rng.uniform(0, 0.65, labels.shape), 0, 1)
    root = _setup(tmp_path, labels, scores)
    m = evaluate.main([str(tmp_path / "input.csv"), str(tmp_path / "pred.csv"), "--labels-dir", str(root),
                       "--out", str(tmp_path / "ev"), "--bootstrap", "300"])
    scores = np.loadtxt(tmp_path / "pred.csv", delimiter=",")
    expected = [roc_auc_score(labels[:, t], scores[:, t]) for t in range(3)]
    for t, task in enumerate(("abnormal", "acl", "meniscus")):
        entry = m["tasks"][task]
        assert entry["auc"] == pytest.approx(expected[t])
        lo, hi = entry["auc_ci95"]
        assert lo <= entry["auc"] <= hi and hi - lo > 0.01
        pos, neg = labels[:, t] == 1, labels[:, t] == 0
        assert entry["at_0.5"]["sensitivity"] == pytest.approx((scores[pos, t] >= 0.5).mean())
        assert entry["at_0.5"]["specificity"] == pytest.approx((scores[neg, t] < 0.5).mean())
        youden = entry["at_youden"]
        assert youden["sensitivity"] + youden["specificity"] >= (
            entry["at_0.5"]["sensitivity"] + entry["at_0.5"]["specificity"] - 1e-9)
    assert m["mean_auc"] == pytest.approx(np.mean(expected))
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert saved["mean_auc"] == pytest.approx(m["mean_auc"])
    for png in ("roc.png", "calibration.png"):
        assert (tmp_path / "ev" / png).read_bytes()[:4] == b"\x89PNG"
    assert "mean" in capsys.readouterr().out


def test_single_class_task_is_undefined_not_a_crash(tmp_path, capsys):
    rng = np.random.default_rng(1)
    labels = np.stack([rng.integers(0, 2, 20), np.zeros(20, int), rng.integers(0, 2, 20)], axis=1)
    labels[:2, 0], labels[:2, 2] = [0, 1], [0, 1]
    root = _setup(tmp_path, labels, rng.uniform(size=(20, 3)))
    m = evaluate.main([str(tmp_path / "input.csv"), str(tmp_path / "pred.csv"), "--labels-dir", str(root),
                       "--out", str(tmp_path / "ev"), "--bootstrap", "50"])
    assert m["tasks"]["acl"]["auc"] is None and "single class" in m["tasks"]["acl"]["note"]
    assert m["mean_auc"] is None and m["tasks"]["abnormal"]["auc"] is not None
    assert "undefined" in capsys.readouterr().out


def test_prediction_rows_must_match_exams(tmp_path):
    labels = np.array([[0, 0, 0], [1, 1, 1], [1, 0, 1]])
    root = _setup(tmp_path, labels, np.full((3, 3), 0.5))
    (tmp_path / "pred.csv").write_text("0.5,0.5,0.5\n0.5,0.5,0.5\n")
    with pytest.raises(SystemExit, match="2 prediction lines for 3 exams"):
        evaluate.main([str(tmp_path / "input.csv"), str(tmp_path / "pred.csv"), "--labels-dir", str(root)])
    (tmp_path / "pred.csv").write_text("0.5,0.5,0.5\n0.5,x,0.5\n0.5,0.5,0.5\n")
    with pytest.raises(SystemExit, match=r"pred.csv:2"):
        evaluate.main([str(tmp_path / "input.csv"), str(tmp_path / "pred.csv"), "--labels-dir", str(root)])
