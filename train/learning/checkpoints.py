"""Crash-safe checkpoints: a plane's best epoch, and the state --resume continues from.

A run may be killed at any instant (an OOM kill, a lost machine, Ctrl-C twice). Keras' BackupAndRestore
and ModelCheckpoint write their HDF5 files in place, so a kill during a write leaves a file that cannot
be opened and the resumed run dies on it ("bad object header version number": three planes train side
by side, so one is usually mid-save when another is killed). A resumed ModelCheckpoint also forgets the
best score so far, and its first epoch replaces a better best. Here every file is written under a
temporary name and renamed into place; the state (epoch, best score, early stopping's count) is one
JSON file, renamed last, that names the weights it belongs to. Whatever the instant of the kill, the
folder holds either the previous complete epoch or the new one.
"""

import csv
import json
import os
from pathlib import Path

import keras

BEST = "best.weights.h5"
RESUME = "resume"  # folder: the latest epoch's weights (optimizer included) and state.json


def _save_weights(model, path):
    partial = path.with_name(path.name.replace(".weights.h5", ".partial.weights.h5"))
    model.save_weights(str(partial), overwrite=True)
    os.replace(partial, path)


def save_json(obj, path, indent=None):
    """Written under a temporary name and renamed: a kill mid-write leaves the previous file whole."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(obj, indent=indent))
    os.replace(partial, path)


def read_state(plane_dir):
    """The last complete epoch's state, or None when the plane has none (a fresh start)."""
    path = Path(plane_dir) / RESUME / "state.json"
    return json.loads(path.read_text()) if path.is_file() else None


def restore(model, plane_dir, state):
    """Model and optimizer as they were at the end of the state's epoch (the model compiled first)."""
    if not model.optimizer.built:  # its slots must exist before they can be loaded
        model.optimizer.build(model.trainable_variables)
    model.load_weights(str(Path(plane_dir) / RESUME / state["weights"]))


def trim_history(history, epochs):
    """Drop history rows of epochs the state does not hold (logged, then killed before the state was
    written): they are trained again, and each epoch is logged once."""
    history = Path(history)
    if not history.is_file():
        return
    with open(history, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) < epochs]
    partial = history.with_name(history.name + ".partial")
    with open(partial, "w", newline="") as f:
        csv.writer(f).writerows(kept)
    os.replace(partial, history)


def finish(plane_dir):
    """The run is complete: the resume state is no longer needed (it holds the optimizer's slots too)."""
    folder = Path(plane_dir) / RESUME
    for path in folder.glob("*"):
        path.unlink()
    if folder.exists():
        folder.rmdir()


class EpochCheckpoint(keras.callbacks.Callback):
    """At each epoch's end: best.weights.h5 when `monitor` improved, then the resume state.

    Placed after EarlyStopping and CSVLogger in the callback list, so the state holds early stopping's
    count for this epoch and the history row is on disk before the state says the epoch is done."""

    def __init__(self, plane_dir, monitor="val_auc", early_stopping=None, state=None):
        super().__init__()
        self.plane_dir, self.monitor, self.early_stopping = Path(plane_dir), monitor, early_stopping
        self.state = state or {}
        self.best = self.state.get("best", float("-inf"))

    def on_train_begin(self, logs=None):
        es, saved = self.early_stopping, self.state.pop("early_stopping", None)
        if es is not None and saved:  # after es's own on_train_begin reset it; the first fit only
            es.wait, es.best, es.best_epoch = saved["wait"], saved["best"], saved["best_epoch"]

    def on_epoch_end(self, epoch, logs=None):
        folder = self.plane_dir / RESUME
        folder.mkdir(parents=True, exist_ok=True)
        score = (logs or {}).get(self.monitor)
        if score is not None and float(score) > self.best:
            self.best = float(score)
            _save_weights(self.model, self.plane_dir / BEST)
        name = f"epoch-{epoch + 1}.weights.h5"
        _save_weights(self.model, folder / name)
        es = self.early_stopping
        state = {"epoch": epoch + 1, "weights": name, "best": self.best,
                 "stopped": bool(self.model.stop_training)}
        if es is not None:
            best = None if es.best is None else float(es.best)
            state["early_stopping"] = {"wait": int(es.wait), "best": best, "best_epoch": int(es.best_epoch)}
        save_json(state, folder / "state.json")
        for old in folder.glob("epoch-*.weights.h5"):
            if old.name != name:
                old.unlink()
