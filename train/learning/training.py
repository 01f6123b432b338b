"""How one plane's model is trained: the loss, the optimiser schedule, the callbacks, the fit.

Keras only at import time (no TensorFlow): sweep.py uses the loss and the schedule under JAX.
"""

import json
import os

import keras
import numpy as np
from keras import ops

from learning.checkpoints import BEST, EpochCheckpoint, finish, read_state, restore, trim_history


def positive_weights(labels, abnormal="balanced"):
    """neg/pos per task, so each task's positives and negatives weigh the same in the loss:
    ACL tears are 18 % of exams. `abnormal`, a number, replaces the abnormal task's: balanced, an
    abnormal exam (81 % of them) weighs 0.23 of a normal one, and the hard ones, abnormal with no
    tear, weigh least, so the abnormal score learns the tears alone (docs/experiments.md, what the
    abnormal score sees; fit.py's default is 1)."""
    labels = np.asarray(labels, np.float64)
    pos = labels.sum(axis=0)
    weights = ((len(labels) - pos) / np.maximum(pos, 1)).tolist()
    if abnormal != "balanced":
        weights[0] = float(abnormal)
    return weights


@keras.saving.register_keras_serializable("mrnet")
class WeightedBCE(keras.losses.Loss):
    """Binary cross-entropy with a positive weight per task."""

    def __init__(self, pos_weight, name="weighted_bce", reduction="mean_with_sample_weight", **kw):
        # the mean over the exams of weight 1: fixed-shape batches carry blank fillers of weight 0, and
        # Keras' default would divide by every row, fillers included (printed loss and val_loss then differ)
        super().__init__(name=name, reduction=reduction, **kw)
        self.pos_weight = [float(w) for w in pos_weight]

    def call(self, y_true, logits):
        y_true = ops.cast(y_true, logits.dtype)
        w = ops.convert_to_tensor(self.pos_weight, dtype=logits.dtype)
        per_task = -(w * y_true * ops.log_sigmoid(logits) + (1 - y_true) * ops.log_sigmoid(-logits))
        return ops.mean(per_task, axis=-1)

    def get_config(self):
        return {**super().get_config(), "pos_weight": self.pos_weight}


def adamw(lr, weight_decay, steps_per_epoch, epochs):
    """One warm-up epoch then cosine decay: from-scratch CNNs diverge without the warm-up."""
    schedule = keras.optimizers.schedules.CosineDecay(
        lr * 0.1, decay_steps=max(1, steps_per_epoch * (epochs - 1)), warmup_target=lr,
        warmup_steps=steps_per_epoch)
    return keras.optimizers.AdamW(schedule, weight_decay=weight_decay)


def pooled_input(model):
    """Whether a plane model (a recipe Model section, or its dict) trains on what the pipeline
    prepares (block-averaged slices; with crops, windows too) rather than raw uint8 slices: the
    weights are the same (learning/export.py)."""
    model = model if isinstance(model, dict) else vars(model)
    return model["crops"] or model["input_size"] < 256


def split_logits(step, dataset):
    """(logits, labels) of every real exam of a dataset, in order: rows of sample weight 0 (the blank
    fillers of fixed-shape batches) are dropped, so they can never reach a metric."""
    logits, labels = [], []
    for x, y, *weights in dataset:
        keep = np.asarray(weights[0]) > 0 if weights else slice(None)
        logits.append(np.asarray(step(x), np.float32)[keep])
        labels.append(np.asarray(y, np.float32)[keep])
    if not logits:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    return np.concatenate(logits), np.concatenate(labels)


def tune_logs(labels, logits, loss):
    """What the tuning split says of an epoch, from scoring/metrics.py (the competition metric, the
    one fit.py's table and evaluate.py print): val_auc_<task>, val_auc (their mean) and val_loss.

    val_auc is what the best epoch and early stopping are chosen on, so it is always a number: where
    a task's tuning labels hold one class it is the mean over the defined tasks, and 0.5 (chance)
    where none is defined, which keeps the first epoch."""
    from mrnet.contract import TASKS
    from scoring.metrics import auc_or_none

    aucs = {task: auc_or_none(labels[:, t], logits[:, t]) for t, task in enumerate(TASKS)}
    defined = [a for a in aucs.values() if a is not None]
    out = {f"val_auc_{task}": (0.5 if a is None else a) for task, a in aucs.items()}
    out["val_auc"] = float(np.mean(defined)) if defined else 0.5
    out["val_loss"] = float(loss(labels, logits))
    return out


