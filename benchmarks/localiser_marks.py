"""A localiser fine-tuned on a reader's marks, against the number of marked exams, in one run.

    python benchmarks/localiser_marks.py                                  # marks on 5, 10 and 20 exams
    python benchmarks/localiser_marks.py --base runs/loc-geo --marked 10 --planes sagittal

The base is a localiser whose corpus never held the style it is measured on: by default a sagittal
one taught on the geometric drawing alone (made on first use, as `localise.py --corpus-styles
geometric --planes sagittal`, about 13 min on 2 cores), measured on the default phantom's anatomical
knee, as a site's own knees differ from the phantom. The marks are what a reader would give, drawn
from the default phantom's anatomy truth (learning/marks.truth_marks): every slice of the first N
training exams (or --per-exam of them, spread as the marking widget, exploring/marking.py, picks
them), each point moved by a Gaussian of --noise px (two readers marking the same real
slices were 4 px apart). Each row runs `localise.py --marks` as a user does (all N exams taught,
none held out), then measures on the default phantom's validation exams, which no mark is on:

- each horn's median centre error (px at 256) and slice-presence F1, and the ACL's; the menisci's F1
  leaving out the slices where a horn starts or ends, a sliver whose presence is a coin toss;
- meniscus windows where no meniscus is: on the sagittal notch slices and outside the joint;
- the fine-tuning's wall time, reading the marks and the corpus included.

Row 0 is the base without marks. The fine-tuning's defaults (learning/recipe.MarksConfig) were
compared on 40 other training exams (200-239, never marked), not on these validation exams: twice
the epochs, a doubled learning rate or a quarter of corpus slices moved no figure by more than
0.3 px or 0.01 F1. Issue 32's targets, at 10 marked exams: meniscus median error at
least 30 % below row 0, menisci presence F1 0.97 or more, fine-tuning within 3 minutes.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "train"), str(ROOT / "submission")]
from mrnet.runtime import use_project_venv  # noqa: E402

use_project_venv()

HORNS = ("meniscus A", "meniscus B")


def base_localiser(path, planes):
    """The base folder, made on first use from the geometric drawing alone."""
    import localise

    if not (path / "manifest.json").is_file():
        print(f"{path}: no localiser there; training one on the geometric drawing alone (about 13 min per plane)",
              flush=True)
        localise.main(["--out", str(path), "--corpus-styles", "geometric", "--planes", *planes, "--quiet"])
    return path


def f1_off_edges(presence, targets, exams):
    """The menisci's presence F1 leaving out the slices where a horn starts or ends (those whose
    truth differs from a neighbour's): there a horn is a sliver near the truth's 12 px cut
    (phantom/landmarks.MIN_AREA), and "present" is a coin toss for a reader as for the network."""
    import numpy as np

    out = []
    for k in (1, 2):
        truth, found, keep = targets[:, k, 0] > 0, presence[:, k] > 0.5, np.ones(len(exams), bool)
        same = exams[1:] == exams[:-1]
        change = same & (truth[1:] != truth[:-1])
        keep[1:] &= ~change
        keep[:-1] &= ~change
        tp = (truth & found & keep).sum()
        p, r = tp / max((found & keep).sum(), 1), tp / max((truth & keep).sum(), 1)
        out.append(float(2 * p * r / max(p + r, 1e-9)))
    return out


def row_text(n, per_exam, seconds, measured):
    """One table row: marked exams, each horn's median error and F1, the ACL's, the notch share, time."""
    horns = "  ".join(f"{measured[h]['median_px']:5.1f} px {measured[h]['f1']:.3f}" for h in HORNS)
    edges = "/".join(f"{f:.3f}" for f in measured["menisci F1 off the horns' first and last slices"])
    acl = f"{measured['ACL']['median_px']:5.1f} px {measured['ACL']['f1']:.3f}"
    wrong = measured.get("meniscus windows") or {}

    def share(key):
        return "   -" if wrong.get(key) is None else f"{wrong[key]:4.0%}"
    time_text = "     -" if seconds is None else f"{seconds:5.0f} s"
    slices = "-" if not n else "all" if not per_exam else str(per_exam)
    return f"{n:6d} {slices:>6s}  {horns}  {edges}  {acl}  {share('on notch slices')}  " \
           f"{share('on slices outside the joint')}  {time_text}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, default=ROOT / "runs" / "loc-geo-sag",
                    help="localise.py folder whose corpus lacks the evaluated style (%(default)s; made if absent)")
    ap.add_argument("--marked", type=int, nargs="+", default=[5, 10, 20], help="marked exams per row (%(default)s)")
    ap.add_argument("--per-exam", type=int, nargs="+", default=[0, 8],
                    help="marked slices per exam, spread over the stack as the marking widget picks them; 0: every "
                         "slice (%(default)s)")
    ap.add_argument("--noise", type=float, default=2.0, help="a reader's error per axis, px (%(default)s)")
    ap.add_argument("--planes", nargs="+", default=["sagittal"], choices=["sagittal", "coronal", "axial"])
    ap.add_argument("--seed", type=int, default=0, help="the marks' noise and the fine-tuning's draws (%(default)s)")
    ap.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = ap.parse_args(argv)
    from mrnet import runtime

    runtime.configure(False)
    import localise
    from learning.localiser import load_anatomy_slices, load_localiser, locate, precision
    from exploring.marking import spread_slices
    from learning.marks import truth_marks, write_marks
    from mrnet.layout import read_labels
    from phantom.writer import default_phantom

    base = base_localiser(args.base, args.planes)
    styles = json.loads((base / "manifest.json").read_text())["corpus"]["styles"]
    data_dir = default_phantom(progress=False)
    style = json.loads((data_dir / "phantom-truth.json").read_text())["style"]
    seen = "IN its corpus: not an unseen style" if style in styles else "a style it never saw"
    print(f"base {base} (corpus {', '.join(styles)}); marks and figures on {data_dir.parent.name} ({style}, {seen})")
    train_cases = list(read_labels(data_dir, ("train",)).loc["train"].index)
    results = {"base": str(base), "data": data_dir.parent.name, "noise_px": args.noise, "planes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for plane in args.planes:
            valid = load_anatomy_slices([data_dir], plane, "valid")
            print(f"\n[{plane}] {len(set(valid[2]))} validation exams, {len(valid[0])} slices; each horn and the ACL: "
                  "median error, presence F1")
            print(f"{'exams':>6s} {'slices':>6s}  {'meniscus A':>16s}  {'meniscus B':>16s}  {'F1 off edges':>12s}  "
                  f"{'ACL':>16s}  notch  outside  fine-tune")
            rows = []
            for n, per_exam in [(0, 0)] + [(n, k) for k in args.per_exam for n in args.marked]:
                folder, seconds = base, None
                if n:
                    marks = truth_marks(data_dir, "train", plane, train_cases[:n], noise_px=args.noise, seed=args.seed)
                    if per_exam:
                        counts = {}
                        for m in marks:
                            counts[m["case"]] = max(counts.get(m["case"], 0), m["slice"] + 1)
                        marks = [m for m in marks if m["slice"] in spread_slices(counts[m["case"]], per_exam)]
                    path = Path(tmp) / f"marks-{plane}-{n}-{per_exam}.jsonl"
                    write_marks(path, marks)
                    folder = Path(tmp) / f"loc-{plane}-{n}-{per_exam}"
                    start = time.perf_counter()
                    localise.main(["--marks", str(path), "--data-dir", str(data_dir), "--localiser", str(base),
                                   "--out", str(folder), "--hold-out", "0", "--seed", str(args.seed), "--quiet"])
                    seconds = time.perf_counter() - start
                centres, presence = locate(load_localiser(folder, plane), valid[0])
                measured = precision(centres, presence, valid[1], valid[2])
                measured["menisci F1 off the horns' first and last slices"] = f1_off_edges(presence, *valid[1:])
                rows.append({"marked_exams": n, "slices_per_exam": per_exam or None, "seconds": seconds,
                             "measured": measured})
                print(row_text(n, per_exam, seconds, measured), flush=True)
            results["planes"][plane] = rows
            at = {r["marked_exams"]: r for r in rows if not r["slices_per_exam"]}
            if 10 in at:
                before = [at[0]["measured"][h]["median_px"] for h in HORNS]
                after = [at[10]["measured"][h]["median_px"] for h in HORNS]
                f1 = [at[10]["measured"][h]["f1"] for h in HORNS]
                print(f"[{plane}] 10 marked exams: meniscus median error "
                      + ", ".join(f"{b:.1f} -> {a:.1f} px ({a / b - 1:+.0%})" for b, a in zip(before, after))
                      + f" (target -30 %); presence F1 {min(f1):.3f}-{max(f1):.3f} (target 0.97); "
                      f"fine-tuning {at[10]['seconds']:.0f} s (target 180 s)")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
