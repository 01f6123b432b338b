"""The localiser: where, on each slice, are the ACL and each meniscus? The network, its loss and
its reading of an output, in Keras layers and keras.ops only.

Exam labels say a tear is somewhere in a 256 x 256 x 30 stack; a classifier left to search the
whole field of view for a 2 mm meniscal tear did not find it (docs/experiments.md). The phantom
knows where every structure is (phantom/landmarks.py), so a small network can be taught to point
at them, and the exam classifier can then look closely where the lesions live (learning/crops.py).

Per slice and structure the localiser gives a heat map over a coarse grid (a quarter of the
series' resolution), whose spatial softmax's expectation is the centre (soft-argmax: sub-pixel,
differentiable), and a presence logit (is the structure on this slice at all). Each slice is
standardised by its own mean and spread first: a phantom corpus of random contrasts and a real
scan then look alike to it, and nothing depends on the batch.
"""

import keras
from keras import layers, ops

from learning.layers import standardise
from learning.model import conv_block
from mrnet.contract import PLACES

SIGMA = 1.0  # the target heat map's spread, in cells
# The refiner's view: wider and coarser than the crop branch's windows (more of the knee around a
# place, for a first guess up to 20 pixels off): 64 series pixels, averaged 2 x 2 to 32.
REFINER_WINDOW, REFINER_SCALE = 64, 2


def build_coarse(input_size=128, width=8, grid=32, structures=len(PLACES)):
    """The first look, at the whole slice: an encoder-decoder from a slice block-averaged to input_size
    (float32) to {'heatmap': (N, grid, grid, K) logits, 'presence': (N, K) logits, 'centre': (N, K, 2)
    row and column in pixels of the 256 px series}."""
    slices = keras.Input((input_size, input_size), dtype="float32", name="slices")
    x = standardise(layers.Reshape((input_size, input_size, 1))(slices))
    skips = []
    down = 1
    # down to the heat map's grid, then 3 more halvings for context (a 128 px input sees 4 x 4 at the bottom)
    while input_size // down > grid:
        x = conv_block(x, width, 2)
        down *= 2
    x = conv_block(x, width)
    for filters in (width * 2, width * 3, width * 4):
        skips.append(x)
        x = conv_block(x, filters, 2)
        x = conv_block(x, filters)
    context = x
    for skip, filters in zip(reversed(skips), (width * 3, width * 2, width)):
        x = layers.UpSampling2D(2, interpolation="bilinear")(x)
        x = layers.Concatenate()([x, skip])
        x = conv_block(x, filters)
    if input_size // down < grid:  # a 64 px input: its grid is coarser than the heat map's
        x = layers.UpSampling2D(grid // (input_size // down), interpolation="bilinear")(x)
        x = conv_block(x, width * 2)
    heatmap = layers.Conv2D(structures, 1, name="heatmap")(x)
    pooled = layers.Concatenate()([layers.GlobalAveragePooling2D()(context), layers.GlobalMaxPooling2D()(context)])
    presence = layers.Dense(structures, name="presence")(pooled)
    centre = layers.Lambda(soft_argmax, name="centre")(heatmap)
    return keras.Model({"slices": slices}, {"heatmap": heatmap, "presence": presence, "centre": centre},
                       name="coarse")


def build_refiner(width=16, structures=len(PLACES)):
    """The second look, closer: the window around each place's estimated centre (learning/crops.py,
    REFINER_WINDOW pixels averaged REFINER_SCALE x REFINER_SCALE) -> (N, K, 2) how far the true
    centre lies from the window's centre, in pixels of the 256 px series. One trunk for every place,
    one head per place."""
    from learning.crops import crop_size

    side = crop_size(window=REFINER_WINDOW, scale=REFINER_SCALE)
    windows = keras.Input((structures, side, side), dtype="float32", name="windows")
    x = layers.Reshape((side, side, 1))(ops.reshape(windows, (-1, side, side)))
    x = standardise(x)
    for filters, stride in ((width, 1), (width * 2, 2), (width * 3, 2), (width * 4, 2)):
        x = conv_block(x, filters, stride)
    x = layers.Concatenate()([layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)])
    x = layers.Dense(structures * 2)(x)  # every place's head on every window; each window keeps its own
    x = ops.reshape(x, (-1, structures, structures, 2))
    offsets = ops.sum(x * ops.eye(structures)[None, :, :, None], axis=2)
    return keras.Model({"windows": windows}, offsets, name="refiner")


