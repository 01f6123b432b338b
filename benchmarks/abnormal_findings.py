"""What the abnormal score sees: its ROC AUC for each kind of abnormal exam against the normal ones.

    python benchmarks/abnormal_findings.py runs/latest            # a fit.py run folder on a phantom
    python benchmarks/abnormal_findings.py runs/a runs/b --split tune valid

An abnormal exam of the phantom holds a tear (ACL or meniscal) or only other findings (effusion,
bone-marrow oedema, a cartilage defect), as phantom-truth.json lists them. A score that has learnt
"abnormal" ranks both kinds above the normal exams; one that has learnt only the tears ranks the
exams with other findings like normal ones (AUC near 0.5 on that row). For every plane's abnormal
logit and the combined abnormal probability (learning/combine.py fit on the run's tuning exams, as
fit.py does), it prints the AUC of: every abnormal exam, exams with a tear, exams with other
findings only, and each of those findings alone, each against the split's normal exams.

Measured (2 cores, phantom v6, default fit, seed 0): see docs/experiments.md.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "train"), str(ROOT / "submission")]

from combiner import recorded_split  # noqa: E402  (benchmarks/combiner.py)
from mrnet import combiner as comb  # noqa: E402
from mrnet.contract import PLANES  # noqa: E402
from scoring.metrics import auc_or_none  # noqa: E402

OTHER = ("effusion", "oedema", "cartilage defect")


def groups(findings):
    """{row name: boolean mask over the exams} of the abnormal kinds."""
    tear = np.array([any("tear" in f for f in fs) for fs in findings])
    abnormal = np.array([bool(fs) for fs in findings])
    out = {"every abnormal exam": abnormal, "a tear": tear, "other findings only": abnormal & ~tear}
    for kind in OTHER:
        out[f"  {kind} alone"] = np.array([fs == [kind] for fs in findings])
    return out


def scores(folder, names):
    """{split: ({column: abnormal score}, findings per exam)} of one run folder."""
    from learning.combine import fit_combiner

    data_dir, seed, _, splits = recorded_split(folder, argparse.Namespace(data_dir=None, seed=None,
                                                                          tune_fraction=None))
    truth = data_dir / "phantom-truth.json"
    if not truth.is_file():
        sys.exit(f"abnormal_findings: {data_dir} has no phantom-truth.json: the run was not on a phantom")
    exams = json.loads(truth.read_text())["exams"]
    saved = {p: np.load(folder / p / "logits.npz", allow_pickle=False) for p in PLANES}
    combiner = fit_combiner({p: saved[p]["tune"] for p in PLANES}, splits["tune"].values, fit_on="tune", seed=seed)
    out = {}
    for name in names:
        logits = {p: saved[p][name] for p in PLANES}
        columns = {p: logits[p][:, 0] for p in PLANES}
        columns["combined"] = comb.apply(combiner, logits)[:, 0]
        out[name] = (columns, [exams[case]["findings"] for case in splits[name].index])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="fit.py run folders (report.json and <plane>/logits.npz)")
    ap.add_argument("--split", nargs="+", default=["valid"], choices=("fit", "tune", "valid"),
                    help="splits to read (%(default)s)")
    args = ap.parse_args(argv)
    for folder in args.runs:
        for name, (columns, findings) in scores(folder, args.split).items():
            normal = np.array([not fs for fs in findings])
            print(f"\n{folder}, {name}: abnormal score's ROC AUC against the {int(normal.sum())} normal exams")
            print(f"{'':26s}{'exams':>6s}" + "".join(f"{c:>10s}" for c in columns))
            for row, mask in groups(findings).items():
                keep = mask | normal
                cells = [auc_or_none(mask[keep].astype(int), s[keep]) for s in columns.values()]
                print(f"{row:26s}{int(mask.sum()):6d}" + "".join("         -" if v is None else f"{v:10.3f}"
                                                                   for v in cells))


if __name__ == "__main__":
    main()
