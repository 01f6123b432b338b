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
    ap.add_argument("--schematic", type=Path,
                    help="also write a PNG of one knee's sagittal slices (a compartment, the notch) and a coronal "
                         "and an axial one, each beside the map of the structures drawn there")
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
    if args.schematic:
        schematic(args.seed, args.n_train, args.style, args.schematic)
        print(f"wrote {args.schematic}")


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


# structures of the schematic, by sub-label: (colour, the sub-labels drawn in it)
LEGEND = {
    "bone marrow": ("#d9c27a", ("femoral marrow", "tibial marrow", "patellar marrow")),
    "cortex": ("#6b5a2a", ("cortex",)),
    "cartilage": ("#5fb7e5", ("femoral cartilage", "tibial cartilage", "patellar cartilage")),
    "meniscus": ("#e8383d", ("medial meniscus", "lateral meniscus")),
    "ACL": ("#ff9f1c", ("ACL",)),
    "PCL, roots, collaterals": ("#b5651d", ("PCL", "meniscal root", "collateral ligament")),
    "tendons": ("#8e44ad", ("tendon",)),
    "fluid": ("#ffffff", ("fluid",)),
    "fat": ("#f4e7c5", ("subcutaneous fat", "Hoffa fat", "popliteal fat", "prefemoral fat")),
    "vessels, nerve": ("#2e86de", ("artery", "vein", "small vessels", "nerve")),
}


def schematic(seed, index, style, out):
    """One knee's slices beside the map of its structures: where each is, painted in order without
    signal or noise (render.paint's shapes and boxes), muscles grey."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    from phantom.anatomy import knee
    from phantom.exam import make_exam
    from phantom.render import Grid, rotation
    from phantom.shapes import signed_distance

    exam = make_exam(seed, index, style=style, with_anatomy=True)
    shapes, _ = knee(np.random.default_rng(5), style=style)
    colour = {label: to_rgb(c) for c, labels in LEGEND.values() for label in labels}
    pose = (rotation(np.random.default_rng(0), 0.0), np.zeros(3, np.float32), 1.0)
    views = [("sagittal", 0.3, "sagittal, a compartment"), ("sagittal", 0.5, "sagittal, the notch"),
             ("coronal", 0.45, "coronal"), ("axial", 0.42, "axial, the joint")]
    fig, axes = plt.subplots(2, len(views), figsize=(4 * len(views), 8.4))
    for col, (plane, where, title) in enumerate(views):
        series = exam["series"][plane]
        horn = exam["anatomy"][plane][:, 1:, 0].any(axis=1)
        k = int(np.flatnonzero(horn)[len(np.flatnonzero(horn)) // 2]) if plane != "sagittal" and horn.any() \
            else int(where * len(series))
        axes[0, col].imshow(series[k], cmap="gray", vmin=0, vmax=255)
        axes[0, col].set_title(f"{title} (exam {index}, slice {k + 1}/{len(series)})", fontsize=9)
        grid = Grid(plane, 31, 256, pose, [0.0, 0.0], 1.0)
        k2 = int(where * 31)
        rgb = np.zeros((256, 256, 3))
        for shape in shapes:  # painted in the renderer's order: later shapes cover earlier ones
            box = grid.box(shape)
            if box is None or not (box[0].start <= k2 < box[0].stop):
                continue
            sub = (slice(k2, k2 + 1), box[1], box[2])
            inside = signed_distance(shape, tuple(c[sub] for c in grid.knee))[0] < 0
            rgb[box[1], box[2]][inside] = colour.get(shape.label, (0.45, 0.45, 0.45) if shape.tissue == "muscle"
                                                     else (0.0, 0.0, 0.0))
        axes[1, col].imshow(rgb)
        axes[1, col].set_title(f"its structures ({plane}, knee {style}, no pose)", fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    fig.legend(handles=[Patch(color=c, label=name) for name, (c, _) in LEGEND.items()] +
               [Patch(color=(0.45, 0.45, 0.45), label="muscle")], loc="lower center", ncol=6, fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(out, dpi=70)
    plt.close(fig)


if __name__ == "__main__":
    main()
