"""Training throughput on this machine: real slices per second and CPU utilisation, per set-up.

    python benchmarks/training_throughput.py [--data-dir DIR] [--exams 96] [--epochs 3]

Every row trains the default per-plane model (fit.py's loss, optimiser, AUC metric) on the same
exams for the same epochs, each in a fresh process, after one warm-up epoch that traces and
compiles. Figures: real (unpadded) slices trained per second, summed over processes that run side
by side, and the CPU time those processes used per wall second (200 % = two cores busy).

Rows, from the plainest set-up to fit.py's default:
  ragged      one process, ragged batches of raw 256 px slices, plain graph (the baseline)
  padded      every exam padded to the longest stack, as many MRNet implementations do
  xla         fixed-shape batches compiled by XLA
  xla+pooled  XLA, slices block-averaged in the pipeline, several steps per graph call
  N planes    xla+pooled, one process per plane side by side (fit.py --jobs auto on a CPU)
  retained    3 planes, each process keeping the memory it frees (fit.py's --allocator auto): every
              row above runs with glibc's defaults, which hand each step's activations back
"""

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "train"), str(ROOT / "submission")]
from mrnet.runtime import use_project_venv  # noqa: E402
use_project_venv()  # under .venv/ (setup.sh on an externally-managed Python) when this one lacks TensorFlow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

warnings.filterwarnings("ignore", message=".*ran out of data.*")  # finite epochs, by design
warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")

SETUPS = {  # name: (pipeline, xla, block-average in the pipeline, steps per execution)
    "ragged": ("ragged", False, False, 1),
    "padded": ("padded", False, False, 1),
    "xla": ("static", True, False, 1),
    "xla+pooled": ("static", True, True, 8),
}


def padded_model(ragged_model, max_slices):
    """The ragged model behind a dense (exams, max_slices, 256, 256) input: every exam claims max_slices."""
    import keras
    from keras import ops

    class Flatten(keras.layers.Layer):
        def call(self, x):
            counts = ops.ones((ops.shape(x)[0],), "int32") * max_slices
            return {"slices": ops.reshape(x, (-1, 256, 256)), "counts": counts}

    inp = keras.Input((max_slices, 256, 256), dtype="uint8")
    return keras.Model(inp, ragged_model(Flatten()(inp)))


def padded_dataset(paths, labels, exams_per_batch, max_slices):
    """The common alternative to ragged batches: every exam padded to the longest stack."""
    import numpy as np
    import tensorflow as tf

    from learning.pipeline import headers
    from mrnet.series import read_data

    paths = [str(p) for p in paths]
    labels = np.asarray(labels, np.float32).reshape(len(paths), -1)
    infos = headers(paths)

    def load(members):
        def read(m):
            out = np.zeros((len(m), max_slices, 256, 256), np.uint8)
            for row, i in enumerate(m):
                a = read_data(paths[i], infos[i])
                out[row, : a.shape[0]] = a
            return out, labels[m]
        x, y = tf.numpy_function(read, [members], [tf.uint8, tf.float32], stateful=False)
        x.set_shape([None, max_slices, 256, 256])
        y.set_shape([None, labels.shape[1]])
        return x, y

    starts = np.arange(0, len(paths), exams_per_batch)
    plans = [np.arange(s, min(s + exams_per_batch, len(paths)), dtype=np.int32) for s in starts]
    ds = tf.data.Dataset.from_generator(lambda: iter(plans), output_signature=tf.TensorSpec([None], tf.int32))
    return ds.map(load, num_parallel_calls=4).prefetch(2)


