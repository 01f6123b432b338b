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
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import _paths  # noqa: F401
from _paths import ROOT

SKIP_DIRS = {"__pycache__", ".pytest_cache"}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--submission", type=Path, default=ROOT / "submission", help="folder to pack (%(default)s)")
    ap.add_argument("--out", type=Path, default=ROOT / "dist" / "mrnet-submission.zip", help="(%(default)s)")
    ap.add_argument("--data-dir", type=Path, help="MRNet-v1.0 root for the check (default: the phantom)")
    ap.add_argument("--exams", type=int, default=6, help="validation exams the check predicts (%(default)s)")
    return ap.parse_args(argv)


def members(submission):
    """Every file under submission/ except caches and half-written bundles, sorted for stable archives."""
    for path in sorted(submission.rglob("*")):
        rel = path.relative_to(submission)
        if path.is_file() and not SKIP_DIRS & set(rel.parts) and not rel.parts[0].startswith("bundle.tmp"):
            yield path, Path("submission") / rel


def build_archive(submission, dest):
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, name in members(submission):
            zf.write(path, name.as_posix())


def check_output(path, n_exams):
    """The contract's output: no header, one line per exam, three probabilities in [0, 1]."""
    lines = Path(path).read_text().splitlines()
    if len(lines) != n_exams:
        raise SystemExit(f"package: {path}: {len(lines)} lines for {n_exams} exams")
    for number, line in enumerate(lines, 1):
        values = [float(v) for v in line.split(",")]
        if len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values):
            raise SystemExit(f"package: {path}:{number}: {line!r} is not three probabilities in [0, 1]")


def prove(archive, data_dir, n_exams):
    """Unpack into an empty folder and run the organisers' command there; return seconds taken."""
    from mrnet.contract import PLANES
    from mrnet.layout import read_labels, series_path

    cases = list(read_labels(data_dir).loc["valid"].index[:n_exams])
    with tempfile.TemporaryDirectory(prefix="mrnet-package-") as work:
        work = Path(work)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(work)
        lines = []
        for case in cases:
            for plane in PLANES:
                rel = Path("MRNet-v1.0", "valid", plane, f"{case}.npy")
                (work / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(series_path(data_dir, "valid", plane, case), work / rel)
                lines.append(rel.as_posix() + "\n")
        (work / "input.csv").write_text("".join(lines))
        start = time.perf_counter()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing from this checkout leaks in
        result = subprocess.run([sys.executable, "submission/predict.py", "input.csv", "output.csv"], cwd=work,
                                env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"package: predict failed in the unpacked archive (exit {result.returncode}):\n"
                             f"{result.stderr[-2000:]}")
        check_output(work / "output.csv", len(cases))
    return len(cases), seconds


def main(argv=None):
    args = parse_args(argv)
    from mrnet.bundle import BundleError, verify

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
