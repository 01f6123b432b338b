"""The localiser and the pretrained crop CNN the repository ships (train/artefacts/), remade and
compared with the shipped figures in one run.

    python benchmarks/shipped_artefacts.py            # retrain both into runs/shipped-check/, print beside the shipped
    python benchmarks/shipped_artefacts.py --make     # (re)make the shipped ones in train/artefacts/ (commit them)

Both are what `fit.py --localiser retrain --init retrain` would train for the default recipe: the
recipe's localiser and crop-CNN pretraining (learning/recipe.py) on its randomised corpus
(learning/artefacts.py), on this machine's cores. fit.py uses the shipped ones only while they were
made with exactly the recipe it runs (tests/test_artefacts.py checks that they are); the same seed
gives the same corpus, and the weights differ from run to run only by the arithmetic's order, so
the figures printed here should agree with the shipped ones within a few tenths of a pixel.
Takes about 45 minutes on 2 CPU cores (corpus 1.5 min, localiser 41 min, crop CNN 2.5 min).
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "train"), str(ROOT / "submission")]
from mrnet.runtime import use_project_venv  # noqa: E402

use_project_venv()


def figures(folder, kind):
    """{plane: one line of what the folder's manifest measured}."""
    from learning.localiser import precision_text

    measured = json.loads((Path(folder) / "manifest.json").read_text())["measured"]
    if kind == "localiser":
        return {p: precision_text(m["corpus held out"]) for p, m in measured["precision"].items()}
    return {p: "  ".join(f"{k} {v:.3f}" for k, v in m.items() if v is not None)
            for p, m in measured["held_out_auc"].items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--make", action="store_true", help="write the shipped folders themselves")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "shipped-check", help="where the check retrains")
    ap.add_argument("--only", choices=["localiser", "pretrained"], help="one of the two")
    args = ap.parse_args(argv)
    from dataclasses import replace

    from mrnet import runtime

    runtime.configure(False)
    from learning.artefacts import SHIPPED, localiser_config, pretrain_config
    from learning.localiser import localise
    from learning.pretraining import pretrain
    from learning.recipe import FitConfig, resolve_fit

    config = resolve_fit(FitConfig())
    config = replace(config, compute=replace(config.compute, quiet=True))
    made_by = "python benchmarks/shipped_artefacts.py" + (" --make" if args.make else "")
    for kind in [args.only] if args.only else ["localiser", "pretrained"]:
        out = SHIPPED[kind] if args.make else args.out / SHIPPED[kind].name
        start = time.perf_counter()
        if kind == "localiser":
            folder = localise(localiser_config(config, out), made_by)
        else:
            folder = pretrain(pretrain_config(config, out), made_by)
        seconds = time.perf_counter() - start
        print(f"\n{kind}: {folder} in {seconds:.0f} s")
        shipped = figures(SHIPPED[kind], kind) if (SHIPPED[kind] / "manifest.json").is_file() else {}
        for plane, line in figures(folder, kind).items():
            print(f"  {plane:9s} now:     {line}")
            if not args.make:
                print(f"  {'':9s} shipped: {shipped.get(plane, 'none shipped')}")


if __name__ == "__main__":
    main()
