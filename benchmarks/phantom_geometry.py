"""The phantom's sagittal geometry beside a real MRNet knee's (../shared/REAL_KNEE.md), in one run.

    python benchmarks/phantom_geometry.py               # 80 exams of each: default, geometric, randomised corpus
    python benchmarks/phantom_geometry.py --exams 20

Each figure is measured from the anatomy truth the way REAL_KNEE.md measured the real series
(phantom/geometry.py): median and 10-90 % range over the series, beside the real median and range.
A figure whose phantom median is outside the real range is marked OUTSIDE: the localiser would learn
another knee there. The exams are the default phantom's validation exams (seed 0, from index 240);
the corpus's are the randomised corpus's (its seed, learning/artefacts.py).
"""

import argparse
import multiprocessing as mp
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "train"), str(ROOT / "submission")]
from mrnet.runtime import use_project_venv  # noqa: E402

use_project_venv()

VARIANTS = {"default (anatomical)": dict(seed=0, style="anatomical", randomise=False),
            "geometric": dict(seed=0, style="geometric", randomise=False),
            "randomised corpus (anatomical)": dict(seed=7919, style="anatomical", randomise=True),
            "randomised corpus (geometric)": dict(seed=7919, style="geometric", randomise=True)}


def figures(index, seed, style, randomise):
    from phantom.exam import make_exam
    from phantom.geometry import exam_figures

    return exam_figures(make_exam(seed, index, with_masks=True, with_anatomy=True, style=style, randomise=randomise))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exams", type=int, default=80, help="exams of each variant (%(default)s)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    from phantom.geometry import outside_real, summarise, table

    failed = False
    for name in args.variants:
        start = time.perf_counter()
        with mp.get_context("fork").Pool(args.workers) as pool:
            per_series = pool.map(partial(figures, **VARIANTS[name]), range(240, 240 + args.exams))
        summary = summarise(per_series)
        print(f"\n{name}: {args.exams} sagittal series ({time.perf_counter() - start:.0f} s)")
        print("\n".join(table(summary)))
        outside = outside_real(summary)
        failed |= bool(outside) and not VARIANTS[name]["randomise"]
        print("every comparable median inside the real 10-90 % range" if not outside else
              "outside: " + ", ".join(f"{k} {m:g} (real {lo:g}-{hi:g})" for k, m, lo, hi in outside))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
