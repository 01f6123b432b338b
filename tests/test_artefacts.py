"""The folder format the bundle and the artefacts share, the shipped localiser and crop CNN, and the
frozen configuration every command parses once."""

import json
import os
import subprocess
import sys
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import numpy as np
import pytest

from learning.recipe import FitConfig, LocaliseConfig, PretrainConfig, fit_config, from_json, parse, to_json

ROOT = Path(__file__).resolve().parents[1]


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    """write_folder: the manifest hashes every file; a fill that fails leaves the old folder as it was
    and nothing beside it; a new folder takes the old one's place in one exchange."""
    from mrnet.bundle import BundleError, verify_folder, write_folder

    dest = tmp_path / "artefact"

    def fill(text):
        return lambda folder: (folder / "a.txt").write_text(text)

    write_folder(dest, fill("one"), {"what": "test"})
    assert verify_folder(dest)["files"].keys() == {"a.txt"}

    def broken(folder):
        (folder / "a.txt").write_text("half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_folder(dest, broken, {"what": "test"})
    assert (dest / "a.txt").read_text() == "one" and sorted(p.name for p in tmp_path.iterdir()) == ["artefact"]
    inode = dest.stat().st_ino
    write_folder(dest, fill("two"), {"what": "test"})
    assert (dest / "a.txt").read_text() == "two" and sorted(p.name for p in tmp_path.iterdir()) == ["artefact"]
    assert dest.stat().st_ino != inode  # a new folder, not the old one rewritten
    (dest / "a.txt").write_text("tampered")
    with pytest.raises(BundleError, match="a.txt: checksum mismatch"):
        verify_folder(dest)


def test_the_configuration_is_frozen_and_travels_as_json():
    config = parse(FitConfig, None, ["--epochs", "3", "--corpus-styles", "geometric", "--no-crops", "--lr", "0"])
    assert config.training.epochs == 3 and config.corpus.styles == ("geometric",) and config.training.lr == 0
    assert config.training.init == "none" and config.compute.batch_slices == 96  # resolved once, at parse
    with pytest.raises(FrozenInstanceError):
        config.training.epochs = 4
    assert from_json(FitConfig, to_json(config)) == config
    localise = parse(LocaliseConfig, None, ["--out", "x", "--corpus-dirs", "a", "b", "--measure-on", "c"])
    assert from_json(LocaliseConfig, to_json(localise)) == localise and localise.corpus.dirs == (Path("a"), Path("b"))
    with pytest.raises(TypeError, match="no setting \\['widht'\\] in model"):
        fit_config(model={"widht": 8})
    with pytest.raises(TypeError, match="unknown settings \\['extra'\\]"):
        from_json(PretrainConfig, json.dumps({"extra": 1}))


def test_no_command_assigns_to_its_settings_after_parsing():
    """The settings are one frozen object: no `args.x = ...` left anywhere in the commands or the
    modules they use (grep), so what a run used is what it parsed and resolved."""
    import re

    pattern = re.compile(r"\bargs\.[a-z_]+\s*=[^=]|setattr\(args")
    offenders = [f"{path.relative_to(ROOT)}:{n}" for folder in ("train", "benchmarks", "submission")
                 for path in (ROOT / folder).rglob("*.py")
                 for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def _random_slices(n=5, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (n, 256, 256)).astype(np.uint8)


def test_a_localiser_saved_and_loaded_gives_the_same_places(tmp_path):
    import keras

    from learning.artefacts import FORMAT_VERSION
    from learning.localiser import build_localiser, load_localiser
    from mrnet.bundle import write_folder

    keras.utils.set_random_seed(1)
    shape = dict(input_size=64, width=4, grid=32, refiner_width=4, refinements=1)
    model = build_localiser(**shape)
    write_folder(tmp_path / "loc", lambda folder: model.save_weights(str(folder / "sagittal.weights.h5")),
                 {"planes": ["sagittal"], "model": shape}, FORMAT_VERSION)
    again = load_localiser(tmp_path / "loc", "sagittal")
    slices = _random_slices()
    a, b = model({"slices": slices}), again({"slices": slices})
    for key in ("centre", "presence", "coarse"):
        np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[key]), atol=1e-5)
    fresh = build_localiser(**shape)  # a different start: the comparison can fail
    assert np.abs(np.asarray(fresh({"slices": slices})["presence"]) - np.asarray(a["presence"])).max() > 1e-3


def test_a_pretrained_crop_cnn_saved_and_loaded_scores_the_same(tmp_path):
    import keras

    from learning.model import build_model, window_network

    keras.utils.set_random_seed(2)
    network = window_network(4, "avgmax")
    windows = np.random.default_rng(3).normal(50, 20, (6, 32, 32)).astype(np.float32)
    network.save_weights(str(tmp_path / "w.weights.h5"))
    model = build_model(width=4, crop_width=4, crops=True, pooled_input=True)
    model.get_layer("window_network").load_weights(str(tmp_path / "w.weights.h5"))
    np.testing.assert_allclose(np.asarray(model.get_layer("window_network")(windows)), np.asarray(network(windows)),
                               atol=1e-5)


def test_the_shipped_artefacts_are_the_recipe_s_own():
    """fit.py on a fresh clone trains neither the localiser nor the crop CNN: it uses the repository's,
    and only while they were made with exactly the recipe it runs (a changed default refuses them, and
    this test fails until benchmarks/shipped_artefacts.py --make has remade them). Every file is the
    one its manifest hashed."""
    from learning.artefacts import (SHIPPED, localiser_config, localiser_folder, pretrain_config, pretrained_folder,
                                    recipe_of)
    from mrnet.bundle import verify_folder

    config = fit_config()
    for kind, wanted in (("localiser", localiser_config(config, None)), ("pretrained", pretrain_config(config, None))):
        manifest = verify_folder(SHIPPED[kind], what="artefact")
        assert manifest["recipe"] == recipe_of(wanted), kind
        assert manifest["planes"] == ["sagittal", "coronal", "axial"]
        assert manifest["made_by"] == "python benchmarks/shipped_artefacts.py --make"
        assert manifest["corpus"]["generator_version"] == __import__("phantom.writer").writer.GENERATOR_VERSION
        assert str(ROOT) not in json.dumps(manifest)
    assert localiser_folder(config) == SHIPPED["localiser"] and pretrained_folder(config) == SHIPPED["pretrained"]
    other = replace(config, corpus=replace(config.corpus, styles=("geometric",)))
    assert recipe_of(localiser_config(other, None)) != recipe_of(localiser_config(config, None))


def test_a_run_of_another_recipe_is_not_given_the_shipped_localiser():
    """--localiser auto with another corpus (a leave-one-style-out run): the shipped folder was made on
    both drawings, so it does not match, and fit.py trains its own instead of using it."""
    from learning.artefacts import SHIPPED, localiser_config, matches, recipe_of

    config = fit_config(corpus={"styles": ("geometric",)})
    assert not matches(SHIPPED["localiser"], recipe_of(localiser_config(config, None)))


def test_fit_refuses_a_combination_that_cannot_train_by_name():
    proc = subprocess.run([sys.executable, str(ROOT / "train" / "fit.py"), "--no-crops", "--weights", "imagenet"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 2 and "--weights is for a keras.applications --backbone" in proc.stderr
