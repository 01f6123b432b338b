"""The bundle's manifest: what a user (or a script) needs to trust and run the frozen models.

Modelled on MONAI's bundle metadata - versions, input and output specs - and extended with the
training configuration, a fingerprint of the data and the validation metrics. The file hashes are
added by mrnet.bundle.write_bundle.
"""

import hashlib
import platform
import subprocess
from datetime import datetime, timezone

import _paths  # noqa: F401
from _paths import ROOT
from mrnet import preprocess
from mrnet.contract import PLANES, TASKS


def code_commit():
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "train", "submission/mrnet"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def data_fingerprint(labels):
    """sha256 over the label table and each case id: two bundles trained on the same exams agree."""
    text = labels.to_csv(lineterminator="\n")
    return {"labels_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "exams": {split: int((labels.index.get_level_values("split") == split).sum()) for split in ("train", "valid")}}


def build_manifest(config, data_dir, labels, table, combiner, input_size):
    import keras
    import numpy
    import sklearn
    import tensorflow

    return {
        "name": "mrnet-knee-submission",
        "description": "Per-plane 2-D CNNs with slice pooling and a logistic-regression plane combiner for the "
                       "MRNet competition (abnormal, ACL tear, meniscal tear).",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "code_commit": code_commit(),
        "libraries": {"tensorflow": tensorflow.__version__, "keras": keras.__version__, "numpy": numpy.__version__,
                      "scikit-learn": sklearn.__version__, "python": platform.python_version()},
        "preprocessing": preprocess.spec(input_size),
        "input_spec": {plane: {"endpoint": f"{plane}/serve", **preprocess.spec(input_size)} for plane in PLANES},
        "output_spec": {"tasks": list(TASKS), "planes": list(PLANES),
                        "per_plane": {"logits": {"dtype": "float32", "shape": [None, len(TASKS)]},
                                      "probabilities": {"dtype": "float32", "shape": [None, len(TASKS)],
                                                        "value_range": [0, 1]}},
                        "combined": "combiner.json applied to the nine plane logits -> (exams, 3) probabilities",
                        "csv_columns": list(TASKS)},
        "training": config,
        "data": {"dir": str(data_dir), "fingerprint": data_fingerprint(labels)},
        "metrics": {"valid_auc": table["valid"], "tune_auc": table["tune"],
                    "note": "valid: held out from training, model selection and the combiner; "
                            "tune: part of train used for early stopping and fitting the combiner"},
        "combiner": {"fit_on": combiner["fit_on"], "n_exams": combiner["n_exams"]},
    }
