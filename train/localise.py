"""Train the localiser: per plane, a small network that finds the ACL and the menisci on every slice.

    python train/localise.py --out runs/localiser                                 # corpus of both drawings
    python train/localise.py --out runs/loc-geo --corpus-styles geometric \
        --measure-on .cache/phantom-v6-seed0-n240+80-r128-noise0.0/MRNet-v1.0   # precision on a style it never saw

The corpus is the randomised phantom (learning/artefacts.py, generated on first use into the cache: its
own seed, so never an exam fit.py trains or is scored on; random contrast, coil, noise and blur per
stack, wider knee proportions and pose, soft-tissue clutter), with the anatomy truth the phantom
writes beside every series (phantom/landmarks.py). Each plane's network learns, per slice, a heat
map and a presence probability for each place (learning/localiser.py). Writes, whole or not at all,
`<out>/<plane>.weights.h5` and `<out>/manifest.json` (corpus, network, epochs, and the precision it
measured: median and 90th-percentile distance to the true centre in pixels at 256 and slice-presence
F1, on the corpus's held-out exams and on every --measure-on folder's valid split).
`fit.py --crops` trains one on first use and caches it, or takes `--localiser PATH`.
"""

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "submission"))  # the mrnet package, shared with predict.py
from mrnet.runtime import use_project_venv  # noqa: E402
use_project_venv()  # under .venv/ (setup.sh on an externally-managed Python) when this one lacks TensorFlow

from learning.recipe import LocaliseConfig, parse  # noqa: E402


def main(argv=None):
    config = parse(LocaliseConfig, __doc__, argv, required=("out",))
    start = time.perf_counter()
    from mrnet import runtime

    runtime.configure(config.compute.verbose)
    from learning.localiser import localise

    out = localise(config)
    print(f"localiser: {out}  ({time.perf_counter() - start:.0f} s in all)")
    return out


if __name__ == "__main__":
    main()
