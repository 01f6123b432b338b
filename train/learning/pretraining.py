"""Synthetic pretraining: the phantom, which knows on which slices every lesion lies, teaches each
plane's model what a tear looks like before exam labels have to find it.

Exam labels say only that a tear is somewhere in about 30 slices; a model trained from them alone
did not find small lesions (README: Learnability). Here every slice of a randomised phantom corpus
(phantom.exam.make_exam(randomise=True): random contrast, coil, noise, blur and lesion size per
stack, after SynthSeg) is its own one-slice exam, labelled from the generator's truth. The network
is fit.py's own model (build_model with the same flags), so its weights load straight into the
exam-level training that follows (fit.py --init).
"""

import hashlib
import json
from pathlib import Path

import numpy as np

from mrnet.contract import TASKS
from mrnet.layout import read_labels, series_path
from mrnet.preprocess import block_average
from mrnet.series import header_info, read_data

# The build_model flags a pretrained folder is tied to (its manifest records them).
MODEL_FLAGS = ("backbone", "width", "pooling", "space_pool", "input_size", "augment", "rotate", "shift", "seed")


def slice_targets(exam, plane, n_slices):
    """(n_slices, 3) labels of one stack from the generator's truth: a slice shows a tear when the
    tear's voxels are on it; it shows an abnormality when any lesion is on it, or when the exam has
    an effusion (fluid fills the recesses on most slices)."""
    marks = exam["lesion_slices"].get(plane, {})
    out = np.zeros((n_slices, len(TASKS)), np.float32)
    for name, slices in marks.items():
        out[slices, 0] = 1.0
        if name == "ACL tear":
            out[slices, 1] = 1.0
        if name.startswith("meniscal tear"):
            out[slices, 2] = 1.0
    if "effusion" in exam["findings"]:
        out[:, 0] = 1.0
    return out


def load_corpus(corpus_dirs, plane, split, input_size):
    """Every slice of one plane in the corpus folders' `split`, block-averaged to input_size:
    (slices float32 (N, s, s), targets (N, 3), exam number per slice)."""
    slices, targets, exams = [], [], []
    for number, data_dir in enumerate(corpus_dirs):
        truth = json.loads((data_dir / "phantom-truth.json").read_text())["exams"]
        for case in read_labels(data_dir, (split,)).loc[split].index:
            path = series_path(data_dir, split, plane, case)
            series = read_data(path, header_info(path))
            slices.append(block_average(series, input_size))
            targets.append(slice_targets(truth[case], plane, len(series)))
            exams.append(np.full(len(series), number * 100000 + int(case)))
    return np.concatenate(slices), np.concatenate(targets), np.concatenate(exams)


def epoch_batches(targets, batch, rng):
    """One epoch's slice indices in batches: every slice that shows something, and as many others
    drawn at random, so a lesion seen on 3 of 30 slices is not drowned by the empty ones."""
    positive = np.flatnonzero(targets.any(axis=1))
    negative = np.flatnonzero(~targets.any(axis=1))
    chosen = np.concatenate([positive, rng.choice(negative, min(len(negative), max(len(positive), batch)),
                                                  replace=False)])
    chosen = rng.permutation(chosen)
    usable = len(chosen) - len(chosen) % batch
    return chosen[:usable].reshape(-1, batch)


def slice_dataset(slices, targets, batch, seed, shuffle=True):
    """tf.data of ({'slices', 'counts': all ones}, targets) batches: each slice is an exam of one."""
    import tensorflow as tf

    state = {"epoch": 0}

    def plans():
        rng = np.random.default_rng([seed, state["epoch"]])
        state["epoch"] += 1
        if shuffle:
            yield from epoch_batches(targets, batch, rng)
        else:
            yield from np.array_split(np.arange(len(slices)), max(1, len(slices) // batch))

    def gather(index):
        return ({"slices": tf.gather(slices_t, index), "counts": tf.ones_like(index, tf.int32)},
                tf.gather(targets_t, index))

    slices_t, targets_t = tf.constant(slices), tf.constant(targets)
    ds = tf.data.Dataset.from_generator(plans, output_signature=tf.TensorSpec([None], tf.int64))
    return ds.map(gather).prefetch(2)


def slice_aucs(model, slices, targets, batch=256):
    """Slice-level ROC AUC per task on held-out corpus exams (NaN where a task has one class)."""
    from sklearn.metrics import roc_auc_score

    logits = np.concatenate([np.asarray(model({"slices": slices[i:i + batch],
                                               "counts": np.ones(len(slices[i:i + batch]), np.int32)},
                                              training=False))
                             for i in range(0, len(slices), batch)])
    return [float(roc_auc_score(targets[:, t], logits[:, t])) if 0 < targets[:, t].sum() < len(targets)
            else float("nan") for t in range(len(TASKS))]


def check_init(folder, args, plane):
    """The weights file for `plane` in a pretrain.py folder, after checking it was pretrained for
    this model shape and is the file its manifest hashed. Raises SystemExit with what to do."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"fit: --init {folder}: no readable manifest.json ({e}); give a folder pretrain.py wrote")
    wanted = {k: getattr(args, k) for k in MODEL_FLAGS if k != "seed"}
    got = {k: manifest["model"].get(k) for k in wanted}
    if got != wanted:
        diff = ", ".join(f"--{k.replace('_', '-')} {got[k]} (this run: {wanted[k]})" for k in wanted if got[k] != wanted[k])
        raise SystemExit(f"fit: --init {folder}: pretrained for another model shape: {diff}")
    path = folder / f"{plane}.weights.h5"
    if plane not in manifest["planes"] or not path.is_file():
        raise SystemExit(f"fit: --init {folder}: no weights for plane {plane}; pretrain it with --planes {plane}")
    if hashlib.sha256(path.read_bytes()).hexdigest() != manifest["files"][path.name]:
        raise SystemExit(f"fit: --init {folder}: {path.name} does not match its manifest's sha256; pretrain again")
    return path