def child(args):
    """One set-up on one plane, in this process; prints a JSON line with its figures."""
    from learning.distributed import use_allocator
    from mrnet.runtime import import_tensorflow

    use_allocator(args.allocator, "compact")
    tf = import_tensorflow()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras
    import numpy as np

    from learning.distributed import Devices
    from learning.model import build_model
    from learning.pipeline import count_batches, headers, make_dataset
    from learning.recipe import fit_config, model_config
    from learning.training import compile_plane, positive_weights
    from mrnet.contract import TASKS
    from mrnet.layout import read_labels, series_path
    from phantom.writer import default_phantom

    pipeline, xla, pooled, spe = SETUPS[args.setup]
    data_dir = args.data_dir or default_phantom()
    labels = read_labels(data_dir).loc["train"].iloc[: args.exams]
    paths = [series_path(data_dir, "train", args.plane, c) for c in labels.index]
    y = labels[list(TASKS)].values
    counts = np.array([info[0][0] for info in headers(paths)])
    keras.utils.set_random_seed(0)
    # fit.py's whole-slice model, loss, optimiser, schedule and metric (learning/recipe.py, training.py)
    config = fit_config(model={"input_size": args.input_size, "crops": False},
                        compute={"batch_slices": args.batch_slices, "steps_per_execution": spe})
    model = build_model(**model_config(config.model), pooled_input=pooled)
    if pipeline == "padded":
        per_batch = max(1, round(args.batch_slices / counts.mean()))
        model = padded_model(model, int(counts.max()))
        data = padded_dataset(paths, y, per_batch, int(counts.max()))
    else:
        data = make_dataset(paths, y, args.batch_slices, shuffle=True, static=pipeline == "static",
                            input_size=args.input_size if pooled else None)
    compile_plane(model, config.training.lr, config.compute, count_batches(paths, args.batch_slices), args.epochs + 1,
                  positive_weights(y),
                  Devices(strategy=None, xla=xla, replicas=1, workers=1, index=0))
    model.fit(data, epochs=1, verbose=0)  # warm-up: tracing and compiling
    cpu0, start = os.times(), time.perf_counter()
    model.fit(data, epochs=args.epochs, verbose=0)
    wall, cpu1 = time.perf_counter() - start, os.times()
    print(json.dumps({"slices": int(counts.sum()) * args.epochs, "wall": wall,
                      "cpu": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)}))


def run(args, setup, planes, threads, allocator="system"):
    """Start one child per plane at once; (real slices/s summed, CPU %, wall of the slowest)."""
    base = [sys.executable, __file__, "--child", "--setup", setup, "--exams", str(args.exams),
            "--epochs", str(args.epochs), "--batch-slices", str(args.batch_slices),
            "--input-size", str(args.input_size), "--threads", str(threads), "--allocator", allocator]
    if args.data_dir:
        base += ["--data-dir", str(args.data_dir)]
    procs = [subprocess.Popen(base + ["--plane", plane], stdout=subprocess.PIPE, text=True) for plane in planes]
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"benchmark: set-up {setup} failed (exit {proc.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return (sum(r["slices"] / r["wall"] for r in results),
            100 * sum(r["cpu"] for r in results) / max(r["wall"] for r in results),
            max(r["wall"] for r in results))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, help="MRNet-v1.0 root (default: the phantom)")
    ap.add_argument("--plane", default="sagittal")
    ap.add_argument("--exams", type=int, default=96)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per set-up (%(default)s)")
    ap.add_argument("--batch-slices", type=int, default=96, help="slice budget (%(default)s)")
    ap.add_argument("--input-size", type=int, default=64, help="as fit.py's --input-size (%(default)s)")
    ap.add_argument("--setup", choices=SETUPS, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--allocator", default="system", help=argparse.SUPPRESS)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)

    from learning.parallel import cores

    print(f"{args.exams} exams per plane, {args.epochs} timed epochs, {args.input_size} px input, "
          f"{cores()} CPU core(s)\n")
    print(f"{'set-up':28s}{'real slices/s':>15s}{'CPU %':>8s}{'vs ragged':>11s}")
    planes = ["sagittal", "coronal", "axial"]
    rows = [(name, name, [args.plane], 0, "system") for name in SETUPS]
    rows += [(f"xla+pooled, {n} planes at once", "xla+pooled", planes[:n], max(1, cores() // n), "system")
             for n in (2, 3)]
    rows += [("3 planes, memory retained", "xla+pooled", planes, max(1, cores() // 3), "retain")]
    baseline = None
    for label, setup, planes, threads, allocator in rows:
        rate, cpu, _ = run(args, setup, planes, threads, allocator)
        baseline = baseline or rate
        print(f"{label:28s}{rate:15.0f}{cpu:8.0f}{rate / baseline:10.2f}x", flush=True)


if __name__ == "__main__":
    main()
