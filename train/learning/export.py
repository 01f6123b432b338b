"""Freeze training's results into what the bundle holds: one SavedModel per plane, and the manifest.

A plane's SavedModel runs in predict with no model code.

The signature is flat slices plus per-exam slice counts: `model.export()` would silently turn a
ragged input into a dense one, and `input_signature` rejects a RaggedTensorSpec.

A second endpoint, `explain`, returns what the slice pooling saw: each slice's own logits (the
exam head applied to that slice's pooled features alone) and a class activation map per slice
and task (the head's weights applied to the backbone's feature map, before spatial pooling).
"""

import hashlib
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import keras
import tensorflow as tf

from mrnet import preprocess
from mrnet.contract import PLANES, TASKS

ROOT = Path(__file__).resolve().parents[2]

SIGNATURE = [tf.TensorSpec([None, 256, 256], tf.uint8, name="slices"),
             tf.TensorSpec([None], tf.int32, name="counts")]


def explain_parts(model):
    """(feature model: inputs -> {'map': (N, h, w, C) whole-slice feature map, and with crops
    'windows': (N, K) each window's tear score}; the whole-slice head; the window mixing head or
    None; the space-pool mode)."""
    outputs = {"map": model.get_layer("feature_map").output}
    names = {layer.name for layer in model.layers}
    if "window_scores" in names:
        outputs["windows"] = model.get_layer("window_scores").output
    features = keras.Model(model.inputs, outputs)
    space_pool = model.get_layer("space_pool")
    mode = "avgmax" if isinstance(space_pool, keras.layers.Concatenate) else (
        "max" if isinstance(space_pool, keras.layers.GlobalMaxPooling2D) else "avg")
    mixing = model.get_layer("window_logits") if "window_logits" in names else None
    return features, model.get_layer("logits"), mixing, mode


def slice_scores(feature_map, head, mode, windows=None, gates=None, mixing=None):
    """Per-slice logits (the model on that slice alone: the exam's logits were the exam that one
    slice), whole-slice CAMs and, with crops, each window's share of its slice's logits (N, K, 3);
    float32 whatever the compute policy."""
    from learning.layers import NO_WINDOW
    from mrnet.contract import PLACE_KIND

    fmap = tf.cast(feature_map, tf.float32)
    kernel, bias = tf.cast(head.kernel, tf.float32), tf.cast(head.bias, tf.float32)
    channels = fmap.shape[-1]
    avg, mx = tf.reduce_mean(fmap, axis=[1, 2]), tf.reduce_max(fmap, axis=[1, 2])
    if mode == "avgmax":
        pooled, per_pixel = tf.concat([avg, mx], -1), kernel[:channels] + kernel[channels:]
    else:
        pooled, per_pixel = (avg if mode == "avg" else mx), kernel
    logits, cam = pooled @ kernel + bias, tf.einsum("nhwc,ct->nhwt", fmap, per_pixel)
    if windows is None:
        return logits, cam, None
    mix, mix_bias = tf.cast(mixing.kernel, tf.float32), tf.cast(mixing.bias, tf.float32)
    used = gates > 0
    scores = tf.where(used, tf.cast(windows, tf.float32), 0.0)
    rows = tf.gather(mix, list(PLACE_KIND))  # (K, 3): what a window of each place says of each task
    shares = scores[..., None] * rows[None]  # (N, K, 3)
    best = tf.where(used, tf.cast(windows, tf.float32), NO_WINDOW)
    votes = tf.stack([best[:, 0], tf.reduce_max(best[:, 1:], axis=1)], axis=1)
    votes = tf.where(votes > NO_WINDOW / 2, votes, 0.0)
    return logits + votes @ mix + mix_bias, cam, shares


