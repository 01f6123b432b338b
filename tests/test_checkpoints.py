"""The --resume state: a resumed fit continues exactly where it stopped, and a kill at any instant,
mid-save included, leaves a state that loads."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _model(lr=1e-2, width=16, hidden=1):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,))] + [keras.layers.Dense(width, activation="relu") for _ in range(hidden)]
                             + [keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse", metrics=[keras.metrics.AUC(name="auc")])
    return model


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    return x, (x[:, 0] + 0.5 * rng.normal(size=64) > 0).astype("float32")


def _fit(model, folder, epochs, initial_epoch=0, state=None):
    from learning.checkpoints import EpochCheckpoint

    x, y = _data()
    return model.fit(x, y, validation_data=(x, y), batch_size=16, shuffle=False, epochs=epochs,
                     initial_epoch=initial_epoch, verbose=0, callbacks=[EpochCheckpoint(folder, "val_auc", None, state)])


def test_a_resumed_fit_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    """Adam's moments and step count travel with the state: without them the resumed steps differ."""
    from learning.checkpoints import read_state, restore

    straight = _model()
    _fit(straight, tmp_path / "straight", epochs=4)

    _fit(_model(), tmp_path / "cut", epochs=2)
    state = read_state(tmp_path / "cut")
    assert state["epoch"] == 2 and sorted(p.name for p in (tmp_path / "cut" / "resume").iterdir()) == [
        "epoch-2.weights.h5", "state.json"]
    resumed = _model()
    restore(resumed, tmp_path / "cut", state)
    _fit(resumed, tmp_path / "cut", epochs=4, initial_epoch=2, state=state)

    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(straight.get_weights()[0], _model().get_weights()[0])  # it did train


def test_a_resumed_run_keeps_the_best_epoch_it_had(tmp_path):
    """At learning rate 0 every epoch scores the same: the best stays the first epoch's file, where a
    checkpoint that forgot its best score on resume would replace it with the first resumed epoch."""
    from learning.checkpoints import BEST, read_state, restore

    _fit(_model(lr=0.0), tmp_path, epochs=2)
    best = (tmp_path / BEST).stat().st_ino
    state = read_state(tmp_path)
    model = _model(lr=0.0)
    restore(model, tmp_path, state)
    _fit(model, tmp_path, epochs=4, initial_epoch=2, state=state)
    assert read_state(tmp_path)["epoch"] == 4 and (tmp_path / BEST).stat().st_ino == best


KEEP_SAVING = """
import sys
sys.path.insert(0, {train!r}); sys.path.insert(0, {tests!r})
from learning.checkpoints import read_state, restore
from test_checkpoints import _fit, _model
model, state = _model(width=512, hidden=2), read_state({folder!r})
if state:
    restore(model, {folder!r}, state)
done = state["epoch"] if state else 0
_fit(model, {folder!r}, epochs=done + 100000, initial_epoch=done, state=state)
"""


def test_a_kill_at_any_instant_leaves_a_state_that_loads(tmp_path):
    """Epochs of a model whose save (3 MB with Adam's slots) takes most of each epoch, killed three times
    at random instants, mostly mid-save: each time the state loads, and the next process resumes from it."""
    from learning.checkpoints import read_state, restore

    rng = np.random.default_rng(1)
    code = KEEP_SAVING.format(train=str(ROOT / "train"), tests=str(ROOT / "tests"), folder=str(tmp_path))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    epochs = []
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        start = read_state(tmp_path)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and read_state(tmp_path) == start:
            time.sleep(0.01)
        assert proc.poll() is None, "the training process ended before it could be killed"
        time.sleep(rng.uniform(0.05, 0.5))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        state = read_state(tmp_path)
        restore(_model(width=512, hidden=2), tmp_path, state)  # raises on a half-written file
        epochs.append(state["epoch"])
    assert epochs[0] >= 1 and epochs[0] < epochs[1] < epochs[2]  # each process went on from the last
