"""Where a localiser puts its windows on a phantom style it may never have seen, in one run.

    python benchmarks/localiser_precision.py --localiser runs/loc-geo --style anatomical
    python benchmarks/localiser_precision.py --localiser runs/loc-geo runs/loc-both --style anatomical --bad 40

Per localiser folder (localise.py's) and plane, on the validation exams of the phantom of `--style`
(the default phantom for anatomical, its geometric twin otherwise; generated on first use):

- each place's median and 90th-percentile centre error (px at 256) and slice-presence F1;
- meniscus windows used where no meniscus is: the share of sagittal notch slices (the cruciates and
  no horn, as on a real knee) and of the slices outside the joint (phantom/geometry.py);
- bad stacks: of `--bad` exams of that style whose every stack misses the knee (pure soft tissue or
  air, as the unusable real stacks are), the share given a meniscus window on any slice.

Leave the evaluated style out of the localiser's corpus (`localise.py --corpus-styles`): a figure on a
style the localiser learnt from says little about a real knee.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "train"), str(ROOT / "submission")]
from mrnet.runtime import use_project_venv  # noqa: E402

use_project_venv()


def bad_stacks(style, count, seed=4242):
    """{plane: [uint8 series]} of `count` exams whose every stack misses the knee."""
    from mrnet.contract import PLANES
    from phantom.exam import make_exam

    out = {plane: [] for plane in PLANES}
    for index in range(count):
        exam = make_exam(seed, index, style=style, bad_stacks={p: "out of field of view" for p in PLANES})
        for plane in PLANES:
            out[plane].append(exam["series"][plane])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--localiser", type=Path, nargs="+", required=True, help="localise.py folders")
    ap.add_argument("--style", default="anatomical", choices=["anatomical", "geometric"])
    ap.add_argument("--data-dir", type=Path, help="a phantom folder with anatomy truth (default: the style's phantom)")
    ap.add_argument("--bad", type=int, default=40, help="exams whose stacks miss the knee (%(default)s)")
    ap.add_argument("--planes", nargs="+", default=["sagittal", "coronal", "axial"])
    ap.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    from mrnet import runtime

    runtime.configure(False)
    import numpy as np

    from learning.localiser import load_anatomy_slices, load_localiser, locate, precision, precision_text
    from phantom.writer import default_phantom

    data_dir = args.data_dir or default_phantom(progress=False, style=args.style)
    bad = bad_stacks(args.style, args.bad) if args.bad else None
    results = {}
    for folder in args.localiser:
        manifest = json.loads((folder / "manifest.json").read_text())
        styles = manifest["corpus"]["styles"]
        seen = " (the evaluated style is in its corpus)" if args.style in styles else " (a style it never saw)"
        print(f"\n{folder}: corpus {', '.join(styles)}; evaluated on {args.style}{seen}")
        results[str(folder)] = {}
        for plane in args.planes:
            model = load_localiser(folder, plane)
            slices, targets, exams = load_anatomy_slices([data_dir], plane, "valid")
            measured = precision(*locate(model, slices), targets, exams)
            if bad is not None:
                fired = [bool((locate(model, series)[1][:, 1:] > 0.5).any()) for series in bad[plane]]
                measured["bad stacks given a meniscus window"] = float(np.mean(fired))
            results[str(folder)][plane] = measured
            extra = f"; bad stacks given a meniscus window {measured['bad stacks given a meniscus window']:.0%}" \
                if bad is not None else ""
            print(f"  {plane:9s} {precision_text(measured)}{extra}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
