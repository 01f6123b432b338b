"""Train the localiser: per plane, a small network that finds the ACL and the menisci on every slice;
or check one on your own series before a long fit trusts it (--check).

    python train/localise.py --out runs/localiser                                 # corpus of both drawings
    python train/localise.py --out runs/loc-geo --corpus-styles geometric \\
        --measure-on .cache/phantom-v6-seed0-n240+80-r128-noise0.0/MRNet-v1.0   # precision on a style it never saw
    python train/localise.py --check --data-dir path/to/MRNet-v1.0 --exams 20 --out runs/check
    python train/localise.py --check --help                                       # the check's own flags
    python train/localise.py --marks marks.jsonl --data-dir path/to/MRNet-v1.0 --out runs/loc-marked
    python train/localise.py --marks marks.jsonl --help                           # fine-tuning's own flags

The corpus is the randomised phantom (learning/artefacts.py, generated on first use into the cache: its
own seed, so never an exam fit.py trains or is scored on; random contrast, coil, noise and blur per
stack, wider knee proportions and pose, soft-tissue clutter), with the anatomy truth the phantom
writes beside every series (phantom/landmarks.py). Each plane's network learns, per slice, a heat
map and a presence probability for each place (learning/localiser.py). Writes, whole or not at all,
`<out>/<plane>.weights.h5` and `<out>/manifest.json` (corpus, network, epochs, and the precision it
measured: median and 90th-percentile distance to the true centre in pixels at 256 and slice-presence
F1, on the corpus's held-out exams and on every --measure-on folder's valid split).
`fit.py --crops` trains one on first use and caches it, or takes `--localiser PATH`.

--check runs a localiser (the shipped one, or --localiser PATH) over the first --exams cases of a
split per plane: a montage per plane of every slice with the windows drawn, and per plane the share
of slices given each window, how far a window's centre jumps between neighbouring slices, and the
exams given no window (exploring/localisation.py).

--marks fine-tunes a localiser (the shipped one, or --localiser PATH) on a reader's marks (JSON
lines: case, plane, slice, place, row and col or absent; learning/marks.py), mixed with its corpus
(the base's own, from its manifest, unless a --corpus-* flag names another),
holds out a share of the marked exams and prints the precision on them before and after, and writes
a localiser folder for `fit.py --localiser PATH`, its manifest recording the marks and the figures.
"""

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "submission"))  # the mrnet package, shared with predict.py
from mrnet.runtime import use_project_venv  # noqa: E402
use_project_venv()  # under .venv/ (setup.sh on an externally-managed Python) when this one lacks TensorFlow

from learning.recipe import CheckConfig, LocaliseConfig, MarksConfig, parse  # noqa: E402


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--check" in argv:
        return check(parse(CheckConfig, __doc__, argv))
    if any(a == "--marks" or a.startswith("--marks=") for a in argv):
        return fine_tune(parse(MarksConfig, __doc__, argv, required=("marks", "data_dir", "out")))
    config = parse(LocaliseConfig, __doc__, argv, required=("out",))
    start = time.perf_counter()
    from mrnet import runtime

    runtime.configure(config.compute.verbose)
    from learning.localiser import localise

    out = localise(config)
    print(f"localiser: {out}  ({time.perf_counter() - start:.0f} s in all)")
    return out


def check(config):
    start = time.perf_counter()
    from mrnet import runtime

    runtime.configure(config.verbose)
    runtime.import_tensorflow()  # quietly, before Keras
    import matplotlib
    matplotlib.use("Agg")  # files only, no display
    from exploring.localisation import check as run_check
    from learning.artefacts import SHIPPED
    from phantom.writer import default_phantom

    data_dir = config.data_dir or default_phantom()
    folder = SHIPPED["localiser"] if config.localiser == "shipped" else Path(config.localiser)
    print(f"localiser: {folder}\ndata: {data_dir} ({config.split}, first {config.exams} cases per plane)")
    result = run_check(data_dir, folder, config.planes, config.split, config.exams, config.out, config.tile,
                       config.columns or None)
    print(f"wrote {', '.join(str(config.out / f'{p}.png') for p in config.planes)} and {config.out / 'check.json'}"
          f"  ({time.perf_counter() - start:.0f} s in all)")
    return result


def fine_tune(config):
    start = time.perf_counter()
    from mrnet import runtime

    runtime.configure(config.compute.verbose)
    from learning.marks import fine_tune as run_fine_tune
    from mrnet.problems import InputError

    try:
        out = run_fine_tune(config)
    except InputError as e:
        raise SystemExit(f"localise --marks: {e}") from None
    print(f"localiser: {out}  ({time.perf_counter() - start:.0f} s in all); use it with "
          f"python train/fit.py --localiser {out}")
    return out


if __name__ == "__main__":
    main()
