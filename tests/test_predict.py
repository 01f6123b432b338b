"""predict.py honours the competition contract, rejects bad input whole, and trusts only an intact bundle."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PLANES = ("sagittal", "coronal", "axial")


def run_predict(input_csv, output_csv, bundle, cwd=None, script=ROOT / "submission" / "predict.py", *extra):
    cmd = [sys.executable, str(script), str(input_csv), str(output_csv), "--bundle", str(bundle), "--quiet", *extra]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def valid_lines(phantom, cases=("0012", "0013", "0014")):
    return [f"{phantom.name}/valid/{p}/{c}.npy" for c in cases for p in PLANES]


def rows(path):
    return [tuple(float(v) for v in line.split(",")) for line in Path(path).read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tiny_phantom, tiny_bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.csv"
    inp = out.with_name("in.csv")
    inp.write_text("\n".join(valid_lines(tiny_phantom)) + "\n")
    r = run_predict(inp, out, tiny_bundle, cwd=tiny_phantom.parent)
    assert r.returncode == 0, r.stderr
    return out


def test_output_format_and_row_count(reference, tiny_phantom, tiny_bundle):
    """Three plain numbers a line, one line per exam, and the numbers are the bundle's: each plane's
    SavedModel on the exam's raw series, through the combiner, computed here without predict.py."""
    import json

    import tensorflow as tf

    from mrnet.combiner import apply

    text = reference.read_text()
    lines = text.splitlines()
    assert len(lines) == 3 and text.endswith("\n")
    for line in lines:
        values = line.split(",")
        assert len(values) == 3 and all("[" not in v for v in values)
    cases = ("0012", "0013", "0014")  # valid_lines' exams, in the input's order
    logits = {}
    for plane in ("sagittal", "coronal", "axial"):
        served = tf.saved_model.load(str(tiny_bundle / plane))
        logits[plane] = np.concatenate([served.serve(
            slices=tf.constant(np.load(tiny_phantom / "valid" / plane / f"{c}.npy", allow_pickle=False)),
            counts=tf.constant([len(np.load(tiny_phantom / "valid" / plane / f"{c}.npy", allow_pickle=False))],
                               tf.int32))["logits"].numpy() for c in cases])
    expected = apply(json.loads((tiny_bundle / "combiner.json").read_text()), logits)
    np.testing.assert_allclose(rows(reference), expected, atol=1e-6)


def test_exams_in_order_of_first_appearance_from_any_line_order_crlf_absolute_paths(tiny_phantom, tiny_bundle,
                                                                                     reference, tmp_path):
    """One input that an organiser's CSV may be: exams in another order (the output follows each
    exam's first appearance), each exam's planes in another order, CRLF line ends, an absolute path
    among relative ones and a blank line at the end. One predict run for all of it: each run is a
    TensorFlow start and three SavedModel loads, 15-25 s of the suite."""
    lines = valid_lines(tiny_phantom)  # exams 0012, 0013, 0014, three planes each
    shuffled = [lines[i] for i in (8, 6, 7, 2, 0, 1, 4, 5, 3)]  # exams 0014, 0012, 0013; planes reordered
    shuffled[0] = str(tiny_phantom.parent / shuffled[0])      # absolute path mixed with relative ones
    inp = tmp_path / "in.csv"
    inp.write_bytes(("\r\n".join(shuffled) + "\r\n\r\n").encode())
    out = tmp_path / "out.csv"
    r = run_predict(inp, out, tiny_bundle, cwd=tiny_phantom.parent)
    assert r.returncode == 0, r.stderr
    ref = rows(reference)
    np.testing.assert_allclose(rows(out), [ref[2], ref[0], ref[1]], atol=1e-6)


def test_same_input_same_bytes(tiny_phantom, tiny_bundle, reference, tmp_path):
    inp = tmp_path / "in.csv"
    inp.write_text("\n".join(valid_lines(tiny_phantom)) + "\n")
    out = tmp_path / "again.csv"
    assert run_predict(inp, out, tiny_bundle, cwd=tiny_phantom.parent).returncode == 0
    assert out.read_bytes() == reference.read_bytes()


def test_every_bad_line_reported_status_2_and_no_output(tiny_phantom, tiny_bundle, tmp_path):
    bad = tmp_path / "bad" / "valid"
    for p in PLANES:
        (bad / p).mkdir(parents=True)
    good = [tiny_phantom / "valid" / p / "0012.npy" for p in PLANES]
    np.save(bad / "sagittal" / "9001.npy", np.zeros((4, 256, 256), np.float32) + np.nan)   # non-finite
    np.save(bad / "coronal" / "9001.npy", np.zeros((0, 256, 256), np.uint8))               # zero slices
    np.save(bad / "axial" / "9001.npy", np.zeros((3, 256, 255), np.uint8))                 # in-plane size
    (bad / "sagittal" / "9002.npy").write_text("hello")                                    # not npy
    np.save(bad / "coronal" / "9002.npy", np.array([None, 1], dtype=object), allow_pickle=True)  # pickled
    np.save(bad / "axial" / "9002.npy", np.full((3, 256, 256), 1000, np.int16))            # not 0-255
    (bad / "knee").mkdir()
    lines = [*map(str, good),
             str(bad / "sagittal" / "9001.npy"), str(bad / "coronal" / "9001.npy"), str(bad / "axial" / "9001.npy"),
             str(bad / "sagittal" / "9002.npy"), str(bad / "coronal" / "9002.npy"), str(bad / "axial" / "9002.npy"),
             str(bad / "sagittal" / "9003.npy"),                                           # missing file
             str(bad / "knee" / "9004.npy"),                                               # unknown plane folder
             str(good[0])]                                                                 # plane repeated
    inp = tmp_path / "in.csv"
    inp.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    out.write_text("previous results\n")
    r = run_predict(inp, out, tiny_bundle)
    assert r.returncode == 2
    expected = [(4, "non-finite"), (5, "zero slices"), (6, "256x255"), (7, "not a .npy file"),
                (8, "object (pickled) array"), (9, "outside 0-255"), (10, "file not found"),
                (11, "'knee' is not a plane"), (12, "already has a sagittal series (line 1)")]
    for line, reason in expected:
        assert any(f"in.csv:{line}:" in m and reason in m for m in r.stderr.splitlines()), (line, reason, r.stderr)
    assert out.read_text() == "previous results\n"  # untouched, never truncated


