"""The upload archive: submission/ zipped with `submission/` at its root, and the proof that it works
the way the organisers run it (unpacked into an empty folder, predict.py run there in a fresh process).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

SKIP_DIRS = {"__pycache__", ".pytest_cache"}


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
