"""Do the explanations point at the lesion? A check on the phantom, where the lesion slices are known.

    python train/hit_rate.py [--bundle submission/bundle] [--data-dir PHANTOM] [--k 1 3]

For every validation exam with an ACL tear, the bundle's `explain` endpoint scores each sagittal
slice for the ACL task; a hit is when one of the k best-scored slices holds the tear (the
generator records those slices in phantom-truth.json). Chance is what k slices drawn at random
would score on the same exams. Prints both, per k.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "submission"))  # the mrnet package, shared with predict.py


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=ROOT / "submission" / "bundle")
    ap.add_argument("--data-dir", type=Path, help="phantom MRNet-v1.0 root (default: the default phantom)")
    ap.add_argument("--k", type=int, nargs="+", default=[1, 3])
    args = ap.parse_args(argv)
    if args.data_dir is None:
        from phantom.writer import default_phantom
        args.data_dir = default_phantom()
    from mrnet.infer import load_bundle
    from scoring.explanations import hit_rates

    _, _, models = load_bundle(args.bundle)
    rates, n = hit_rates(models, args.data_dir, tuple(args.k))
    print(f"ACL-tear exams in valid: {n}")
    for k, (hit, base) in rates.items():
        print(f"top-{k} sagittal slices hold the tear: {hit:.1%}  (chance {base:.1%})")
    return rates, n


if __name__ == "__main__":
    main()