def test_exam_missing_a_plane_is_rejected(tiny_phantom, tiny_bundle, tmp_path):
    inp = tmp_path / "in.csv"
    inp.write_text("\n".join(valid_lines(tiny_phantom)[:5]) + "\n")
    out = tmp_path / "out.csv"
    r = run_predict(inp, out, tiny_bundle, cwd=tiny_phantom.parent)
    assert r.returncode == 2 and "exam 0013 has no axial series" in r.stderr and not out.exists()


@pytest.mark.parametrize("damage", ["altered", "missing", "unlisted", "manifest"])
def test_altered_or_partial_bundle_stops_with_one_line(tiny_phantom, tiny_bundle, tmp_path, damage):
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    if damage == "altered":
        c = json.loads((bundle / "combiner.json").read_text())
        c["tasks"]["acl"]["intercept"] += 1.0
        (bundle / "combiner.json").write_text(json.dumps(c))
    elif damage == "missing":
        (bundle / "axial" / "saved_model.pb").unlink()
    elif damage == "unlisted":
        (bundle / "extra.txt").write_text("x")
    else:
        (bundle / "manifest.json").unlink()
    inp = tmp_path / "in.csv"
    inp.write_text("\n".join(valid_lines(tiny_phantom)) + "\n")
    out = tmp_path / "out.csv"
    r = run_predict(inp, out, bundle, cwd=tiny_phantom.parent)
    assert r.returncode == 2 and not out.exists()
    message = r.stderr.strip().splitlines()
    assert len(message) == 1 and message[0].startswith("predict: ")
    assert {"altered": "checksum mismatch", "missing": "missing from the bundle", "unlisted": "not listed",
            "manifest": "manifest.json: missing"}[damage] in message[0]


def test_submission_folder_predicts_alone(tiny_phantom, tiny_bundle, reference, tmp_path):
    """Copied without train/ (and the bundle inside it), it runs the organisers' command."""
    sub = tmp_path / "upload" / "submission"
    shutil.copytree(ROOT / "submission", sub, ignore=shutil.ignore_patterns("bundle", "__pycache__"))
    shutil.copytree(tiny_bundle, sub / "bundle")
    data = tmp_path / "upload" / tiny_phantom.name
    shutil.copytree(tiny_phantom / "valid", data / "valid")
    (tmp_path / "upload" / "in.csv").write_text("\n".join(valid_lines(tiny_phantom)) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "submission/predict.py", "in.csv", "out.csv"], cwd=tmp_path / "upload",
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "upload" / "out.csv").read_bytes() == reference.read_bytes()


def test_manifest_describes_inputs_outputs_and_self_check(tiny_bundle):
    """Like MONAI's verify_net_in_out: random inputs built from the manifest's spec through the frozen model."""
    import tensorflow as tf

    from mrnet.bundle import verify

    manifest, _ = verify(tiny_bundle, tf.__version__)
    assert manifest["output_spec"]["tasks"] == ["abnormal", "acl", "meniscus"]
    assert set(manifest["files"]) >= {"combiner.json", "sagittal/saved_model.pb"}
    for key in ("created", "code_commit", "libraries", "preprocessing", "configuration", "data", "metrics"):
        assert key in manifest
    rng = np.random.default_rng(0)
    for plane in PLANES:
        spec = manifest["input_spec"][plane]
        counts = np.array([3, 1, 5], np.int32)
        lo, hi = spec["slices"]["value_range"]
        slices = rng.integers(lo, hi + 1, (counts.sum(), *spec["slices"]["shape"][1:]), dtype=spec["slices"]["dtype"])
        model = tf.saved_model.load(str(tiny_bundle / plane))
        out = model.serve(slices=tf.constant(slices), counts=tf.constant(counts))
        probs, logits = out["probabilities"].numpy(), out["logits"].numpy()
        assert probs.shape == (3, 3) and probs.dtype == np.float32
        np.testing.assert_allclose(probs, 1 / (1 + np.exp(-logits.astype(np.float64))), atol=1e-6)
        assert np.abs(logits[0] - logits[2]).max() > 1e-4  # the exams differ: the spec's inputs reach the model
