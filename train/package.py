"""Build the upload archive from submission/ and prove it works the way the organisers run it.

    python train/package.py                      # dist/mrnet-submission.zip, checked on 6 phantom exams
    python train/package.py --data-dir path/to/MRNet-v1.0 --exams 20

The archive holds `submission/` (predict.py, the mrnet package, the bundle) at its root, as the
contract's command expects. The proof unpacks it into an empty folder, lays a few validation exams
out as `MRNet-v1.0/valid/<plane>/<case>.npy` beside it, runs `python submission/predict.py
input.csv output.csv` there in a fresh process, and checks the output against the contract. The
archive is written under a temporary name and renamed only once that check has passed.
"""

import argparse
import os
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "submission"))  # the mrnet package, shared with predict.py
from mrnet.runtime import use_project_venv  # noqa: E402
use_project_venv()  # under .venv/ (setup.sh on an externally-managed Python) when this one lacks TensorFlow


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--submission", type=Path, default=ROOT / "submission", help="folder to pack (%(default)s)")
    ap.add_argument("--out", type=Path, default=ROOT / "dist" / "mrnet-submission.zip", help="(%(default)s)")
    ap.add_argument("--data-dir", type=Path, help="MRNet-v1.0 root for the check (default: the phantom)")
    ap.add_argument("--exams", type=int, default=6, help="validation exams the check predicts (%(default)s)")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mrnet.bundle import BundleError, verify
    from upload.archive import build_archive, members, prove

    bundle = args.submission / "bundle"
    try:
        verify(bundle)
    except BundleError as e:
        sys.exit(f"package: {e}; run `python train/fit.py` to build the bundle first")
    data_dir = args.data_dir
    if data_dir is None:
        from phantom.writer import default_phantom
        data_dir = default_phantom()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    try:
        build_archive(args.submission, tmp)
        n, seconds = prove(tmp, data_dir, args.exams)
        os.replace(tmp, args.out)
    finally:
        tmp.unlink(missing_ok=True)
    unpacked = sum(p.stat().st_size for p, _ in members(args.submission))
    with zipfile.ZipFile(args.out) as zf:
        count = len(zf.namelist())
    print(f"package: {args.out}  {args.out.stat().st_size / 2**20:.1f} MiB ({count} files, "
          f"{unpacked / 2**20:.1f} MiB unpacked)")
    print(f"package: checked: predict ran from the unpacked archive on {n} exams in {seconds:.1f} s; "
          f"output matches the contract")


if __name__ == "__main__":
    main()
