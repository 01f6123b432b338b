"""Predict abnormality, ACL tear and meniscal tear for every exam listed in INPUT_CSV.

    python submission/predict.py INPUT_CSV OUTPUT_CSV

INPUT_CSV: no header, one .npy path per line, three lines (sagittal, coronal, axial) per exam in
any order. OUTPUT_CSV: no header, one line per exam in input order: abnormal,acl,meniscus.
Exit status 2, and no output file, when any input line is unusable (every problem is listed).

Started by a Python without TensorFlow beside a checkout's .venv/ (setup.sh on an externally-managed
Python), it re-runs itself under .venv/bin/python; in the organisers' container, which has TensorFlow
and no .venv/, that check (mrnet.runtime.use_project_venv) does nothing.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from mrnet.runtime import use_project_venv  # noqa: E402
use_project_venv()  # under .venv/ (setup.sh on an externally-managed Python) when this one lacks TensorFlow


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input_csv", type=Path)
    ap.add_argument("output_csv", type=Path)
    ap.add_argument("--bundle", type=Path, default=HERE / "bundle", help="frozen bundle (%(default)s)")
    ap.add_argument("--batch-slices", type=int, default=256, help="slices per plane per batch (%(default)s)")
    ap.add_argument("--tta", action="store_true",
                    help="average coronal and axial logits with their mirror image (the other knee; a mirrored "
                         "sagittal slice swaps front and back, a knee no scan shows)")
    ap.add_argument("--explain", type=Path, metavar="DIR",
                    help="also write one PNG per exam to DIR: decisive slice and map per plane, slice scores")
    ap.add_argument("--explain-task", default="acl", choices=["abnormal", "acl", "meniscus"],
                    help="task whose map and decisive slices the PNGs show (%(default)s)")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")
    ap.add_argument("--verbose", action="store_true",
                    help="also show TensorFlow's native start-up log lines (or set MRNET_VERBOSE=1)")
    return ap.parse_args(argv)


def write_atomic(path, lines):
    """Write beside the target, then rename: an existing file is replaced whole or not at all."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(fd, "w", newline="\n") as f:
            f.writelines(lines)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def explain_all(results, models, args):
    """A second pass over the exams, one at a time: explanations are for reading, not for speed."""
    from mrnet.explain import explain_exam, figure

    args.explain.mkdir(parents=True, exist_ok=True)
    for i, (exam, probabilities, _) in enumerate(results, 1):
        figure(exam.key, explain_exam(models, exam), probabilities, args.explain_task,
               args.explain / f"{exam.key}.png")
        if not args.quiet:
            print(f"\rpredict: explained {i}/{len(results)} exams", end="", file=sys.stderr, flush=True)
    if not args.quiet:
        print(f"\npredict: explanations in {args.explain}", file=sys.stderr)


def main(argv=None):
    args = parse_args(argv)
    from mrnet import runtime

    runtime.configure(args.verbose)
    from mrnet.bundle import BundleError
    from mrnet.inputs import read_input
    from mrnet.problems import InputError

    start = time.perf_counter()
    try:
        exams = read_input(args.input_csv)
    except InputError as e:
        print(f"predict: {e}", file=sys.stderr)
        return 2
    if not args.output_csv.parent.is_dir() and str(args.output_csv.parent):
        print(f"predict: {args.output_csv.parent}: output folder does not exist", file=sys.stderr)
        return 2

    from mrnet.infer import load_bundle, predict

    try:
        _, combiner, models = load_bundle(args.bundle)
    except BundleError as e:
        print(f"predict: {e}", file=sys.stderr)
        return 2
    done = [0]

    def progress(n):
        done[0] += n
        if not args.quiet:
            print(f"\rpredict: {done[0]}/{len(exams)} exams", end="", file=sys.stderr, flush=True)

    results = list(predict(exams, combiner, models, args.batch_slices, args.tta, progress))
    rows = [f"{p[0]:.8f},{p[1]:.8f},{p[2]:.8f}\n" for _, p, _ in results]
    write_atomic(args.output_csv, rows)
    fell_back = [(exam.key, planes) for exam, _, planes in results if planes]
    if fell_back and not args.quiet:  # the localiser found nothing it was sure of: whole slices only there
        shown = ", ".join(f"{key} ({'/'.join(planes)})" for key, planes in fell_back[:5])
        print(f"\npredict: {len(fell_back)} of {len(results)} exams fell back to the whole slice in some plane "
              f"(no confident ACL or meniscus): {shown}{' ...' if len(fell_back) > 5 else ''}", file=sys.stderr)
    if args.explain:
        explain_all(results, models, args)
    if not args.quiet:
        print(f"\npredict: wrote {len(rows)} rows to {args.output_csv} in {time.perf_counter() - start:.1f} s",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