def export_plane(models, folder, localiser=None):
    """One plane's SavedModel from its trained model, or from an ensemble's members (a list: their
    logits, slice scores and maps averaged): raw uint8 slices in (the front: block average, and with
    crops the frozen localiser and its windows, learning/crops.py, shared by the members), three
    logits out."""
    from learning.crops import WINDOW, front
    from learning.layers import exam_ids, segment_sum

    models = models if isinstance(models, (list, tuple)) else [models]
    model = models[0]  # the members share their inputs and shape
    archive = keras.export.ExportArchive()
    for member in models:
        archive.track(member)
    if localiser is not None:
        archive.track(localiser)
    parts_of = [explain_parts(member) for member in models]
    for features, *_ in parts_of:
        archive.track(features)
    spec = model.input["slices"]
    input_size = spec.shape[1]
    pooled = spec.dtype == "float32"
    crops = "crops" in model.input

    def inputs(slices, counts):
        seen = front(slices, input_size, pooled, localiser if crops else None)
        return {name: seen[name] for name in model.input if name != "counts"} | {"counts": counts}, seen

    def mean(values):
        return tf.add_n(values) / float(len(values))

    @tf.function(input_signature=SIGNATURE)
    def serve(slices, counts):
        x, seen = inputs(slices, counts)
        logits = mean([tf.cast(member(x, training=False), tf.float32) for member in models])
        out = {"logits": logits, "probabilities": tf.sigmoid(logits)}
        if crops:  # per exam, the slices on which each place's window was used: 0 everywhere is a fallback
            ids = exam_ids(counts, tf.shape(slices)[0])
            out["localised"] = segment_sum(seen["gates"], ids, tf.shape(counts)[0])
        return out

    @tf.function(input_signature=SIGNATURE)
    def explain(slices, counts):
        x, seen = inputs(slices, counts)
        scores = []
        for features, head, mixing, mode in parts_of:
            parts = features(x, training=False)
            scores.append(slice_scores(parts["map"], head, mode, parts.get("windows"), seen.get("gates"), mixing))
        out = {"slice_logits": mean([s[0] for s in scores]), "cam": mean([s[1] for s in scores])}
        if crops:  # each place's window on each slice: its share of the slice's logits, where it was cut
            corner = tf.round(seen["centres"]) - WINDOW // 2
            out.update(window_logits=mean([s[2] for s in scores]), gates=seen["gates"], presence=seen["presence"],
                       boxes=tf.concat([corner, corner + WINDOW], axis=-1))  # top, left, bottom, right
        return out

    archive.add_endpoint("serve", serve)
    archive.add_endpoint("explain", explain)
    archive.write_out(str(folder), verbose=False)


# The manifest: what a user (or a script) needs to trust and run the frozen models. Modelled on
# MONAI's bundle metadata - versions, input and output specs - and extended with the training
# configuration, a fingerprint of the data and the validation metrics. The file hashes are added
# by mrnet.bundle.write_bundle.

def code_commit():
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "train", "submission/mrnet"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def data_fingerprint(labels, data_dir=None):
    """sha256 over the label table and each case id, and over each label CSV as it is on disk: two
    bundles trained on the same exams agree, wherever each user keeps the data."""
    text = labels.to_csv(lineterminator="\n")
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(Path(data_dir).glob("*-*.csv")) if p.stem.split("-")[-1] in TASKS} if data_dir else {}
    return {"labels_sha256": hashlib.sha256(text.encode()).hexdigest(), "label_files_sha256": files,
            "exams": {split: int((labels.index.get_level_values("split") == split).sum()) for split in ("train", "valid")}}


def data_name(data_dir):
    """What the data is called, never where it lives: the phantom's cache key (which holds every
    generator parameter) or the user's folder name. The manifest travels in the upload archive."""
    data_dir = Path(data_dir)
    if (data_dir / "phantom-truth.json").is_file():
        return f"phantom {data_dir.parent.name}" if data_dir.parent.name.startswith("phantom-") else "phantom"
    return data_dir.name


