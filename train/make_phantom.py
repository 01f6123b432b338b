"""Generate the synthetic knee phantom in the exact MRNet-v1.0 layout.

    python train/make_phantom.py --out data/MRNet-v1.0 --n-train 240 --n-valid 80 --seed 0
    python train/make_phantom.py --out faint/MRNet-v1.0 --rung faint --style geometric

The difficulty ladder: --rung names a preset of (lesion scale, lesion contrast): v3 (the default,
1 x 1), subtle (0.8 x 0.88), faint (0.6 x 0.75, about generator v2's tears); --lesion-scale and
--lesion-contrast set any other point. Every rung has the same exams, labels and lesion positions.
--style geometric draws and renders the knee another way (anatomy.py, render.py).
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "submission"))  # the mrnet package, shared with predict.py
from mrnet.runtime import use_project_venv  # noqa: E402
use_project_venv()  # under .venv/ (setup.sh on an externally-managed Python) when this one lacks TensorFlow

from phantom.anatomy import STYLES  # noqa: E402
from phantom.findings import RUNGS  # noqa: E402
from phantom.writer import DEFAULTS, write_phantom  # noqa: E402


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
    ap.add_argument("--rung", choices=sorted(RUNGS), help="preset lesion scale and contrast (default: v3)")
    ap.add_argument("--lesion-scale", type=float, help="multiplies every tear's size (1.0 = v3)")
    ap.add_argument("--lesion-contrast", type=float, help="multiplies every tear's fluid signal (1.0 = v3)")
    ap.add_argument("--style", default=DEFAULTS["style"], choices=STYLES, help="drawing and rendering (%(default)s)")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    ap.add_argument("--montage", type=Path, help="also write a PNG montage of the first exams (mid slices)")
    args = ap.parse_args(argv)
    scale, contrast = RUNGS[args.rung or "v3"]
    scale = args.lesion_scale if args.lesion_scale is not None else scale
    contrast = args.lesion_contrast if args.lesion_contrast is not None else contrast
    if not (0 < scale <= 3 and 0 < contrast <= 2):
        sys.exit(f"make_phantom: lesion scale {scale} and contrast {contrast} must lie in (0, 3] and (0, 2]")
    start = time.perf_counter()
    out = write_phantom(args.out, args.n_train, args.n_valid, args.seed, args.render_size, args.label_noise,
                        args.workers, lesion_scale=scale, lesion_contrast=contrast, style=args.style)
    print(f"wrote {args.n_train + args.n_valid} exams to {out} in {time.perf_counter() - start:.1f} s")
    if args.montage:
        montage(out, args.montage)
        print(f"wrote {args.montage}")


def montage(data_dir, out, rows=4):
    """Middle-ish slices of the first exams, three planes per row, with their findings."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mrnet.contract import PLANES
    from mrnet.layout import load_exam
    from phantom.writer import read_truth

    truth = read_truth(data_dir)["exams"]
    cases = sorted(truth)[:rows]
    fig, axes = plt.subplots(rows, 3, figsize=(9, 3 * rows))
    for r, case in enumerate(cases):
        exam = load_exam(data_dir, truth[case]["split"], case)
        for c, plane in enumerate(PLANES):
            hits = [k for v in truth[case]["lesion_slices"][plane].values() for k in v]
            k = hits[len(hits) // 2] if hits else exam[plane].shape[0] // 2
            axes[r, c].imshow(exam[plane][k], cmap="gray", vmin=0, vmax=255)
            axes[r, c].set_title(f"{case} {plane} {k + 1}/{exam[plane].shape[0]}", fontsize=8)
            axes[r, c].axis("off")
        axes[r, 0].text(0, 270, ", ".join(truth[case]["findings"]) or "normal", fontsize=8, va="top")
    fig.tight_layout()
    fig.savefig(out, dpi=70)
    plt.close(fig)


if __name__ == "__main__":
    main()
