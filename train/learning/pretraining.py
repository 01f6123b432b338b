"""Synthetic pretraining: the phantom, which knows where every lesion lies, teaches each plane's
model what a tear looks like before exam labels have to find it.

Exam labels say only that a tear is somewhere in about 30 slices; a model trained from them alone
did not find small lesions (README: Learnability). Here the randomised phantom corpus
(learning/corpus.py) is labelled from the generator's truth, one of two ways (`--target`):

  slices   every slice is its own one-slice exam (a tear is on it or not); the network is fit.py's
           whole-slice model, whose weights load as they are (fit.py --init, without --crops)
  windows  every window the crop branch would see, cut at the true place of the ACL or a meniscus
           and shifted at random by up to the pipeline's margin, is labelled by whether a tear's
           centre lies in it; the network is the crop CNN (fit.py --crops --init)
"""

import hashlib
import json
from pathlib import Path

import numpy as np

from mrnet.contract import TASKS
from mrnet.layout import read_labels, series_path
from mrnet.preprocess import block_average
from mrnet.series import header_info, read_data

TARGETS = ("slices", "windows")


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


def init_shape(args):
    """What a pretrained folder must match to load into this run's model: its target and the recipe
    keys that shape the pretrained network (the whole model's, or the crop CNN's width)."""
    from learning.recipe import MODEL_KEYS

    if getattr(args, "crops", False):
        return {"target": "windows", "crop_width": args.crop_width}
    return {"target": "slices", **{k: getattr(args, k) for k in MODEL_KEYS if k != "seed"}}


def check_init(folder, args, plane):
    """The weights file for `plane` in a pretrain.py folder, after checking it was pretrained for
    this model's shape and is the file its manifest hashed. Raises SystemExit with what to do."""
    from learning.corpus import check_files

    manifest, path = check_files(folder, plane, "fit: --init")
    wanted = init_shape(args)
    got = {k: manifest["model"].get(k) for k in wanted}
    if got != wanted:
        diff = ", ".join(f"--{k.replace('_', '-')} {got[k]} (this run: {wanted[k]})" for k in wanted if got[k] != wanted[k])
        raise SystemExit(f"fit: --init {folder}: pretrained for another model shape: {diff}")
    return path


def window_targets(exam, plane, landmarks, size):
    """(n_slices, K) labels of one stack's windows at their true places: 1 where the centre of a tear
    of the window's kind (the ACL's for the ACL window, a meniscal tear's for the menisci) lies inside
    the window on that slice. `landmarks` is the stack's anatomy truth, `size` the window's side."""
    from phantom.landmarks import LOCALISED

    out = np.zeros((len(landmarks), len(LOCALISED)), np.float32)
    for name, centres in exam.get("tear_centres", {}).get(plane, {}).items():
        places = [0] if name == "ACL tear" else [1, 2] if name.startswith("meniscal tear") else []
        for index, (row, col) in centres.items():
            i = int(index)
            for k in places:
                present, r, c = landmarks[i, k, :3]
                if present and abs(row - r) < size / 2 and abs(col - c) < size / 2:
                    out[i, k] = 1.0
    return out


def load_windows(corpus_dirs, plane, split, margin):
    """Every present window of one plane in the corpus folders' `split`, cut at the true places with
    `margin` pixels each side: (windows (M, s, s) float32, kind (M,) 0 = ACL, 1 = meniscus, label (M,))."""
    from learning.crops import WINDOW, crops_at
    from phantom.landmarks import read_anatomy

    windows, kinds, labels = [], [], []
    for data_dir in corpus_dirs:
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
            kinds.append(np.broadcast_to(np.minimum(np.arange(marks.shape[1]), 1), present.shape)[present])
            labels.append(targets[present])
    return np.concatenate(windows), np.concatenate(kinds).astype(np.int32), np.concatenate(labels)


