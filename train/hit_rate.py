"""Do the explanations point at the lesion? A check on the phantom, where the lesion slices are known.

    python train/hit_rate.py [--bundle submission/bundle] [--data-dir PHANTOM] [--k 1 3]

For every validation exam with a tear (--task acl: an ACL tear; meniscus: a meniscal tear), the
bundle's `explain` endpoint scores each slice of the plane for the task; a hit is when one of the
k best-scored slices holds the tear (the generator records those slices in phantom-truth.json).
Chance is what k slices drawn at random would score on the same exams. With a crop model, the
decisive window too: a hit when the tear's centre lies inside it, chance a window drawn at random
among those the exam used for the task. Prints both, per k.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "submission"))  # the mrnet package, shared with predict.py
from mrnet.runtime import use_project_venv  # noqa: E402
use_project_venv()  # under .venv/ (setup.sh on an externally-managed Python) when this one lacks TensorFlow


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, default=ROOT / "submission" / "bundle")
    ap.add_argument("--data-dir", type=Path, help="phantom MRNet-v1.0 root (default: the default phantom)")
    ap.add_argument("--k", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--task", default="acl", choices=["acl", "meniscus"])
    ap.add_argument("--plane", default="sagittal", choices=["sagittal", "coronal", "axial"])
    args = ap.parse_args(argv)
    from phantom.writer import default_phantom

    data_dir = args.data_dir or default_phantom()
    from mrnet.infer import load_bundle
    from scoring.explanations import hit_rates

    _, _, models = load_bundle(args.bundle)
    finding = {"acl": "ACL tear", "meniscus": "meniscal tear"}[args.task]
    rates, n = hit_rates(models, data_dir, tuple(args.k), args.plane, args.task, finding)
    print(f"{finding} exams in valid: {n}")
    for k in args.k:
        hit, base = rates[k]
        print(f"top-{k} {args.plane} slices hold the tear: {hit:.1%}  (chance {base:.1%})")
    if "window" in rates:
        hit, base, exams = rates["window"]
        print(f"the decisive window holds the tear: {hit:.1%}  (chance {base:.1%}; {exams} exams with a window)")
    return rates, n


if __name__ == "__main__":
    main()
