"""Where the test suite's time goes: CPU seconds per test, its subprocesses included, beside wall time.

    python benchmarks/suite_cpu.py                 # the README's test command, then the table
    python benchmarks/suite_cpu.py -- tests/test_predict.py -n 0    # any pytest arguments after --

The suite keeps both cores busy, so its wall time falls only when CPU work goes; pytest's own
--durations gives wall time, which a test waiting on a busy core inflates. This runs pytest with
this file as a plugin (each test's CPU: the worker's own and that of every process it waited for,
fit.py's plane processes and predict.py runs included), then prints the largest consumers and
each worker's totals. A fixture's cost lands on the first test that needs it. Processes that die
with a killed parent are never waited for, so their CPU is not counted (the kill-and-resume test's
killed run).
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT_ENV = "MRNET_SUITE_CPU_DIR"
if __name__ == "__main__":  # as a command: under .venv/ where setup.sh made one (as a plugin pytest is already there)
    sys.path.insert(0, str(ROOT / "submission"))
    from mrnet.runtime import use_project_venv
    use_project_venv()

import pytest  # noqa: E402


def _cpu():
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Plugin side: one line per test (CPU s, wall s, worker, node id) into the run's folder."""
    folder = os.environ.get(OUT_ENV)
    cpu, wall = _cpu(), time.perf_counter()
    yield
    if folder:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(Path(folder) / f"{worker}.tsv", "a") as f:
            f.write(f"{_cpu() - cpu:.1f}\t{time.perf_counter() - wall:.1f}\t{worker}\t{item.nodeid}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--top", type=int, default=25, help="tests to list, largest CPU first (25)")
    ap.add_argument("pytest_args", nargs="*", help="after --: passed to pytest (default: the README's command)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, OUT_ENV: folder,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH")]))}
        start = time.perf_counter()
        rc = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "suite_cpu", *args.pytest_args],
                             cwd=ROOT, env=env)
        wall = time.perf_counter() - start
        rows = [line.rstrip("\n").split("\t") for f in sorted(Path(folder).glob("*.tsv")) for line in open(f)]
    rows = [(float(cpu), float(w), worker, node) for cpu, w, worker, node in rows]
    print(f"\n{'CPU s':>7} {'wall s':>7}  test (a fixture's cost on the first test that needs it)")
    for cpu, w, _, node in sorted(rows, reverse=True)[:args.top]:
        print(f"{cpu:7.1f} {w:7.1f}  {node}")
    for worker in sorted({r[2] for r in rows}):
        mine = [r for r in rows if r[2] == worker]
        print(f"{worker}: {len(mine)} tests, {sum(r[0] for r in mine):.0f} CPU s, {sum(r[1] for r in mine):.0f} s busy")
    print(f"pytest: {wall:.0f} s wall, {sum(r[0] for r in rows):.0f} CPU s in all, {os.cpu_count()} cores; rc {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
