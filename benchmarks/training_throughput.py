"""Training throughput: ragged slice-budget batches against the common padded-to-max-slices batches.

    python benchmarks/training_throughput.py [--data-dir DIR] [--exams 96] [--epochs 2]

Same exams, same model, same optimiser, one process. The padded pipeline stacks a few exams per
batch and pads each to the longest stack in the set, as many MRNet implementations do; the CNN then
runs over the padding too. Figures are real (unpadded) slices trained per second, after one
warm-up epoch that builds the graph.
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "train"), str(ROOT / "submission")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


warnings.filterwarnings("ignore", message=".*ran out of data.*")  # finite epochs, by design
warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")


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


def timed_fit(model, dataset, epochs):
    model.fit(dataset, epochs=1, verbose=0)  # warm-up: tracing and graph building
    start = time.perf_counter()
    model.fit(dataset, epochs=epochs, verbose=0)
    return time.perf_counter() - start


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, help="MRNet-v1.0 root (default: the phantom)")
    ap.add_argument("--plane", default="sagittal")
    ap.add_argument("--exams", type=int, default=96)
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs per pipeline (%(default)s)")
    ap.add_argument("--batch-slices", type=int, default=96, help="ragged slice budget (%(default)s)")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--input-size", type=int, default=64, help="as fit.py's --input-size (%(default)s)")
    args = ap.parse_args(argv)

    import keras
    import numpy as np
    import tensorflow as tf

    from learning.model import build_model
    from learning.training import WeightedBCE
    from mrnet.contract import TASKS
    from mrnet.layout import read_labels, series_path
    from phantom.writer import default_phantom
    from learning.pipeline import headers, make_dataset, padded_dataset

    data_dir = args.data_dir or default_phantom()
    labels = read_labels(data_dir).loc["train"].iloc[: args.exams]
    paths = [series_path(data_dir, "train", args.plane, c) for c in labels.index]
    y = labels[list(TASKS)].values
    counts = np.array([info[0][0] for info in headers(paths)])
    real = int(counts.sum())
    per_batch = max(1, round(args.batch_slices / counts.mean()))  # the same exams per batch on average
    print(f"{len(paths)} {args.plane} exams, {real} slices (min {counts.min()}, median {int(np.median(counts))}, "
          f"max {counts.max()}); {os.cpu_count()} CPU(s), TensorFlow {tf.__version__}, GPU: "
          f"{bool(tf.config.list_physical_devices('GPU'))}; input {args.input_size} px")

    results = {}
    for name in ("ragged", "padded"):
        keras.utils.set_random_seed(0)
        model = build_model(width=args.width, augment=False, space_pool="avgmax", input_size=args.input_size)
        if name == "ragged":
            data = make_dataset(paths, y, args.batch_slices, shuffle=True)
            computed = real
        else:
            model = padded_model(model, int(counts.max()))
            data = padded_dataset(paths, y, per_batch, int(counts.max()))
            computed = len(paths) * int(counts.max())
        model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=WeightedBCE([1.0] * len(TASKS)))
        seconds = timed_fit(model, data, args.epochs)
        results[name] = (real * args.epochs / seconds, computed / real, seconds)

    print(f"\n{'pipeline':10s}{'real slices/s':>15s}{'CNN work per real slice':>26s}{'seconds':>10s}")
    for name, (rate, work, seconds) in results.items():
        print(f"{name:10s}{rate:15.1f}{work:26.2f}{seconds:10.1f}")
    print(f"\nragged / padded throughput: {results['ragged'][0] / results['padded'][0]:.2f}x "
          f"(padded batches: {per_batch} exams, each padded to {counts.max()} slices)")


if __name__ == "__main__":
    main()
