"""What tf.function retracing costs when predicting ragged batches, and what binding a signature saves.

    python benchmarks/retracing.py [--data-dir DIR] [--backbone efficientnetb0] [--input-size 256] [--exams 24]

Every ragged batch has its own slice total and exam count. Keras' `model.predict` traces its step
again for new shapes (TensorFlow's "triggered tf.function retracing" warning); fit.py instead runs
`learning.training.inference_step`, bound to the exported SavedModel's signature, which is traced
once. Same model, same untrained weights, same batches, one process: each way's traces and wall
time over two passes of the split (the second pass shows what is left once the graphs exist), and
the largest difference between their logits.
"""

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "train"), str(ROOT / "submission")]
from mrnet.runtime import use_project_venv  # noqa: E402
use_project_venv()  # under .venv/ (setup.sh on an externally-managed Python) when this one lacks TensorFlow
warnings.filterwarnings("ignore", message=".*ran out of data.*")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, help="MRNet-v1.0 root (default: the phantom)")
    ap.add_argument("--backbone", default="efficientnetb0", choices=["compact", "resnet50", "efficientnetb0"])
    ap.add_argument("--input-size", type=int, default=256, choices=[64, 128, 256])
    ap.add_argument("--exams", type=int, default=24, help="valid exams of the sagittal plane (%(default)s)")
    ap.add_argument("--batch-slices", type=int, default=96)
    args = ap.parse_args(argv)

    from mrnet.runtime import import_tensorflow

    tf = import_tensorflow()
    import numpy as np

    from learning.model import build_model
    from learning.pipeline import make_dataset
    from learning.training import inference_step, predict_logits
    from mrnet.layout import read_labels, series_path
    from phantom.writer import default_phantom

    data_dir = args.data_dir or default_phantom()
    cases = read_labels(data_dir).loc["valid"].index[: args.exams]
    paths = [series_path(data_dir, "valid", "sagittal", c) for c in cases]
    y = np.zeros((len(paths), 3), np.float32)
    dataset = make_dataset(paths, y, args.batch_slices, shuffle=False)
    batches = sum(1 for _ in dataset)
    model = build_model(backbone=args.backbone, input_size=args.input_size, crops=False)  # whole slices, raw input
    tf.get_logger().setLevel("ERROR")  # the retracing warning is what is being measured here

    def timed(run):
        times, out = [], None
        for _ in range(2):
            start = time.perf_counter()
            out = run()
            times.append(time.perf_counter() - start)
        return times, out

    keras_times, keras_out = timed(lambda: model.predict(dataset, verbose=0))
    keras_traces = model.predict_function.experimental_get_tracing_count()
    step = inference_step(model)
    bound_times, bound_out = timed(lambda: predict_logits(model, dataset, step))
    bound_traces = step.experimental_get_tracing_count()

    print(f"{args.backbone} at {args.input_size} px, {len(paths)} sagittal exams in {batches} ragged batches "
          f"(budget {args.batch_slices} slices), {os.cpu_count()} CPU cores")
    print(f"{'':34s}{'traces':>8s}{'pass 1 (s)':>12s}{'pass 2 (s)':>12s}")
    print(f"{'model.predict (before)':34s}{keras_traces:>8d}{keras_times[0]:>12.1f}{keras_times[1]:>12.1f}")
    print(f"{'inference_step (fit.py now)':34s}{bound_traces:>8d}{bound_times[0]:>12.1f}{bound_times[1]:>12.1f}")
    print(f"largest logit difference: {np.abs(np.asarray(keras_out, np.float32) - bound_out).max():.2e}")


if __name__ == "__main__":
    main()
