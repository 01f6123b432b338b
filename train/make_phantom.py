"""Generate the synthetic knee phantom in the exact MRNet-v1.0 layout.

    python train/make_phantom.py --out data/MRNet-v1.0 --n-train 240 --n-valid 80 --seed 0
"""

import argparse
import time

import _paths  # noqa: F401
from phantom.writer import DEFAULTS, write_phantom


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (becomes the MRNet-v1.0 root)")
    ap.add_argument("--n-train", type=int, default=DEFAULTS["n_train"], help="training exams (%(default)s)")
    ap.add_argument("--n-valid", type=int, default=DEFAULTS["n_valid"], help="validation exams (%(default)s)")
    ap.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="same seed, same bytes (%(default)s)")
    ap.add_argument("--render-size", type=int, default=DEFAULTS["render_size"], choices=(64, 128, 256),
                    help="in-plane grid the anatomy is rendered on before resampling to 256 (%(default)s)")
    ap.add_argument("--label-noise", type=float, default=DEFAULTS["label_noise"],
                    help="probability of flipping each label, as report-derived labels do (%(default)s)")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    out = write_phantom(args.out, args.n_train, args.n_valid, args.seed, args.render_size, args.label_noise,
                        args.workers)
    print(f"wrote {args.n_train + args.n_valid} exams to {out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
