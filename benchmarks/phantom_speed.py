"""Time generating the default phantom demo set, against a 60 s budget.

    python benchmarks/phantom_speed.py [--n-train 240 --n-valid 80] [--workers N]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "train"), str(ROOT / "submission")]
from mrnet.runtime import use_project_venv  # noqa: E402
use_project_venv()  # under .venv/ (setup.sh on an externally-managed Python) when this one lacks TensorFlow
from phantom.writer import DEFAULTS, write_phantom  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--n-train", type=int, default=DEFAULTS["n_train"])
ap.add_argument("--n-valid", type=int, default=DEFAULTS["n_valid"])
ap.add_argument("--workers", type=int, default=os.cpu_count())
args = ap.parse_args()
with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    write_phantom(Path(tmp) / "MRNet-v1.0", args.n_train, args.n_valid, workers=args.workers, progress=False)
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in Path(tmp).rglob("*")) / 2**30
exams = args.n_train + args.n_valid
print(f"phantom: {exams} exams, {args.workers} worker(s), {os.cpu_count()} cores: {seconds:.1f} s "
      f"({exams / seconds:.1f} exams/s, {size:.2f} GiB)   budget: 60 s   {'OK' if seconds <= 60 else 'OVER'}")
