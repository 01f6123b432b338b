"""Shared fixtures: tiny phantom datasets and a tiny real bundle, built once per test session.

Started by a Python that lacks the dependencies beside setup.sh's .venv/ (its answer to an
externally-managed Python), pytest re-runs itself there first (pytest_configure below): no numpy or
TensorFlow import at this module's top, so that it gets that far."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
for sub in ("submission", "train"):
    if str(ROOT / sub) not in sys.path:
        sys.path.insert(0, str(ROOT / sub))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """`python -m pytest ...` from a Python without TensorFlow, where ROOT/.venv/bin/python exists:
    the same command under that python (mrnet.runtime.project_venv_python decides, as for the
    commands). Output capture is stopped first, or the new process would write into pytest's
    capture files."""
    from mrnet.runtime import project_venv_python

    python = project_venv_python(ROOT, importlib.util.find_spec("tensorflow"), sys.prefix)
    if python is None:
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.stop_global_capturing()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(str(python), [str(python), "-m", "pytest", *sys.argv[1:]])


TINY_FIT_SEED = 3


@pytest.fixture(scope="session")
def tiny_phantom(tmp_path_factory):
    """12 train + 6 valid phantom exams in the real layout (rendered coarse, for speed)."""
    from phantom.writer import write_phantom

    out = tmp_path_factory.mktemp("phantom") / "MRNet-v1.0"
    return write_phantom(out, n_train=12, n_valid=6, seed=3, render_size=64, workers=1, progress=False)


@pytest.fixture(scope="session")
def tiny_localiser(tiny_phantom, tmp_path_factory):
    """localise.py as a user runs it, on the tiny phantom's own anatomy truth (--corpus-dirs: no corpus
    to generate), one epoch of each network: a real localiser folder, not a good one. XLA off: its
    compile was a third of this fixture's time, and the tiny bundle's fit covers the XLA path."""
    return _command(tmp_path_factory, "localise.py", "localiser", "--corpus-dirs", str(tiny_phantom),
                    "--epochs", "1", "--refiner-epochs", "1", "--xla", "off")


@pytest.fixture(scope="session")
def pretrained(tiny_phantom, tmp_path_factory):
    """pretrain.py as a user runs it: the crop CNN on the tiny phantom's windows, two epochs."""
    return _command(tmp_path_factory, "pretrain.py", "pretrained", "--crops", "--crop-width", "8",
                    "--input-size", "64", "--width", "8", "--corpus-dirs", str(tiny_phantom), "--epochs", "2",
                    "--xla", "off")


def _command(tmp_path_factory, script, name, *flags):
    import subprocess

    out = tmp_path_factory.mktemp(name) / name
    proc = subprocess.run([sys.executable, str(ROOT / "train" / script), "--out", str(out), "--quiet", *flags],
                          capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def tiny_bundle(tiny_phantom, tiny_localiser, pretrained, tmp_path_factory):
    """A real bundle from fit.py's recipe on the tiny phantom, every plane, the crop branch placed by
    the tiny localiser and started from the tiny pretrained window network, XLA over fixed-shape
    batches (fit's default on a CPU). Two epochs: the first with the pretrained window network held
    still, the second at learning rate 0, so its window network is the pretrained one bit for bit
    (test_pretraining.py); the planes one after another (--jobs 1), each in a process of its own.
    Seed 3 splits train so that every task has both classes among the tuning exams: the kept epoch
    is then chosen on a defined competition mean (test_model.py). Its output stays in fit.log."""
    import contextlib
    import io

    import fit

    work = tmp_path_factory.mktemp("fit")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        fit.main(["--data-dir", str(tiny_phantom), "--run-dir", str(work / "run"), "--bundle", str(work / "bundle"),
                  "--epochs", "2", "--freeze-epochs", "1", "--lr", "0", "--jobs", "1", "--batch-slices", "64",
                  "--width", "8", "--crop-width", "8", "--quiet", "--tune-fraction", "0.5", "--seed",
                  str(TINY_FIT_SEED), "--crops", "--localiser", str(tiny_localiser), "--init", str(pretrained)])
    (work / "fit.log").write_text(out.getvalue())
    return work / "bundle"


def write_layout(root, cases, n_slices=3, dtype="uint8"):
    """A minimal MRNet layout from tiny arrays: {split: {case: (abnormal, acl, meniscus)}}."""
    import numpy as np

    root = Path(root)
    for split, labels in cases.items():
        for plane in ("sagittal", "coronal", "axial"):
            (root / split / plane).mkdir(parents=True, exist_ok=True)
            for case in labels:
                np.save(root / split / plane / f"{case}.npy", np.full((n_slices, 256, 256), 7, dtype))
        for t, task in enumerate(("abnormal", "acl", "meniscus")):
            (root / f"{split}-{task}.csv").write_text("".join(f"{c},{v[t]}\n" for c, v in labels.items()))
    return root


# fixtures too dear to build once per worker: the tests that use one share a worker (xdist_group)
SHARED = {"trained": {"tiny_bundle", "tiny_localiser", "pretrained"},
          "single-device": {"single_device"}}  # test_training.py's killed-and-resumed reference run


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """With two workers (pytest.ini's -n 2): the tests of each SHARED set share a worker, so the
    localiser, the pretrained folder and the tiny bundle (which needs the localiser) are each built
    once, and so is the single-device run the mirrored and multi-worker runs are compared with (one
    per worker built that 62-73 s fit twice)."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for group, fixtures in SHARED.items():
            if fixtures & used:
                item.add_marker(pytest.mark.xdist_group(group))
                break
