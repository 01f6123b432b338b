"""Synthetic pretraining: the phantom, which knows where every lesion lies, teaches each plane's
model what a tear looks like before exam labels have to find it.

Exam labels say only that a tear is somewhere in about 30 slices; a model trained from them alone
did not find small lesions (docs/experiments.md). Here the randomised phantom corpus
(learning/artefacts.py) is labelled from the generator's truth, one of two ways (`--target`):

  slices   every slice is its own one-slice exam (a tear is on it or not); the network is fit.py's
           whole-slice model, whose weights load as they are (fit.py --init, without --crops)
  windows  every window the crop branch would see, cut at the true place of the ACL or a meniscus
           and shifted at random by up to the pipeline's margin, is labelled by whether a tear's
           centre lies in it; the network is the crop CNN (fit.py --crops --init)
"""

import json

import numpy as np

from mrnet.contract import PLACE_KIND, PLACES, TASK_PLACES, TASKS
from mrnet.layout import read_labels, series_path
from mrnet.preprocess import block_average
from mrnet.series import header_info, read_data


def tear_task(name):
    """The task a phantom lesion's tear speaks for ("ACL tear" -> acl, "meniscal tear ..." -> meniscus),
    or None for a lesion that is no tear."""
    return "acl" if name == "ACL tear" else "meniscus" if name.startswith("meniscal tear") else None


def slice_targets(exam, plane, n_slices):
    """(n_slices, 3) labels of one stack from the generator's truth: a slice shows a tear when the
    tear's voxels are on it; it shows an abnormality when any lesion is on it, or when the exam has
    an effusion (fluid fills the recesses on most slices)."""
    marks = exam["lesion_slices"].get(plane, {})
    out = np.zeros((n_slices, len(TASKS)), np.float32)
    for name, slices in marks.items():
        out[slices, 0] = 1.0
        if tear_task(name):
            out[slices, TASKS.index(tear_task(name))] = 1.0
    if "effusion" in exam["findings"]:
        out[:, 0] = 1.0
    return out


def load_corpus(dirs, plane, split, input_size):
    """Every slice of one plane in the corpus folders' `split`, block-averaged to input_size:
    (slices float32 (N, s, s), targets (N, 3), exam number per slice)."""
    slices, targets, exams = [], [], []
    for number, data_dir in enumerate(dirs):
        truth = json.loads((data_dir / "phantom-truth.json").read_text())["exams"]
        for case in read_labels(data_dir, (split,)).loc[split].index:
            path = series_path(data_dir, split, plane, case)
            series = read_data(path, header_info(path))
            slices.append(block_average(series, input_size))
            targets.append(slice_targets(truth[case], plane, len(series)))
            exams.append(np.full(len(series), number * 100000 + int(case)))
    return np.concatenate(slices), np.concatenate(targets), np.concatenate(exams)


def slice_aucs(model, slices, targets, batch=256):
    """Slice-level ROC AUC per task on held-out corpus exams (NaN where a task has one class)."""
    from sklearn.metrics import roc_auc_score

    logits = np.concatenate([np.asarray(model({"slices": slices[i:i + batch],
                                               "counts": np.ones(len(slices[i:i + batch]), np.int32)},
                                              training=False))
                             for i in range(0, len(slices), batch)])
    return [float(roc_auc_score(targets[:, t], logits[:, t])) if 0 < targets[:, t].sum() < len(targets)
            else float("nan") for t in range(len(TASKS))]


def window_targets(exam, plane, landmarks, size):
    """(n_slices, places) labels of one stack's windows at their true places: 1 where the centre of a
    tear of the window's task (an ACL tear's for the ACL window, a meniscal tear's for the menisci)
    lies inside the window on that slice. `landmarks` is the stack's anatomy truth, `size` the
    window's side."""
    out = np.zeros((len(landmarks), len(PLACES)), np.float32)
    for name, centres in exam.get("tear_centres", {}).get(plane, {}).items():
        places = TASK_PLACES.get(tear_task(name), ())
        for index, (row, col) in centres.items():
            i = int(index)
            for k in places:
                present, r, c = landmarks[i, k, :3]
                if present and abs(row - r) < size / 2 and abs(col - c) < size / 2:
                    out[i, k] = 1.0
    return out