def portable_config(config):
    """fit.py's configuration (learning/recipe.FitConfig) as the manifest keeps it: the output folders
    dropped, the data by name, and every input path (a --weights file, an --init or --localiser
    folder) by name and a file's sha256, never by where it lies on this machine."""
    from learning.recipe import to_dict

    out = to_dict(config)
    for key in ("bundle", "run_dir"):
        out.pop(key)
    out["data_dir"] = None if config.data_dir is None else data_name(config.data_dir)
    out["model"]["weights"] = portable_path(config.model.weights)
    for key in ("init", "localiser"):
        out["training"][key] = portable_path(getattr(config.training, key))
    return out


def portable_path(value):
    """A file as its name and sha256, a folder as its name, a keyword (none, auto, imagenet ...) as itself."""
    if isinstance(value, dict):
        return {k: portable_path(v) for k, v in value.items()}
    if value is None:
        return None
    path = Path(value)
    if path.is_file():
        return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return path.name if path.is_dir() else str(value)


def artefact_record(folder):
    """What the manifest says of an artefact folder the bundle was made with (a localiser, a
    pretrained crop CNN): its name and manifest's record, by name and hash, not by path."""
    if folder is None:
        return None
    import json

    found = json.loads((Path(folder) / "manifest.json").read_text())
    return {"folder": Path(folder).name, **{k: found[k] for k in ("what", "format_version", "made_by", "model",
                                                                  "corpus", "training", "measured", "files",
                                                                  "base", "fine_tuned")
                                            if k in found}}


def build_manifest(config, data_dir, labels, table, combiner, init, localiser):
    """`init`: {plane: pretrained weights file} the planes started from (fit.py --init); `localiser`:
    the folder that placed the windows, or None."""
    import numpy
    import sklearn

    input_size = config.model.input_size
    return {
        "name": "mrnet-knee-submission",
        "description": "Per-plane 2-D CNNs with slice pooling and a logistic-regression plane combiner for the "
                       "MRNet competition (abnormal, ACL tear, meniscal tear).",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "code_commit": code_commit(),
        "libraries": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": numpy.__version__,
                      "scikit-learn": sklearn.__version__, "python": platform.python_version()},
        "preprocessing": preprocess.spec(input_size),
        "input_spec": {plane: {"endpoint": f"{plane}/serve", **preprocess.spec(input_size)} for plane in PLANES},
        "output_spec": {"tasks": list(TASKS), "planes": list(PLANES),
                        "per_plane": {"logits": {"dtype": "float32", "shape": [None, len(TASKS)]},
                                      "probabilities": {"dtype": "float32", "shape": [None, len(TASKS)],
                                                        "value_range": [0, 1]}},
                        "combined": "combiner.json applied to the nine plane logits -> (exams, 3) probabilities",
                        "csv_columns": list(TASKS)},
        "configuration": portable_config(config),
        "init": {plane: portable_path(path) for plane, path in init.items()},
        "ensemble": {"members_per_plane": config.training.ensemble,
                     "seeds": [config.model.seed + m for m in range(config.training.ensemble)],
                     "combined": "each plane's SavedModel averages its members' logits"},
        "pretrained": artefact_record(Path(next(iter(init.values()))).parent) if init else None,
        "localiser": artefact_record(localiser),
        "data": {"name": data_name(data_dir), "fingerprint": data_fingerprint(labels, data_dir)},
        "metrics": {"valid_auc": table["valid"], "tune_auc": table["tune"],
                    "note": "valid: held out from training, model selection and the combiner; "
                            "tune: part of train used for early stopping and fitting the combiner"},
        "combiner": {"fit_on": combiner["fit_on"], "n_exams": combiner["n_exams"],
                     "choice": {task: {"choice": entry.get("choice", "lr9"), "text": entry.get("choice_text"),
                                       "why": entry.get("why", entry.get("note"))}
                                for task, entry in combiner["tasks"].items()}},
    }
