"""Pretrain each plane's network on a randomised phantom corpus with labels from its truth, for fit.py --init.

    python train/pretrain.py --out runs/pretrained --crops            # the crop CNN, on windows (both drawings)
    python train/pretrain.py --out runs/pre-geo --crops --corpus-styles geometric   # leave the anatomical one out
    python train/pretrain.py --out runs/pre-slices --no-crops         # the whole-slice model, on slices
    python train/fit.py --crops --init runs/pretrained                # exam-level training from it

The corpus is generated on first use into the cache (phantom exams of their own seed, never those
fit.py trains or is evaluated on), with a random contrast, coil, noise, blur and lesion size per
stack (learning/artefacts.py). With --crops (--target windows) every window the crop branch would see,
cut at the true place of the ACL or a meniscus, is labelled by whether a tear lies in it; without
(--target slices) every slice is a one-slice exam (learning/pretraining.py). The network is built
from the same model flags as fit.py's (learning/recipe.py), so the weights load into fit.py's model
as they are. Writes, whole or not at all, `<out>/<plane>.weights.h5` and `<out>/manifest.json`
(corpus, target and model shape, epochs, held-out AUCs, sha256 of each file).
`fit.py --init retrain` pretrains with its own flags on first use and caches the result.
"""

import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "submission"))  # the mrnet package, shared with predict.py
from mrnet.runtime import use_project_venv  # noqa: E402
use_project_venv()  # under .venv/ (setup.sh on an externally-managed Python) when this one lacks TensorFlow

from learning.recipe import PretrainConfig, parse  # noqa: E402

warnings.filterwarnings("ignore", message=".*ran out of data.*")


def main(argv=None):
    config = parse(PretrainConfig, __doc__, argv, required=("out",))
    start = time.perf_counter()
    from mrnet import runtime

    runtime.configure(config.compute.verbose)
    from learning.pretraining import pretrain

    out = pretrain(config)
    print(f"pretrained: {out}  ({time.perf_counter() - start:.0f} s in all)")
    return out


if __name__ == "__main__":
    main()