def load_windows(dirs, plane, split, margin):
    """Every present window of one plane in the corpus folders' `split`, cut at the true places with
    `margin` pixels each side: (windows (M, s, s) float32, kind (M,): the index of its task in
    WINDOW_TASKS, label (M,))."""
    from learning.crops import WINDOW, crops_at
    from phantom.landmarks import read_anatomy

    windows, kinds, labels = [], [], []
    for data_dir in dirs:
        truth = json.loads((data_dir / "phantom-truth.json").read_text())["exams"]
        anatomy = read_anatomy(data_dir)
        for case in read_labels(data_dir, (split,)).loc[split].index:
            path = series_path(data_dir, split, plane, case)
            series = read_data(path, header_info(path))
            marks = anatomy[(plane, case)]
            cut = np.asarray(crops_at(series, marks[..., 1:3], margin))
            targets = window_targets(truth[case], plane, marks, WINDOW)
            present = marks[..., 0] > 0
            windows.append(cut[present])
            kinds.append(np.broadcast_to(np.array(PLACE_KIND), present.shape)[present])
            labels.append(targets[present])
    return np.concatenate(windows), np.concatenate(kinds).astype(np.int32), np.concatenate(labels)


def window_model(crop_width, space_pool):
    """The crop branch's window network (learning.model.window_network) with each window's kind
    choosing its head: (N, s, s) windows and kind -> one logit each."""
    import keras
    from keras import ops

    from learning.crops import crop_size
    from learning.model import window_network
    from mrnet.contract import WINDOW_TASKS

    side = crop_size()
    windows = keras.Input((side, side), dtype="float32", name="windows")
    kind = keras.Input((), dtype="int32", name="kind")
    network = window_network(crop_width, space_pool)
    logit = ops.sum(network(windows) * ops.one_hot(kind, len(WINDOW_TASKS)), axis=-1)
    return keras.Model({"windows": windows, "kind": kind}, logit)


def pretrain_windows(config, plane, dirs, out_dir, devices=None):
    """One plane's crop CNN on the corpus's windows, through model.fit (history in
    <plane>/history.csv, which the parent's progress bar reads); held-out window AUC per kind beside
    it. `config` is pretrain.py's (learning/recipe.PretrainConfig)."""
    import keras
    from sklearn.metrics import roc_auc_score

    from learning.crops import MARGIN, SCALE
    from learning.distributed import setup_devices
    from learning.pipeline import epoch_batches
    from learning.training import adamw
    from mrnet.contract import WINDOW_TASKS

    recipe, compute, model_cfg = config.pretraining, config.compute, config.model
    devices = devices or setup_devices(compute, seed=model_cfg.seed)
    windows, kinds, labels = load_windows(dirs, plane, "train", MARGIN)
    held = load_windows(dirs, plane, "valid", 0)
    cells, side = MARGIN // SCALE, windows.shape[-1] - 2 * (MARGIN // SCALE)
    # every window each epoch; a torn one weighs as much as all the intact ones of its kind together
    weights = np.ones(len(labels), np.float32)
    for k in range(len(WINDOW_TASKS)):
        torn = (kinds == k) & (labels > 0)
        weights[torn] = ((kinds == k) & (labels == 0)).sum() / max(torn.sum(), 1)
    steps = len(labels) // recipe.batch
    shifted = np.lib.stride_tricks.sliding_window_view(windows, (side, side), axis=(1, 2))  # (M, 2c+1, 2c+1, s, s)

    def plan(rng):
        return rng.permutation(len(labels))[: steps * recipe.batch].reshape(steps, recipe.batch)

    def batch(b, rng):
        r, c = rng.integers(0, 2 * cells + 1, (2, len(b)))  # each window misplaced its own way
        return {"windows": shifted[b, r, c], "kind": kinds[b]}, labels[b], weights[b]

    model = window_model(model_cfg.crop_width, model_cfg.space_pool)
    model.compile(optimizer=adamw(recipe.lr, 1e-4, steps, recipe.epochs),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True), jit_compile=devices.xla)
    plane_dir = out_dir / plane
    plane_dir.mkdir(parents=True, exist_ok=True)
    print(f"[{plane}] pretraining the crop CNN: {len(windows)} corpus windows ({int(labels.sum())} torn), "
          f"{steps} batches/epoch, {recipe.epochs} epochs", flush=True)
    model.fit(epoch_batches(plan, batch, model_cfg.seed), epochs=recipe.epochs, verbose=0 if compute.quiet else 2,
              callbacks=[keras.callbacks.CSVLogger(str(plane_dir / "history.csv"))])
    model.get_layer("window_network").save_weights(str(out_dir / f"{plane}.weights.h5"))
    scores = np.concatenate([np.asarray(model({"windows": held[0][i:i + 512], "kind": held[1][i:i + 512]}))
                             for i in range(0, len(held[0]), 512)])
    aucs = {}
    for k, name in enumerate(WINDOW_TASKS):
        y, s = held[2][held[1] == k], scores[held[1] == k]
        aucs[name] = float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else None
    (plane_dir / "held_out_auc.json").write_text(json.dumps(aucs))
    print(f"[{plane}] held-out window AUC: " + "  ".join(f"{k} {v:.3f}" if v is not None else f"{k} -"
                                                          for k, v in aucs.items()), flush=True)