class TuneScore(keras.callbacks.Callback):
    """At each epoch's end, the tuning split's real exams through the model, scored with the
    competition metric; first in the callback list, so early stopping, the best-epoch checkpoint, the
    CSV log and the progress bar all read these numbers.

    Keras' own AUC counted the fillers of fixed-shape batches (label 0, one shared logit) as negatives,
    since it weights only the loss and `weighted_metrics`: fillers outnumbered the tuning exams in
    some fits, and the kept epoch was chosen by a metric 0.16 off scikit-learn's on the same logits."""

    def __init__(self, dataset, loss):
        super().__init__()
        self.dataset, self.loss, self.step = dataset, loss, None

    def on_epoch_end(self, epoch, logs=None):
        if self.step is None:
            self.step = inference_step(self.model)
        logits, labels = split_logits(self.step, self.dataset)
        logs.update(tune_logs(labels, logits, self.loss))


def plane_callbacks(plane_dir, tensorboard_dir, epochs, patience, tune=None, state=None):
    """The tuning score (TuneScore over the `tune` dataset), early stopping, CSV and TensorBoard logs,
    then the best epoch's weights and the --resume state (learning/checkpoints.py: crash-safe, and it
    restores early stopping's count on resume)."""
    # patience counts only in the second half: a run is never stopped before it has had the time
    # to start learning (a run stopped at epoch 7 keeping epoch 0 is what this prevents)
    stopping = keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=patience,
                                             start_from_epoch=epochs // 2)
    return [cb for cb in (tune, stopping) if cb is not None] + [
        keras.callbacks.CSVLogger(str(plane_dir / "history.csv"), append=True),
        keras.callbacks.TensorBoard(str(tensorboard_dir), write_graph=False),
        EpochCheckpoint(plane_dir, "val_auc", stopping, state),
    ]


def compile_plane(model, lr, compute, steps, epochs, pos_weight, devices):
    """The optimiser's schedule spans `epochs` (a phase of the run when the backbone starts frozen);
    `compute` is the recipe's Compute section (weight decay, steps per call into the graph)."""
    model.compile(optimizer=adamw(lr, compute.weight_decay, steps, epochs),
                  loss=WeightedBCE(pos_weight),
                  # weighted: the fillers of fixed-shape batches have weight 0 and stay out of the training
                  # AUC (the tuning AUC comes from TuneScore: scoring/metrics.py on real exams only)
                  weighted_metrics=[keras.metrics.AUC(multi_label=True, from_logits=True, name="auc",
                                                      num_thresholds=500)],
                  jit_compile=devices.xla,
                  # several steps per call into the graph: Keras' per-step Python costs as much
                  # as a 64 px step (benchmarks/training_throughput.py)
                  steps_per_execution=compute.steps_per_execution if devices.replicas == 1 else 1)


