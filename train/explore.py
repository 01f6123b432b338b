"""Explore an MRNet-layout dataset: counts, label statistics, slice counts, suspicious stacks, one case.

    python train/explore.py                              # the phantom (generated on first use)
    python train/explore.py --data-dir path/to/MRNet-v1.0 --out-dir runs/explore
    python train/explore.py --case 1130 --out case.png --gif case.gif

Interactive, in Jupyter: notebooks/explore.ipynb (exploring.viewer.browse)
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "submission"))  # the mrnet package, shared with predict.py
from mrnet.runtime import use_project_venv  # noqa: E402
use_project_venv()  # under .venv/ (setup.sh on an externally-managed Python) when this one lacks TensorFlow


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, help="MRNet-v1.0 root (default: the phantom)")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "runs" / "explore",
                    help="overview PNG and stacks CSV go here (%(default)s)")
    ap.add_argument("--case", help="show one case (its split is found automatically)")
    ap.add_argument("--slices", type=int, nargs=3, metavar=("SAG", "COR", "AX"), help="slice per plane (0-based)")
    ap.add_argument("--out", type=Path, help="with --case: PNG of the three planes")
    ap.add_argument("--gif", type=Path, help="with --case: animated GIF scrolling the slices")
    return ap.parse_args(argv)


def overview(data_dir, out_dir):
    from exploring.overview import plot_overview, print_summary, scan

    labels, stats = scan(data_dir)
    print_summary(labels, stats)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats.to_csv(out_dir / "stacks.csv", index=False)
    plot_overview(labels, stats, out_dir / "overview.png")
    print(f"\nwrote {out_dir / 'overview.png'} and {out_dir / 'stacks.csv'}")
    return stats


def show_case(data_dir, case, slices, out, gif):
    from mrnet.contract import PLANES
    from mrnet.layout import case_id, load_exam, series_path
    from exploring.viewer import case_gif, case_png

    case = case_id(case)
    split = next((s for s in ("train", "valid") if series_path(data_dir, s, "sagittal", case).is_file()), None)
    if split is None:
        sys.exit(f"explore: case {case} not found under {data_dir}/train or /valid")
    exam = load_exam(data_dir, split, case)
    chosen = dict(zip(PLANES, slices)) if slices else None
    if out:
        case_png(exam, out, chosen, f"{split} case {case}")
        print(f"wrote {out}")
    if gif:
        case_gif(exam, gif)
        print(f"wrote {gif}")


def main(argv=None):
    args = parse_args(argv)
    from mrnet.problems import InputError
    from mrnet.validate import validate_dataset
    from phantom.writer import default_phantom

    data_dir = args.data_dir or default_phantom()
    try:
        validate_dataset(data_dir)
    except InputError as e:
        sys.exit(f"explore: {e}")
    if args.case:
        if not (args.out or args.gif):
            sys.exit("explore: --case needs --out case.png and/or --gif case.gif")
        show_case(data_dir, args.case, args.slices, args.out, args.gif)
    else:
        overview(data_dir, args.out_dir)


if __name__ == "__main__":
    main()
