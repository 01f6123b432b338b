"""Train the planes side by side, one process each, so a CPU machine's cores all work.

A from-scratch 2-D CNN over 64 px slices is too small a graph for TensorFlow to spread one
training step over several cores: one fit process used about 1.3 of 2 cores, whatever the thread
settings or batch size. The three planes are independent until the combiner, so each trains in its
own process with its share of the cores (intra-op threads = cores / processes). Measured on 2 cores:
one single-threaded XLA step loop runs 861 slices/s, two of them side by side 857 + 866, where one
process with both cores runs 1,344 (benchmarks/training_throughput.py prints the figures).

Children are started with `spawn` (no forked TensorFlow state), each writes its output to
`<run>/<plane>/train.log`, and the parent draws one progress bar per plane from the CSV log Keras
writes after every epoch. If one child fails, the others are stopped and the error names its log.
"""

import multiprocessing as mp
import os
import sys
import time
from pathlib import Path


def cores():
    """CPUs this process may run on (a container's share, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def plane_jobs(requested, devices, n_planes, backbone="compact"):
    """How many planes train at once: `auto` is one process per plane for the compact backbone on a
    CPU-only single-replica run, else one: a GPU or a distributed strategy already keeps the hardware
    busy, and a keras.applications backbone is a graph large enough to fill the cores alone, whose
    training activations need the memory (efficientnetb0 at 256 px, 96 slices a batch: 14.5 GB RSS
    in one process; three side by side would not fit in 24 GB)."""
    if requested != "auto":
        return max(1, min(int(requested), n_planes))
    on_cpu_alone = not devices.gpus and devices.replicas == 1 and devices.workers == 1
    small = backbone == "compact"
    return n_planes if on_cpu_alone and small and n_planes > 1 and cores() > 1 else 1


def own_processes(devices):
    """Whether each plane trains in a fresh process, even one plane at a time: on a CPU with one
    worker, yes. TensorFlow counts every trace of Keras' step function (one source function for the
    train and test steps of every model) against one retracing budget per process, so three planes
    trained one after another in one process drew "5 out of the last 9 calls ... triggered
    tf.function retracing" in a short run: each plane's first trace is new work, not a retrace, and
    a process per plane has exactly one trace of each step. A finished plane's process also hands
    all its memory back before the next plane starts. A GPU run keeps its planes in the process that
    already holds the device, and a multi-worker run in the process its peers connected to."""
    return not devices.gpus and devices.workers == 1


def _child(target, kind, config_json, plane, log, extra):
    """Runs in the spawned process: all output to the plane's log, then the plane's training with the
    configuration rebuilt from its JSON (learning/recipe.py). On Linux the child is ended with its
    parent, even one killed outright (SIGKILL, out of memory), so no orphan keeps writing into a run
    folder that a --resume is about to use."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    stream = open(log, "w", buffering=1)
    os.dup2(stream.fileno(), 1)
    os.dup2(stream.fileno(), 2)
    sys.stdout = sys.stderr = stream
    from learning.recipe import from_json

    target(from_json(kind, config_json), plane, *extra)
    print(f"[{plane}] peak memory of this process: {peak_rss_gib('self'):.2f} GiB", flush=True)


def peak_rss_gib(who="self"):
    """Peak resident memory in GiB of this process ('self') or of its largest finished child
    ('children'): what a user sizing a machine for a backbone needs (Linux reports KiB; 0 where the
    platform has no `resource`)."""
    try:
        import resource
    except ImportError:
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_SELF if who == "self" else resource.RUSAGE_CHILDREN)
    return usage.ru_maxrss / (2**30 if sys.platform == "darwin" else 2**20)


def _epochs_done(history):
    """(finished epochs, last tuning AUC or None) from the CSV log Keras appends after each epoch."""
    try:
        lines = [line for line in history.read_text().splitlines() if line.strip()]
    except OSError:
        return 0, None
    if len(lines) < 2:
        return 0, None
    row = dict(zip(lines[0].split(","), lines[-1].split(",")))
    for key in ("val_auc", "auc"):  # tuning AUC in fit.py, training AUC where there is no tuning set
        try:
            return len(lines) - 1, float(row[key])
        except (KeyError, ValueError):
            continue
    return len(lines) - 1, None


def train_in_processes(target, config, planes, run_dir, jobs, extra=(), epochs=None):
    """Call target(config, plane, *extra) for every plane, `jobs` processes at a time; each plane's
    progress bar counts the rows of its history.csv up to `epochs` (default: the configuration's
    training epochs). `config` is a command's frozen configuration (learning/recipe.py); each child
    receives it as JSON, with its share of the cores (cores() // jobs intra-op threads, at least one,
    unless --threads says otherwise), one job and no progress bar of its own."""
    from dataclasses import replace

    from tqdm import tqdm

    from learning.recipe import to_json

    compute = config.compute
    threads = compute.threads or max(1, cores() // jobs)
    child = to_json(replace(config, compute=replace(compute, threads=threads, jobs="1", quiet=True)))
    epochs = epochs or config.training.epochs
    ctx = mp.get_context("spawn")
    pending, running = list(planes), {}
    bars = {plane: tqdm(total=epochs, desc=f"[{plane}]", unit="epoch", position=i, leave=True,
                        disable=compute.quiet, dynamic_ncols=True) for i, plane in enumerate(planes)}
    print(f"training {len(planes)} plane(s), {jobs} at a time, {threads} thread(s) each; logs in "
          f"{run_dir}/<plane>/train.log", flush=True)
    try:
        while pending or running:
            while pending and len(running) < jobs:
                plane = pending.pop(0)
                log = run_dir / plane / "train.log"
                process = ctx.Process(target=_child, args=(target, type(config), child, plane, str(log), extra),
                                      name=f"fit-{plane}")
                process.start()
                running[plane] = (process, log)
                bars[plane].reset()  # its clock starts with its process, not with the first plane's
            time.sleep(1.0)
            for plane, (process, log) in list(running.items()):
                done, auc = _epochs_done(run_dir / plane / "history.csv")
                bar = bars[plane]
                bar.update(done - bar.n)
                if auc is not None:
                    bar.set_postfix(auc=f"{auc:.3f}", refresh=False)
                if process.is_alive():
                    continue
                process.join()
                del running[plane]
                if process.exitcode != 0:
                    tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
                    raise SystemExit(f"{Path(sys.argv[0]).stem}: [{plane}] training failed (exit code {process.exitcode}): "
                                     f"{tail[0] if tail else 'no output'}; full log: {log}")
                bar.total = bar.n  # early stopping may end a plane before --epochs
                bar.refresh()
                if compute.quiet:
                    print(f"[{plane}] done after {done} epoch(s); its log and output in {run_dir / plane}", flush=True)
    finally:
        for process, _ in running.values():
            process.terminate()
            process.join()
        for bar in bars.values():
            bar.close()