def window_model(crop_width, space_pool):
    """The crop branch's window network (learning.model.window_network) with each window's kind
    choosing its head: (N, s, s) windows and kind (0 ACL, 1 meniscus) -> one logit each."""
    import keras
    from keras import ops

    from learning.crops import crop_size
    from learning.model import KINDS, window_network

    side = crop_size()
    windows = keras.Input((side, side), dtype="float32", name="windows")
    kind = keras.Input((), dtype="int32", name="kind")
    network = window_network(crop_width, space_pool)
    logit = ops.sum(network(windows) * ops.one_hot(kind, len(KINDS)), axis=-1)
    return keras.Model({"windows": windows, "kind": kind}, logit)


def pretrain_windows(args, plane, corpus_dirs, out_dir, devices=None):
    """One plane's crop CNN on the corpus's windows; held-out window AUC per kind beside it."""
    import keras
    from sklearn.metrics import roc_auc_score

    from learning.crops import MARGIN, SCALE
    from learning.distributed import setup_devices
    from learning.training import adamw

    devices = devices or setup_devices(args)
    windows, kinds, labels = load_windows(corpus_dirs, plane, "train", MARGIN)
    held = load_windows(corpus_dirs, plane, "valid", 0)
    rng = np.random.default_rng(args.seed)
    cells, side = MARGIN // SCALE, windows.shape[-1] - 2 * (MARGIN // SCALE)
    # every window each epoch; a torn one weighs as much as all the intact ones of its kind together
    weights = np.ones(len(labels), np.float32)
    for k in (0, 1):
        torn = (kinds == k) & (labels > 0)
        weights[torn] = ((kinds == k) & (labels == 0)).sum() / max(torn.sum(), 1)
    steps = len(labels) // args.batch
    model = window_model(args.crop_width, args.space_pool)
    model.compile(optimizer=adamw(args.lr, 1e-4, steps, args.epochs),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True), jit_compile=devices.xla)
    plane_dir = out_dir / plane
    plane_dir.mkdir(parents=True, exist_ok=True)
    print(f"[{plane}] pretraining the crop CNN: {len(windows)} corpus windows ({int(labels.sum())} torn), "
          f"{steps} batches/epoch, {args.epochs} epochs", flush=True)
    shifted = np.lib.stride_tricks.sliding_window_view(windows, (side, side), axis=(1, 2))  # (M, 2c+1, 2c+1, s, s)
    history = ["epoch,loss"]
    for epoch in range(args.epochs):
        losses = []
        for b in rng.permutation(len(labels))[: steps * args.batch].reshape(steps, args.batch):
            r, c = rng.integers(0, 2 * cells + 1, (2, len(b)))  # each window misplaced its own way
            x = {"windows": shifted[b, r, c], "kind": kinds[b]}
            losses.append(float(np.ravel(model.train_on_batch(x, labels[b], sample_weight=weights[b]))[0]))
        history.append(f"{epoch},{np.mean(losses):.5f}")
        (plane_dir / "history.csv").write_text("\n".join(history) + "\n")
        print(f"[{plane}] epoch {epoch + 1}/{args.epochs}: loss {np.mean(losses):.4f}", flush=True)
    model.get_layer("window_network").save_weights(str(out_dir / f"{plane}.weights.h5"))
    scores = np.concatenate([np.asarray(model({"windows": held[0][i:i + 512], "kind": held[1][i:i + 512]}))
                             for i in range(0, len(held[0]), 512)])
    aucs = {}
    for k, name in enumerate(("acl", "meniscus")):
        y, s = held[2][held[1] == k], scores[held[1] == k]
        aucs[name] = float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else None
    (plane_dir / "held_out_auc.json").write_text(json.dumps(aucs))
    print(f"[{plane}] held-out window AUC: " + "  ".join(f"{k} {v:.3f}" if v is not None else f"{k} -"
                                                          for k, v in aucs.items()), flush=True)