def train_plane(plane, plane_dir, run_dir, datasets, steps, pos_weight, config, devices, init_weights=None):
    """Fit one plane's multi-task model, keep its best epoch (tuning mean AUC), and write that
    epoch's logits for every split to plane_dir/logits.npz (the chief only).

    `datasets(name, distribute)` builds a split's dataset for this plane; `config` is fit.py's
    (learning/recipe.FitConfig); `devices` is what distributed.setup_devices returned;
    `init_weights` the pretrained weights file to start from (fit.py --init), or None.
    """
    from learning.distributed import build_from_spec
    from learning.model import build_model
    from learning.recipe import LR_FROM_SCRATCH, model_config

    recipe, training, compute = config.model, config.training, config.compute
    plane_dir.mkdir(parents=True, exist_ok=True)
    fit_ds = datasets("fit", True)
    frozen = training.freeze_epochs
    state = read_state(plane_dir)  # --resume: the last complete epoch (fit.py empties the folder otherwise)
    done = state["epoch"] if state else 0
    head_first = done < frozen  # a resumed run past the frozen phase restores the second phase's state
    pretrained = "window_network" if recipe.crops else recipe.backbone  # what --init loads, --freeze-epochs holds
    pooled = pooled_input(recipe)
    # seeded here, not only at set-up: building a strategy's datasets draws from the global seed, and
    # one process may train several planes, so without this each strategy would start from other weights
    keras.utils.set_random_seed(recipe.seed)
    with devices.strategy.scope():
        # trained on what the pipeline prepares: block-averaged slices, windows (export takes raw slices)
        model = build_model(**model_config(recipe), pooled_input=pooled)
        if init_weights and not state:  # fit.py --init: pretrained weights
            (model.get_layer(pretrained) if recipe.crops else model).load_weights(init_weights)
        if head_first:
            # the pretrained network held still while the rest learns to read it, at the from-scratch
            # rate (nothing pretrained moves, so nothing is forgotten): with both moving from the
            # start, the head's early gradients rewrite what pretraining taught
            model.get_layer(pretrained).trainable = False
            compile_plane(model, LR_FROM_SCRATCH, compute, steps, frozen, pos_weight, devices)
        else:
            compile_plane(model, training.lr, compute, steps, training.epochs - frozen, pos_weight, devices)
        if devices.workers > 1:
            build_from_spec(model, devices.strategy, datasets("tune", False, pooled=True).element_spec)
        if state:
            restore(model, plane_dir, state)
    trim_history(plane_dir / "history.csv", done)
    # every tuning exam once, ragged, as the table at the end reads them (TuneScore)
    tune = TuneScore(datasets("tune", False, pooled=pooled), WeightedBCE(pos_weight))
    callbacks = plane_callbacks(plane_dir, run_dir / "tensorboard" / plane, training.epochs, training.patience, tune,
                                state)
    verbose = 0 if compute.quiet else 1
    print(f"[{plane}] training: {steps} batches/epoch, up to {training.epochs} epochs"
          + (f", resuming after epoch {done}" if state else ""))
    if head_first:
        print(f"[{plane}] {pretrained} frozen for {frozen} epochs")
        model.fit(fit_ds, epochs=frozen, initial_epoch=done, callbacks=callbacks, verbose=verbose)
        model.get_layer(pretrained).trainable = True
        with devices.strategy.scope():
            compile_plane(model, training.lr, compute, steps, training.epochs - frozen, pos_weight, devices)
    if not (state and state["stopped"] and done >= frozen):  # early stopping had ended it
        model.fit(fit_ds, epochs=training.epochs, initial_epoch=max(done, frozen), callbacks=callbacks,
                  verbose=verbose)
    if not devices.chief:
        finish(plane_dir)
        return
    # predict on one device: every exam once, in order, whatever the strategy
    (plane_dir / "model_config.json").write_text(json.dumps(model_config(recipe)))
    # on what the pipeline prepared, as trained: 4x faster than the raw 256 px slices through the
    # exported graph (fit.py's last plane waited a minute for it on 1,250 exams), and the same
    # logits (the exported front computes the same bits: tests/test_pipeline.py)
    model = load_trained(plane_dir)
    out = {name: predict_logits(model, datasets(name, False, pooled=pooled)) for name in ("fit", "tune", "valid")}
    # logits.npz marks the plane finished for --resume: renamed into place whole, then the state goes
    np.savez(plane_dir / "logits.partial.npz", **out)
    os.replace(plane_dir / "logits.partial.npz", plane_dir / "logits.npz")
    finish(plane_dir)


def inference_step(model):
    """The model as one graph for any ragged batch: bound to a signature of its own inputs (slices,
    counts and, with crops, windows and gates, each with a free batch axis), it is traced once,
    whatever the batch shapes.

    Keras' model.predict instead retraces its step when ragged shapes change (each batch has its own
    slice and exam counts), which TensorFlow warns about and which costs a full graph trace each
    time: seconds for a large backbone (benchmarks/retracing.py measures both)."""
    from mrnet.runtime import import_tensorflow

    tf = import_tensorflow()
    signature = {name: tf.TensorSpec(spec.shape, spec.dtype, name=name) for name, spec in model.input.items()}
    return tf.function(lambda x: model(x, training=False), input_signature=[signature])


def predict_logits(model, dataset, step=None):
    """Every exam's logits, in order, float32, through inference_step."""
    return split_logits(step or inference_step(model), dataset)[0]


def load_trained(plane_dir, config=None):
    """The best epoch's model as it trained (on what the pipeline prepares, learning.training.
    pooled_input), built for inference: augmentation is identity outside training."""
    from learning.model import build_model

    config = config or json.loads((plane_dir / "model_config.json").read_text())
    model = build_model(**{**config, "weights": "none"}, pooled_input=pooled_input(config))
    model.load_weights(str(plane_dir / BEST))
    return model
