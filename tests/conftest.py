"""Shared fixtures: tiny phantom datasets and a tiny real bundle, built once per test session."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
for sub in ("submission", "train"):
    if str(ROOT / sub) not in sys.path:
        sys.path.insert(0, str(ROOT / sub))


TINY_FIT_SEED = 3


@pytest.fixture(scope="session")
def tiny_phantom(tmp_path_factory):
    """12 train + 6 valid phantom exams in the real layout (rendered coarse, for speed)."""
    from phantom.writer import write_phantom

    out = tmp_path_factory.mktemp("phantom") / "MRNet-v1.0"
    return write_phantom(out, n_train=12, n_valid=6, seed=3, render_size=64, workers=1, progress=False)


@pytest.fixture(scope="session")
def tiny_bundle(tiny_phantom, tmp_path_factory):
    """A real bundle from fit.py: two epochs on the tiny phantom, every plane, XLA over fixed-shape
    batches (fit's default on a CPU). Seed 3 splits train so that every task has both classes among
    the tuning exams: the kept epoch is then chosen on a defined competition mean (test_model.py)."""
    import fit

    work = tmp_path_factory.mktemp("fit")
    fit.main(["--data-dir", str(tiny_phantom), "--run-dir", str(work / "run"), "--bundle", str(work / "bundle"),
              "--epochs", "2", "--batch-slices", "64", "--width", "8", "--quiet", "--tune-fraction", "0.5",
              "--seed", str(TINY_FIT_SEED)])
    return work / "bundle"


def write_layout(root, cases, n_slices=3, dtype=np.uint8):
    """A minimal MRNet layout from tiny arrays: {split: {case: (abnormal, acl, meniscus)}}."""
    root = Path(root)
    for split, labels in cases.items():
        for plane in ("sagittal", "coronal", "axial"):
            (root / split / plane).mkdir(parents=True, exist_ok=True)
            for case in labels:
                np.save(root / split / plane / f"{case}.npy", np.full((n_slices, 256, 256), 7, dtype))
        for t, task in enumerate(("abnormal", "acl", "meniscus")):
            (root / f"{split}-{task}.csv").write_text("".join(f"{c},{v[t]}\n" for c, v in labels.items()))
    return root


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """With two workers (pytest.ini's -n 2): the tests of one expensive fixture share a worker, so the tiny
    bundle (a fit) and the pretrained folder (a pretraining run) are each built once, not once per worker."""
    for item in items:
        for fixture in ("tiny_bundle", "pretrained"):
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(fixture))
                break
