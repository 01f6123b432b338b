"""fit.py as users run it: killed mid-way and resumed, on two logical CPU devices, and as two workers."""

import csv
import os
import socket
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from learning.distributed import tf_config

ROOT = Path(__file__).resolve().parents[1]
FIT = [sys.executable, str(ROOT / "train" / "fit.py")]
# XLA off: its compile is 20 s of a 45 s tiny fit, and nothing here is about it (the tiny bundle's fit,
# test_model.py, checks the XLA path; mirrored and multi-worker runs have it off anyway)
SMALL = ["--epochs", "3", "--batch-slices", "64", "--width", "8", "--quiet", "--tune-fraction", "0.5",
         "--patience", "10", "--xla", "off", "--no-crops"]  # the whole-slice recipe: the crop model is the tiny bundle's


def _epochs(history):
    """The epochs history.csv logs, read from its complete lines only: polled while the run writes it,
    the file can end mid-line, even mid-header."""
    lines = [line for line in history.read_text().splitlines(keepends=True) if line.endswith("\n")]
    rows = csv.DictReader(lines)
    return [int(row["epoch"]) for row in rows] if "epoch" in (rows.fieldnames or ()) else []


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


def _tune_losses(run):
    """{plane: [each epoch's tuning loss]} of a run (history.csv: TuneScore's val_loss, the real
    tuning exams through the model on one device)."""
    return {plane: [float(r["val_loss"]) for r in csv.DictReader(open(run / plane / "history.csv"))]
            for plane in ("sagittal", "coronal", "axial")}


# At learning rate 0 nothing moves, so a strategy's run must see exactly the model and exams a
# single device sees: the same tuning loss every epoch. Its training loss is not comparable: each
# replica averages its own share of a batch's exams and Keras weights those means by slice count,
# so with six fitting exams of unequal loss it read 0.70-0.80x a single device's.
STILL = ["--epochs", "2", "--lr", "0"]