def build_localiser(input_size=128, width=8, grid=32, refiner_width=16, refinements=2, structures=len(PLACES)):
    """The localiser as the exam model runs it: raw uint8 slices (N, 256, 256) -> {'centre': (N, K, 2)
    after `refinements` close-up corrections, 'presence': (N, K) logits, 'coarse': the first look's
    centres}. The coarse network sees the slice block-averaged to input_size (the pipeline's bits)."""
    from learning.crops import Windows

    slices = keras.Input((256, 256), dtype="uint8", name="slices")
    pooled = layers.AveragePooling2D(256 // input_size)(layers.Reshape((256, 256, 1))(ops.cast(slices, "float32")))
    coarse = build_coarse(input_size, width, grid, structures)({"slices": layers.Reshape((input_size, input_size))(pooled)})
    refiner = build_refiner(refiner_width, structures)
    windows = Windows(REFINER_WINDOW, REFINER_SCALE)
    centre = coarse["centre"]
    for _ in range(refinements):
        centre = layers.Add()([centre, refiner({"windows": windows(slices, centre)})])
    return keras.Model({"slices": slices}, {"centre": centre, "presence": coarse["presence"],
                                            "coarse": coarse["centre"]}, name="localiser")


def soft_argmax(heatmap):
    """(N, h, w, K) logits -> (N, K, 2): the expected (row, column) under each structure's spatial
    softmax, in pixels of the 256 px series (cell centres at stride * (i + 0.5) - 0.5)."""
    n, h, w, k = ops.shape(heatmap)
    flat = ops.reshape(ops.transpose(heatmap, (0, 3, 1, 2)), (-1, k, h * w))
    p = ops.softmax(flat, axis=-1)
    rows = ops.repeat(ops.arange(h, dtype="float32"), w)
    cols = ops.tile(ops.arange(w, dtype="float32"), h)
    r = ops.sum(p * rows, axis=-1)
    c = ops.sum(p * cols, axis=-1)
    stride = 256.0 / ops.cast(h, "float32")
    return ops.stack([r, c], axis=-1) * stride + (stride - 1) / 2


@keras.saving.register_keras_serializable("mrnet")
class HeatmapLoss(keras.losses.Loss):
    """Where a structure is on the slice: the cross-entropy of its spatial softmax against a
    Gaussian around the true centre (SIGMA cells), plus the soft-argmax's distance to the centre
    in cells (L1). The first gives a gradient anywhere on the grid, the second the sub-cell finish.
    y_true: (N, K, 3) present, row, col (pixels of the 256 px series); absent structures weigh 0."""

    def __init__(self, name="heatmap_loss", **kw):
        super().__init__(name=name, **kw)

    def call(self, y_true, logits):
        y_true = ops.cast(y_true, "float32")
        logits = ops.cast(logits, "float32")
        n, h, w, k = ops.shape(logits)
        stride = 256.0 / ops.cast(h, "float32")
        present = y_true[..., 0]
        target = (y_true[..., 1:] - (stride - 1) / 2) / stride  # in cells
        rows = ops.arange(h, dtype="float32")[None, None, :, None]
        cols = ops.arange(w, dtype="float32")[None, None, None, :]
        d2 = (rows - target[..., 0, None, None]) ** 2 + (cols - target[..., 1, None, None]) ** 2
        gauss = ops.exp(-d2 / (2 * SIGMA ** 2))
        gauss = gauss / ops.sum(gauss, axis=(2, 3), keepdims=True)
        flat = ops.transpose(logits, (0, 3, 1, 2))
        log_p = ops.log_softmax(ops.reshape(flat, (-1, k, h * w)), axis=-1)
        ce = -ops.sum(ops.reshape(gauss, (-1, k, h * w)) * log_p, axis=-1)
        centre = (soft_argmax(logits) - (stride - 1) / 2) / stride
        l1 = ops.sum(ops.abs(centre - target), axis=-1)
        per_structure = (ce + l1) * present
        return ops.sum(per_structure, axis=-1) / ops.maximum(ops.sum(present, axis=-1), 1.0)


def localiser_losses():
    """Keras' loss dict for build_coarse's outputs (the centre is read, not trained on directly)."""
    return {"heatmap": HeatmapLoss(), "presence": keras.losses.BinaryCrossentropy(from_logits=True)}


def load_anatomy_slices(data_dirs, plane, split):
    """Every slice of one plane in the folders' `split`, with its anatomy truth: (uint8 slices
    (N, 256, 256), targets (N, K, 3): present, row, col at 256 px, exam number per slice)."""
    import numpy as np

    from mrnet.layout import read_labels, series_path
    from mrnet.series import header_info, read_data
    from phantom.landmarks import read_anatomy

    slices, targets, exams = [], [], []
    for number, data_dir in enumerate(data_dirs):
        anatomy = read_anatomy(data_dir)
        if anatomy is None:
            raise SystemExit(f"localiser: {data_dir} has no anatomy truth (phantom-anatomy.npz); "
                             "regenerate it with this version's phantom")
        for case in read_labels(data_dir, (split,)).loc[split].index:
            path = series_path(data_dir, split, plane, case)
            series = read_data(path, header_info(path))
            slices.append(np.asarray(series))
            targets.append(anatomy[(plane, case)][..., :3])
            exams.append(np.full(len(series), number * 100000 + int(case)))
    return np.concatenate(slices), np.concatenate(targets).astype(np.float32), np.concatenate(exams)


def locate(model, slices, batch=128):
    """(centres (N, K, 2) at 256 px, presence probabilities (N, K)) of uint8 slices (N, 256, 256)."""
    import numpy as np

    centres, presence = [], []
    for i in range(0, len(slices), batch):
        out = model({"slices": slices[i:i + batch]}, training=False)
        centres.append(np.asarray(out["centre"]))
        presence.append(np.asarray(ops.sigmoid(out["presence"])))
    return np.concatenate(centres), np.concatenate(presence)


def precision(centres, presence, targets, exams=None):
    """Per structure: median and 90th-percentile distance (px at 256) from the true centre on the
    slices that hold the structure, and slice-presence precision, recall and F1 at 0.5. With `exams`
    (each slice's exam, slices in stack order), also where no meniscus window belongs: the share of
    sagittal notch slices (the cruciates, no horn) and of slices outside the joint given one
    (phantom/geometry.notch_and_outside); meaningful on sagittal series."""
    import numpy as np

    from phantom.geometry import notch_and_outside

    out = {}
    for k, name in enumerate(PLACES):
        truth = targets[:, k, 0] > 0
        found = presence[:, k] > 0.5
        error = np.linalg.norm(centres[truth, k] - targets[truth, k, 1:], axis=-1)
        tp = float((truth & found).sum())
        p = tp / max(found.sum(), 1)
        r = tp / max(truth.sum(), 1)
        out[name] = {"median_px": float(np.median(error)) if len(error) else None,
                     "p90_px": float(np.percentile(error, 90)) if len(error) else None,
                     "precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-9), "slices": int(truth.sum())}
    if exams is not None:
        meniscus = (presence[:, 1:] > 0.5).any(axis=1)
        notch, outside = (np.concatenate(m) for m in zip(*(notch_and_outside(targets[exams == e])
                                                          for e in dict.fromkeys(exams))))
        order = np.concatenate([np.flatnonzero(exams == e) for e in dict.fromkeys(exams)])
        meniscus = meniscus[order]
        # central: the notch's slices less its first and last, where a horn's last sliver may still show
        central = notch & np.concatenate([[False], notch[:-1]]) & np.concatenate([notch[1:], [False]])

        def share(where):
            return float(meniscus[where].mean()) if where.any() else None
        out["meniscus windows"] = {"on notch slices": share(notch), "on central notch slices": share(central),
                                   "on slices outside the joint": share(outside), "notch slices": int(notch.sum()),
                                   "central notch slices": int(central.sum()), "outside slices": int(outside.sum())}
    return out


def precision_text(measured):
    """One line of precision's figures: each place's median / p90 error and F1, then the meniscus
    windows given where none belongs."""
    text = "  ".join(f"{k} {v['median_px']:.1f}/{v['p90_px']:.1f} px, F1 {v['f1']:.2f}"
                     for k, v in measured.items() if k in PLACES and v["median_px"] is not None)
    wrong = measured.get("meniscus windows")
    if wrong:
        text += "; meniscus windows on " + ", ".join(
            f"{v:.0%} of {k[3:]}" for k, v in wrong.items() if k.startswith("on ") and v is not None)
    return text


def localise(config, made_by="python train/localise.py"):
    """Train every plane's localiser on the corpus and write the folder (learning/artefacts.py);
    `config` is localise.py's (learning/recipe.LocaliseConfig); `made_by` the command, for the manifest."""
    from dataclasses import asdict

    from learning.artefacts import corpus_dirs, write_artefact

    return write_artefact(config, train_localiser, corpus_dirs(config.corpus, config.compute.quiet),
                          what="per-plane localisers of the ACL and the menisci", shape=asdict(config.net),
                          measured={"precision": "precision.json"}, made_by=made_by)


@keras.saving.register_keras_serializable("mrnet")
class OffsetLoss(keras.losses.Loss):
    """The refiner's miss, in pixels (L1 of the predicted against the true offset) over present places.
    y_true: (N, K, 3) present, true row and column offset."""

    def __init__(self, name="offset_loss", **kw):
        super().__init__(name=name, **kw)

    def call(self, y_true, offsets):
        y_true = ops.cast(y_true, "float32")
        present = y_true[..., 0]
        miss = ops.sum(ops.abs(ops.cast(offsets, "float32") - y_true[..., 1:]), axis=-1)
        return ops.sum(miss * present, axis=-1) / ops.maximum(ops.sum(present, axis=-1), 1.0)


def train_localiser(config, plane, dirs, out_dir, devices=None):
    """One plane's localiser on the corpus's train split (fit_localiser); its precision on the
    corpus's held-out exams (and on any --measure-on folders) goes beside the weights."""
    import json
    from dataclasses import asdict
    from pathlib import Path

    from learning.distributed import setup_devices

    devices = devices or setup_devices(config.compute, seed=config.training.seed)
    slices, targets, _ = load_anatomy_slices(dirs, plane, "train")
    print(f"[{plane}] localiser: {len(slices)} corpus slices, {config.training.epochs} + "
          f"{config.training.refiner_epochs} epochs", flush=True)
    plane_dir = out_dir / plane
    model = fit_localiser(asdict(config.net), config.training, devices, slices, targets, plane_dir,
                          quiet=config.compute.quiet)
    model.save_weights(str(out_dir / f"{plane}.weights.h5"))
    measured = {}
    for name, folders in [("corpus held out", dirs)] + [(Path(d).parent.name, [d]) for d in config.measure_on]:
        held, held_targets, held_exams = load_anatomy_slices(folders, plane, "valid")
        measured[name] = precision(*locate(model, held), held_targets, held_exams)
        print(f"[{plane}] on {name}: {precision_text(measured[name])}", flush=True)
    (plane_dir / "precision.json").write_text(json.dumps(measured, indent=1))


def fit_localiser(net, training, devices, slices, targets, log_dir, start=None, quiet=False):
    """A localiser (build_localiser(**net)) taught where the places are on `slices` (uint8 (N, 256,
    256); `targets` (N, K, 3): present, row, col), through model.fit: the coarse network on heat
    maps, then the refiner on windows placed off the true centre by a random `training.jitter`.
    Each epoch holds every slice that shows a place and a third as many that show none. From
    `start`'s weights where given (fine-tuning on marks), else from scratch. Both phases log to
    <log_dir>/history.csv (a parent's progress bar reads it)."""
    import numpy as np

    from learning.crops import Windows
    from learning.pipeline import epoch_batches, epoch_indices
    from learning.training import adamw
    from mrnet.preprocess import block_average

    present = targets[..., 0].any(axis=1)
    absent = int(present.sum() * 0.25 / 0.75)  # slices without a place: a quarter of each epoch
    # a few marked slices make an epoch smaller than a batch: one batch of them all, not none
    batch = max(1, min(training.batch, int(present.sum()) + min(absent, int((~present).sum()))))

    def plan(rng):
        return epoch_indices(present, batch, rng, absent)

    def coarse_batch(b, rng):
        y = targets[b]
        return {"slices": block_average(slices[b], net["input_size"])}, {"heatmap": y, "presence": y[..., 0]}

    def refiner_batch(b, rng):
        y = targets[b]
        miss = np.clip(rng.normal(0, training.jitter, y[..., 1:].shape), -3 * training.jitter, 3 * training.jitter)
        x = {"slices": slices[b], "centres": (y[..., 1:] + miss).astype(np.float32)}
        return x, np.concatenate([y[..., :1], -miss], -1).astype(np.float32)

    coarse_data = epoch_batches(plan, coarse_batch, training.seed)
    refiner_data = epoch_batches(plan, refiner_batch, training.seed + 1)
    steps = len(coarse_data)
    coarse = build_coarse(net["input_size"], net["width"], net["grid"])
    refiner = build_refiner(net["refiner_width"])
    if start is not None:
        coarse.set_weights(start.get_layer("coarse").get_weights())
        refiner.set_weights(start.get_layer("refiner").get_weights())
    coarse.compile(optimizer=adamw(training.lr, 1e-4, steps, training.epochs), loss=localiser_losses(),
                   jit_compile=devices.xla)
    raw = keras.Input((256, 256), dtype="uint8", name="slices")
    placed = keras.Input((len(PLACES), 2), dtype="float32", name="centres")
    trainer = keras.Model({"slices": raw, "centres": placed},
                          refiner({"windows": Windows(REFINER_WINDOW, REFINER_SCALE)(raw, placed)}))
    trainer.compile(optimizer=adamw(training.lr, 1e-4, steps, training.refiner_epochs), loss=OffsetLoss(),
                    jit_compile=devices.xla)
    log_dir.mkdir(parents=True, exist_ok=True)
    history = keras.callbacks.CSVLogger(str(log_dir / "history.csv"), append=True)  # the refiner's rows follow
    verbose = 0 if quiet else 2
    if training.epochs:
        coarse.fit(coarse_data, epochs=training.epochs, callbacks=[history], verbose=verbose)
    if training.refiner_epochs:
        trainer.fit(refiner_data, initial_epoch=training.epochs, epochs=training.epochs + training.refiner_epochs,
                    callbacks=[history], verbose=verbose)
    model = build_localiser(**net)
    model.get_layer("coarse").set_weights(coarse.get_weights())
    model.get_layer("refiner").set_weights(refiner.get_weights())
    return model


def load_localiser(folder, plane):
    """A localise.py folder's model for one plane, after checking the folder against its manifest."""
    from learning.artefacts import check_files

    manifest, path = check_files(folder, plane, "localiser")
    model = build_localiser(**manifest["model"])
    model.load_weights(str(path))
    return model
