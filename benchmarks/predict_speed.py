"""Prediction speed and memory of submission/predict.py, beside the one-exam-one-plane-at-a-time way.

    python benchmarks/predict_speed.py [--bundle submission/bundle] [--exams 120] [--memory-exams 1000]

Every figure is a fresh process, start-up and bundle loading included, as the organisers time it:
  1. predict.py on --exams exams (ragged batches across exams, reads overlapped with compute);
  2. the same bundle called one exam and one plane at a time, as peer submissions do;
  3. predict.py on --memory-exams exams: its peak resident memory (the files are links to the same
     phantom series under distinct names, so no extra disk is used; each is read like any other).
Peak memory is the child's own ru_maxrss. Exams come from the phantom (median 30 slices per plane).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "train"), str(ROOT / "submission")]
from mrnet.runtime import use_project_venv  # noqa: E402
use_project_venv()  # under .venv/ (setup.sh on an externally-managed Python) when this one lacks TensorFlow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CHILD = """
import resource, runpy, sys
sys.argv = {argv!r}
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print("peak_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def one_at_a_time(input_csv, output_csv, bundle):
    """The baseline: every exam, every plane, its own model call; same bundle, same combiner."""
    import numpy as np

    from mrnet import combiner as comb
    from mrnet.contract import PLANES
    from mrnet.infer import load_bundle, plane_logits
    from mrnet.inputs import read_input
    from mrnet.series import read_data

    _, combiner, models = load_bundle(bundle)
    rows = []
    for exam in read_input(input_csv):
        logits = {}
        for plane in PLANES:
            path, info = exam.series[plane]
            slices = read_data(path, info)
            logits[plane] = plane_logits(models[plane], slices, np.array([len(slices)], np.int32))[0]
        p = comb.apply(combiner, logits)[0]
        rows.append(f"{p[0]:.8f},{p[1]:.8f},{p[2]:.8f}\n")
    Path(output_csv).write_text("".join(rows))


def run_child(argv):
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", CHILD.format(argv=argv)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"benchmark: {' '.join(argv)} failed:\n{result.stderr[-2000:]}")
    peak = [line for line in result.stderr.splitlines() if line.startswith("peak_kib")][-1]
    return seconds, int(peak.split()[1]) / 2**20


def write_input(data_dir, cases, folder, copies):
    """An input CSV of len(cases) * copies exams; `cases` are (split, case); extra copies are links."""
    from mrnet.contract import PLANES
    from mrnet.layout import series_path

    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for k in range(copies):
        for split, case in cases:
            for plane in PLANES:
                source = series_path(data_dir, split, plane, case)
                if k == 0:
                    lines.append(f"{source}\n")
                    continue
                link = folder / plane / f"{k:03d}{case}.npy"
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(source)
                lines.append(f"{link}\n")
    path = folder / f"input-{len(lines) // 3}.csv"
    path.write_text("".join(lines))
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=ROOT / "submission" / "bundle")
    ap.add_argument("--data-dir", type=Path, help="MRNet-v1.0 root (default: the phantom)")
    ap.add_argument("--exams", type=int, default=120)
    ap.add_argument("--memory-exams", type=int, default=1000)
    ap.add_argument("--batch-slices", type=int, default=256, help="predict.py --batch-slices (%(default)s)")
    ap.add_argument("--baseline-child", nargs=3, metavar=("INPUT", "OUTPUT", "BUNDLE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.baseline_child:
        return one_at_a_time(*args.baseline_child)

    import numpy as np

    from mrnet.bundle import BundleError, verify
    from mrnet.layout import read_labels
    from phantom.writer import default_phantom

    try:
        verify(args.bundle)
    except BundleError as e:
        raise SystemExit(f"benchmark: {e}; run `python train/fit.py` first")
    data_dir = args.data_dir or default_phantom()
    index = read_labels(data_dir).index  # (split, case), train first
    cases = sorted(index, key=lambda key: key[0] != "valid")[: args.exams]
    predict = str(ROOT / "submission" / "predict.py")
    print(f"{len(cases)} exams, {os.cpu_count()} CPU(s), bundle {args.bundle}")

    with tempfile.TemporaryDirectory(prefix="mrnet-bench-") as work:
        work = Path(work)
        small = write_input(data_dir, cases, work / "small", 1)
        big = write_input(data_dir, cases, work / "big", -(-args.memory_exams // len(cases)))
        lines = big.read_text().splitlines(keepends=True)[: 3 * args.memory_exams]
        big.write_text("".join(lines))
        one = work / "one.csv"
        one.write_text("".join(small.read_text().splitlines(keepends=True)[:3]))
        flags = ["--bundle", str(args.bundle), "--quiet", "--batch-slices", str(args.batch_slices)]
        startup = run_child([predict, str(one), str(work / "one-out.csv"), *flags])
        ours = run_child([predict, str(small), str(work / "ours.csv"), *flags])
        base = run_child([__file__, "--baseline-child", str(small), str(work / "base.csv"), str(args.bundle)])
        mem = run_child([predict, str(big), str(work / "big.csv"), *flags])
        a = np.loadtxt(work / "ours.csv", delimiter=",")
        b = np.loadtxt(work / "base.csv", delimiter=",")
        agree = float(np.abs(a - b).max())

    print(f"\n{'run':44s}{'exams':>7s}{'seconds':>9s}{'peak GiB':>10s}")
    print(f"{'predict.py, start-up and one exam':44s}{1:7d}{startup[0]:9.1f}{startup[1]:10.2f}")
    print(f"{'predict.py (ragged batches, streamed)':44s}{len(cases):7d}{ours[0]:9.1f}{ours[1]:10.2f}")
    print(f"{'one exam, one plane at a time':44s}{len(cases):7d}{base[0]:9.1f}{base[1]:10.2f}")
    print(f"{'predict.py, memory run':44s}{args.memory_exams:7d}{mem[0]:9.1f}{mem[1]:10.2f}")
    print(f"\nspeed-up over one at a time: {base[0] / ours[0]:.2f}x end to end, "
          f"{(base[0] - startup[0]) / max(ours[0] - startup[0], 1e-9):.2f}x after start-up; "
          f"largest probability difference {agree:.1e}")


if __name__ == "__main__":
    main()