def pretrain_slices(args, plane, corpus_dirs, out_dir, devices=None):
    """One plane's whole-slice model on slice labels from the corpus; held-out slice AUCs beside it."""
    import keras

    from learning.distributed import setup_devices
    from learning.model import build_model
    from learning.recipe import model_config
    from learning.training import compile_plane, positive_weights

    devices = devices or setup_devices(args)
    slices, targets, _ = load_corpus(corpus_dirs, plane, "train", args.input_size)
    held_slices, held_targets, _ = load_corpus(corpus_dirs, plane, "valid", args.input_size)
    data = slice_dataset(slices, targets, args.batch_slices, args.seed)
    steps = sum(1 for _ in data)  # one epoch's batches: every positive slice plus as many negatives
    sampled = targets[targets.any(axis=1)]
    weights = positive_weights(sampled.tolist() + [[0.0] * targets.shape[1]] * len(sampled))
    model = build_model(**model_config(args), pooled_input=True)
    compile_plane(model, args, steps, args.epochs, weights, devices)  # fit.py's loss, optimiser and metric
    plane_dir = out_dir / plane
    plane_dir.mkdir(parents=True, exist_ok=True)
    print(f"[{plane}] pretraining: {len(slices)} corpus slices, {steps} batches/epoch, {args.epochs} epochs")
    model.fit(data, epochs=args.epochs, verbose=0 if args.quiet else 2,
              callbacks=[keras.callbacks.CSVLogger(str(plane_dir / "history.csv"))])
    model.save_weights(str(out_dir / f"{plane}.weights.h5"))
    aucs = slice_aucs(model, held_slices, held_targets)
    (plane_dir / "held_out_auc.json").write_text(json.dumps(dict(zip(TASKS, aucs))))
    print(f"[{plane}] held-out slice AUC: " + "  ".join(f"{a:.3f}" for a in aucs))


def add_pretraining_arguments(ap):
    """pretrain.py's own flags, beside the corpus's and the model's (learning/recipe.py)."""
    from learning.recipe import add_model_arguments

    ap.add_argument("--target", choices=TARGETS,
                    help="slices: the whole-slice model on slice labels; windows: the crop CNN on window labels "
                         "(default: windows with --crops, else slices)")
    ap.add_argument("--epochs", type=int,
                    help="default: 6 over slices; 20 over windows (an epoch is every window of the corpus)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=128, help="windows a batch, with --target windows (%(default)s)")
    add_model_arguments(ap)


def pretrain(args):
    """Pretrain every plane on the corpus and write the folder (learning/corpus.py); returns it."""
    from learning.corpus import corpus, write_artefact

    target = args.target or ("windows" if args.crops else "slices")
    args.epochs = args.epochs or {"slices": 6, "windows": 20}[target]
    shape = init_shape(type(args)(**{**vars(args), "crops": target == "windows"}))
    return write_artefact(
        args, f"learning.pretraining:pretrain_{target}", corpus(args),
        what=f"per-plane weights pretrained on {target[:-1]} labels of a randomised phantom corpus, for fit.py --init",
        model=shape, training={"epochs": args.epochs, "lr": args.lr, "batch_slices": args.batch_slices,
                               "batch": args.batch, "labels": f"per {target[:-1]}, from the phantom's truth"},
        measured={"held_out_auc": "held_out_auc.json"})


def synthetic_init(args):
    """fit.py --init synthetic: the cache's pretraining for this run's model shape (made on first use,
    with the run's model and compute flags)."""
    from learning.corpus import artefact_parser, cached, compute_flags
    from learning.recipe import MODEL_KEYS

    styles = list(getattr(args, "corpus_styles", ["anatomical", "geometric"]))
    key = {"version": 2, **init_shape(args), "styles": sorted(styles)}
    flags = ["--corpus-styles", *styles, *compute_flags(args), "--batch-slices", str(args.batch_slices)]
    for k in MODEL_KEYS:
        value = getattr(args, k)
        flag = "--" + k.replace("_", "-")
        flags += ([flag] if value else ["--no-" + flag[2:]]) if isinstance(value, bool) else [flag, str(value)]
    parser = artefact_parser(None, add_pretraining_arguments)
    return cached("pretrained", key, lambda folder: pretrain(parser.parse_args(["--out", str(folder), *flags])))
