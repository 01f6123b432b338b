"""Time `python train/localise.py --check` as a user runs it (a fresh process: TensorFlow's start-up
included), against issue 32's budget of 60 s for 20 exams and 3 planes, and say where the time went.

    python benchmarks/localiser_check.py [--data-dir DIR] [--exams 20]

Default data: the phantom (generated on first use). The baseline is the budget: before the check
there was no way to see the windows short of a fit and predict.py --explain, exam by exam.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "train"), str(ROOT / "submission")]
from mrnet.runtime import use_project_venv  # noqa: E402
use_project_venv()  # under .venv/ (setup.sh on an externally-managed Python) when this one lacks TensorFlow

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--data-dir", type=Path, help="MRNet-v1.0 root (default: the phantom)")
ap.add_argument("--exams", type=int, default=20)
args = ap.parse_args()
from phantom.writer import default_phantom  # noqa: E402

data_dir = args.data_dir or default_phantom(progress=False)  # generated before the clock starts
with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    run = subprocess.run([sys.executable, str(ROOT / "train" / "localise.py"), "--check", "--data-dir",
                          str(data_dir), "--exams", str(args.exams), "--out", tmp], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode:
        sys.exit(run.stderr)
    sizes = {p.name: p.stat().st_size / 2**20 for p in sorted(Path(tmp).glob("*.png"))}
print(run.stdout)
print(f"check: {args.exams} exams x 3 planes: {seconds:.1f} s   budget: 60 s   {'OK' if seconds <= 60 else 'OVER'}   "
      "montages " + ", ".join(f"{name} {mib:.1f} MiB" for name, mib in sizes.items()))