def pretrain_slices(config, plane, dirs, out_dir, devices=None):
    """One plane's whole-slice model on slice labels from the corpus (each slice a one-slice exam),
    through model.fit; held-out slice AUCs beside it."""
    import keras

    from learning.distributed import setup_devices
    from learning.model import build_model
    from learning.pipeline import epoch_batches, epoch_indices
    from learning.recipe import model_config
    from learning.training import compile_plane, positive_weights

    compute, model_cfg = config.compute, config.model
    devices = devices or setup_devices(compute, model_cfg.backbone, model_cfg.seed)
    slices, targets, _ = load_corpus(dirs, plane, "train", model_cfg.input_size)
    held_slices, held_targets, _ = load_corpus(dirs, plane, "valid", model_cfg.input_size)
    shows = targets.any(axis=1)
    budget = compute.batch_slices

    def plan(rng):  # every slice that shows something, and as many others
        return epoch_indices(shows, budget, rng, max(int(shows.sum()), budget))

    def batch(b, rng):
        return {"slices": slices[b], "counts": np.ones(len(b), np.int32)}, targets[b]

    data = epoch_batches(plan, batch, model_cfg.seed)
    sampled = targets[shows]
    weights = positive_weights(sampled.tolist() + [[0.0] * targets.shape[1]] * len(sampled))
    model = build_model(**model_config(model_cfg), pooled_input=True)
    compile_plane(model, config.pretraining.lr, compute, len(data), config.pretraining.epochs, weights, devices)
    plane_dir = out_dir / plane
    plane_dir.mkdir(parents=True, exist_ok=True)
    print(f"[{plane}] pretraining: {len(slices)} corpus slices, {len(data)} batches/epoch, "
          f"{config.pretraining.epochs} epochs")
    model.fit(data, epochs=config.pretraining.epochs, verbose=0 if compute.quiet else 2,
              callbacks=[keras.callbacks.CSVLogger(str(plane_dir / "history.csv"))])
    model.save_weights(str(out_dir / f"{plane}.weights.h5"))
    aucs = slice_aucs(model, held_slices, held_targets)
    (plane_dir / "held_out_auc.json").write_text(json.dumps(dict(zip(TASKS, aucs))))
    print(f"[{plane}] held-out slice AUC: " + "  ".join(f"{a:.3f}" for a in aucs))


def pretrain(config, made_by="python train/pretrain.py"):
    """Pretrain every plane on the corpus and write the folder (learning/artefacts.py); `config` is
    pretrain.py's (learning/recipe.PretrainConfig, resolved); returns the folder."""
    from learning.artefacts import corpus_dirs, init_shape, write_artefact

    target = config.pretraining.target
    train = pretrain_windows if target == "windows" else pretrain_slices
    return write_artefact(
        config, train, corpus_dirs(config.corpus, config.compute.quiet),
        what=f"per-plane weights pretrained on {target[:-1]} labels of a randomised phantom corpus, for fit.py --init",
        shape=init_shape(config.model), measured={"held_out_auc": "held_out_auc.json"},
        made_by=made_by)
