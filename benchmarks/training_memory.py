"""Peak memory of one training process, per backbone, input size and slice budget, side by side.

    python benchmarks/training_memory.py [--steps 2] [--rows compact-64-96 efficientnetb0-256-96 ...]

Each row builds fit.py's model (learning.model.build_model) with fit.py's loss, optimiser and XLA
setting, and trains `--steps` steps on batches of `batch` slices (exams of 32 slices, the last one
shorter), in a fresh process; it prints that process's peak resident memory (ru_maxrss) and the
seconds per step after the first. A row is `backbone-input_size-batch_slices[-noxla][-bf16][-pretrained]`:
`noxla` trains the plain graph, `bf16` under Keras' mixed_bfloat16 policy (activations in 16 bits),
`pretrained` loads the backbone from a weights file (random ones, saved first), as `--weights PATH`
or imagenet do, so its BatchNorm keeps its statistics (model.applications_backbone).

Why: a fit of efficientnetb0 at 256 px reached 15 GB RSS. This tells training activations (which
scale with the slices in a batch) from what the process holds anyway (TensorFlow, the weights).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "train"), str(ROOT / "submission")]
from mrnet.runtime import use_project_venv  # noqa: E402
use_project_venv()  # under .venv/ (setup.sh on an externally-managed Python) when this one lacks TensorFlow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROWS = ["compact-64-96", "efficientnetb0-256-96", "efficientnetb0-256-48", "efficientnetb0-256-32"]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", default=ROWS,
                    help="backbone-input_size-batch_slices[-noxla][-bf16][-pretrained] (%(default)s)")
    ap.add_argument("--steps", type=int, default=2, help="training steps per row, the first one traces (%(default)s)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def child(row, steps):
    """One row in this process: a JSON line with peak RSS and seconds per step."""
    from mrnet.runtime import import_tensorflow

    import_tensorflow()
    import numpy as np

    from learning.distributed import Devices
    from learning.model import build_model
    from learning.parallel import peak_rss_gib
    from learning.recipe import fit_config, model_config
    from learning.training import compile_plane

    backbone, size, batch, *rest = row.split("-")
    size, batch = int(size), int(batch)
    if "bf16" in rest:
        import keras

        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    pooled = size < 256  # fit.py block-averages in the pipeline below 256 px
    weights = "none"
    if "pretrained" in rest:
        import tempfile

        scratch = build_model(backbone=backbone, input_size=size, crops=False)
        weights = str(Path(tempfile.mkdtemp()) / f"{backbone}.weights.h5")
        scratch.get_layer(backbone).get_layer(backbone).save_weights(weights)
        del scratch
    # fit.py's whole-slice model, loss, optimiser and metric at this backbone and size
    config = fit_config(model={"backbone": backbone, "input_size": size, "weights": weights, "crops": False},
                        compute={"steps_per_execution": 1})
    model = build_model(**model_config(config.model), pooled_input=pooled)
    compile_plane(model, config.training.lr, config.compute, 10, 2, [1.0, 1.0, 1.0],
                  Devices(strategy=None, xla="noxla" not in rest, replicas=1, workers=1, index=0))
    counts = np.array([32] * (batch // 32) + ([batch % 32] if batch % 32 else []), np.int32)
    rng = np.random.default_rng(0)
    shape = (batch, size, size) if pooled else (batch, 256, 256)
    slices = rng.integers(0, 255, shape).astype(np.float32 if pooled else np.uint8)
    y = rng.integers(0, 2, (len(counts), 3)).astype(np.float32)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch({"slices": slices, "counts": counts}, y)
        times.append(time.perf_counter() - start)
    step_s = float(np.mean(times[1:])) if steps > 1 else None
    print(json.dumps({"row": row, "peak_gib": peak_rss_gib("self"), "step_s": step_s}))


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(args.child, args.steps)
    print(f"{'row':28s}{'peak RSS (GiB)':>15s}{'s/step':>9s}", flush=True)
    for row in args.rows:
        proc = subprocess.run([sys.executable, __file__, "--child", row, "--steps", str(args.steps)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{row:28s}  failed: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        step = f"{r['step_s']:9.1f}" if r["step_s"] is not None else f"{'-':>9s}"
        print(f"{row:28s}{r['peak_gib']:15.2f}{step}", flush=True)


if __name__ == "__main__":
    main()