@pytest.fixture(scope="module")
def single_device(tiny_phantom, tmp_path_factory):
    """The single-device run the strategies are compared with, made the hard way: fit.py killed once
    sagittal has logged an epoch (SIGKILL, what a lost machine or an OOM kill does: no clean-up),
    then resumed. One fit serves both checks (a fit of its own was 60-80 s of the suite). At rate 0
    the weights never move, so the strategies' comparison checks the resumed run's bookkeeping (one
    history row per epoch, every plane finished), not its restored weights: test_checkpoints.py
    compares those. Returns (run folder, (the epochs logged at the kill, whether a bundle existed
    then))."""
    run = tmp_path_factory.mktemp("single") / "run"
    bundle = run.parent / "bundle"
    args = ["--data-dir", str(tiny_phantom), "--run-dir", str(run), "--bundle", str(bundle), *SMALL, *STILL]
    history = run / "sagittal" / "history.csv"
    proc = subprocess.Popen(FIT + args, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if history.is_file() and len(_epochs(history)) >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "fit finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = (_epochs(history), bundle.exists())
    result = subprocess.run(FIT + args + ["--resume"], env=_env(), capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    return run, killed


@pytest.mark.slow
def test_a_killed_run_resumes_where_it_stopped(single_device):
    run, (done, bundle_then) = single_device
    assert done == [0] and not bundle_then  # killed after its first epoch, before any bundle
    # the epochs already logged were not trained again: each epoch appears once, in order
    assert _epochs(run / "sagittal" / "history.csv") == [0, 1]
    assert (run.parent / "bundle" / "manifest.json").is_file()


def _same_as_one_device(run, single):
    for plane, losses in _tune_losses(run).items():
        assert losses == pytest.approx(_tune_losses(single)[plane], abs=1e-5), plane
        rows = [list(csv.DictReader(open(r / plane / "history.csv"))) for r in (run, single)]
        assert len(rows[0]) == len(rows[1]) and all(np.isfinite(float(r["loss"])) for r in rows[0]), plane


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus_trains_and_exports(tiny_phantom, tmp_path, single_device):
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    result = subprocess.run(
        FIT + ["--data-dir", str(tiny_phantom), "--run-dir", str(run), "--bundle", str(bundle), *SMALL, *STILL,
               "--strategy", "mirrored", "--cpu-replicas", "2"],
        env=_env(), capture_output=True, text=True, timeout=500)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MirroredStrategy over 2 replica(s)" in result.stdout
    _same_as_one_device(run, single_device[0])

    from mrnet.bundle import verify
    verify(bundle, None)


def _free_ports(n):
    """n distinct free ports: every socket stays bound until all are chosen, so two workers can never
    be handed the same port (one bound and closed at a time may be)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
def test_two_workers_on_localhost_train_together_and_only_the_chief_writes(tiny_phantom, tmp_path, single_device):
    """MultiWorkerMirroredStrategy as on two machines: one process each, the cluster in TF_CONFIG."""
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    hosts = [f"localhost:{port}" for port in _free_ports(2)]
    args = ["--data-dir", str(tiny_phantom), "--run-dir", str(run), "--bundle", str(bundle), *SMALL, *STILL,
            "--strategy", "multiworker"]
    procs = []
    for index in range(2):
        procs.append(subprocess.Popen(FIT + args, env={**_env(), "TF_CONFIG": tf_config(hosts, index)}, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    try:
        outs = [p.communicate(timeout=400) for p in procs]
    except subprocess.TimeoutExpired:  # once in CI, before either had a run folder: say where each stood
        for p in procs:
            p.kill()
        tails = [f"worker {i + 1}: {p.communicate()[1][-1500:]}" for i, p in enumerate(procs)]
        pytest.fail("two workers still running after 400 s (ports " + ", ".join(hosts) + ")\n" + "\n".join(tails))
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert "over 2 replica(s), worker 1 of 2" in outs[0][0] and "worker 2 of 2" in outs[1][0]
    assert "the chief writes the bundle" in outs[1][0]
    _same_as_one_device(run, single_device[0])

    from mrnet.bundle import verify
    verify(bundle, None)


def test_planes_train_side_by_side_only_where_it_pays_and_fits_in_memory():
    """auto: three processes for the compact CNN on a bare CPU; one for a keras.applications backbone
    (its activations alone took 14.5 GB at 256 px), on a GPU, or over several replicas."""
    from learning.distributed import Devices
    from learning.parallel import cores, plane_jobs

    cpu = Devices(strategy=None, xla=True, replicas=1, workers=1, index=0)
    assert plane_jobs("auto", cpu, 3) == (3 if cores() > 1 else 1)
    assert plane_jobs("auto", cpu, 3, "efficientnetb0") == 1
    assert plane_jobs("auto", Devices(None, True, 1, 1, 0, gpus=1), 3) == 1
    assert plane_jobs("auto", Devices(None, False, 2, 1, 0), 3) == 1
    assert plane_jobs("2", cpu, 3, "resnet50") == 2 and plane_jobs("5", cpu, 3) == 3


def test_xla_is_on_where_it_was_measured_to_pay_and_off_where_it_hung_or_grew_memory():
    """auto: on for a GPU and for the compact CNN on one CPU replica (2.6x a step); off over several
    replicas (collectives under XLA hung) and for a keras.applications backbone on a CPU (+4 GB)."""
    from learning.distributed import use_xla

    assert use_xla("auto", 0, 1, "compact") and use_xla("auto", 1, 1, "efficientnetb0")
    assert not use_xla("auto", 0, 2, "compact") and not use_xla("auto", 0, 1, "efficientnetb0")
    assert use_xla("auto", 2, 2, "compact")
    assert use_xla("on", 0, 2, "resnet50") and not use_xla("off", 1, 1, "compact")


_FAULTS = """
import resource, sys
import numpy as np
from learning.distributed import use_allocator
print(use_allocator(sys.argv[1], sys.argv[2]))
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):  # a training step's activations: allocated, written, freed, again
    a = np.ones(100 * 2**20, np.uint8)
    del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


def test_retained_memory_is_reused_across_steps_instead_of_faulted_in_again():
    """--allocator retain: freed blocks stay in the process, so a step's allocations after the first
    cost no page faults (with glibc's defaults every 100 MB block is mapped and faulted in anew)."""
    def faults(flag, backbone="compact"):
        out = subprocess.run([sys.executable, "-c", _FAULTS, flag, backbone], capture_output=True, text=True,
                             env={**os.environ, "NUMPY_MADVISE_HUGEPAGE": "0",  # 4 KB pages, as TensorFlow's buffers
                                  "PYTHONPATH": os.pathsep.join([str(ROOT / "train"), str(ROOT / "submission")])},
                             check=True).stdout.split()
        return out[0], int(out[1])

    (system, many), (retain, few) = faults("system"), faults("retain")
    assert (system, retain) == ("system", "retain")
    assert many > 20 * 25_000 * 0.9 and few < many / 5, (many, few)  # 25,600 pages of 4 KB per block
    assert faults("auto", "efficientnetb0")[0] == "system" and faults("auto")[0] == "retain"


def test_the_slice_budget_follows_the_backbone_unless_given():
    """auto: 96 slices a batch, but 32 for a pretrained keras.applications backbone at 256 px (96 of
    its slices took 12 GiB; its BatchNorm keeps its statistics, so about one exam a batch is safe);
    from scratch 96 (several exams for BatchNorm's batch statistics); a number given is kept, and
    anything else is refused by name."""
    import fit

    def budget(*flags):
        return fit.parse_args(list(flags)).compute.batch_slices

    assert budget() == 96 and budget("--backbone", "efficientnetb0", "--input-size", "128") == 96
    assert budget("--backbone", "efficientnetb0", "--input-size", "256", "--weights", "imagenet") == 32
    assert budget("--backbone", "resnet50", "--input-size", "256", "--weights", "/any/backbone.weights.h5") == 32
    assert budget("--backbone", "efficientnetb0", "--input-size", "256") == 96  # --weights none
    assert budget("--backbone", "resnet50", "--input-size", "256", "--batch-slices", "48") == 48
    proc = subprocess.run(FIT + ["--batch-slices", "0"], capture_output=True, text=True, env=_env())
    assert proc.returncode == 2 and "--batch-slices: '0' is neither a positive whole number nor auto" in proc.stderr


def test_abnormal_weight_sets_what_an_abnormal_exam_weighs_in_the_loss():
    """1 by default, balanced on request (an abnormal exam weighs normal / abnormal exams, 0.23 at
    MRNet's 81 %), any other weight replaces the abnormal task's alone, the loss of an abnormal exam
    moves by exactly the difference, and a weight of 0, an infinite one or a word is refused by name."""
    import fit
    from learning.training import WeightedBCE, positive_weights

    labels = np.array([[1, 1, 0]] * 18 + [[1, 0, 1]] * 35 + [[1, 0, 0]] * 28 + [[0, 0, 0]] * 19)
    default = positive_weights(labels, fit.parse_args([]).training.abnormal_weight)
    balanced = positive_weights(labels, fit.parse_args(["--abnormal-weight", "balanced"]).training.abnormal_weight)
    halved = positive_weights(labels, fit.parse_args(["--abnormal-weight", "0.5"]).training.abnormal_weight)
    assert balanced == pytest.approx([19 / 81, 82 / 18, 65 / 35])
    assert default == [1.0, *balanced[1:]] and halved == [0.5, *balanced[1:]]
    y, logits = np.array([[1.0, 0.0, 0.0]], np.float32), np.zeros((1, 3), np.float32)
    moved = float(WeightedBCE(default)(y, logits)) - float(WeightedBCE(balanced)(y, logits))
    assert moved == pytest.approx((1 - 19 / 81) * np.log(2) / 3, rel=1e-5)
    proc = subprocess.run(FIT + ["--abnormal-weight", "0"], capture_output=True, text=True, env=_env())
    assert proc.returncode == 2 and "--abnormal-weight 0.0: a finite weight above 0" in proc.stderr
    proc = subprocess.run(FIT + ["--abnormal-weight", "inf"], capture_output=True, text=True, env=_env())
    assert proc.returncode == 2 and "--abnormal-weight inf: a finite weight above 0" in proc.stderr
    proc = subprocess.run(FIT + ["--abnormal-weight", "heavy"], capture_output=True, text=True, env=_env())
    assert proc.returncode == 2 and "'heavy' is neither a number nor balanced" in proc.stderr
