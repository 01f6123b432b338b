"""localise.py --check: where the shipped localiser's windows fall on a folder, drawn and counted."""

import json

import numpy as np
import pytest
from PIL import Image, ImageColor

import localise
from exploring.localisation import COLOURS, window_figures
from mrnet.contract import PLACES


def test_the_figures_count_shares_jumps_and_exams_without_a_window():
    # exam 0: meniscus A used on slices 0-1 and 3-4, moving 3 px a slice, except a 40 px leap across
    # the unused slice 2 (not neighbours in use: not a jump); the ACL never used. Exam 1: no window.
    centres = np.zeros((5, 3, 2), np.float32)
    centres[:, 1, 0] = [100, 103, 0, 143, 146]
    presence = np.zeros((5, 3), np.float32)
    presence[[0, 1, 3, 4], 1] = 0.9
    presence[2, 2] = 0.6
    figures = window_figures([(centres, presence), (np.zeros((4, 3, 2)), np.full((4, 3), 0.2))])
    a, b, acl = (figures["places"][name] for name in ("meniscus A", "meniscus B", "ACL"))
    assert figures["slices"] == 9
    assert a["share"] == pytest.approx(4 / 9) and b["share"] == pytest.approx(1 / 9) and acl["share"] == 0
    assert a["jump_median_px"] == pytest.approx(3.0) and a["jump_p90_px"] == pytest.approx(3.0)
    assert acl["jump_median_px"] is None and b["jump_median_px"] is None  # one used slice: no neighbours
    assert figures["no_window"] == [1]


@pytest.mark.slow
def test_the_check_finds_the_horns_and_gives_no_window_to_a_stack_outside_the_field_of_view(tiny_phantom, tmp_path,
                                                                                              capsys):
    out = tmp_path / "check"
    result = localise.main(["--check", "--data-dir", str(tiny_phantom), "--split", "train", "--exams", "12",
                            "--planes", "sagittal", "coronal", "--out", str(out)])
    printed = capsys.readouterr().out
    truth = json.loads((tiny_phantom / "phantom-truth.json").read_text())["exams"]
    for plane in ("sagittal", "coronal"):
        cases = result[plane]["cases"]
        missed = {c for c in cases if truth[c]["bad_stacks"].get(plane) == "out of field of view"}
        assert missed, f"the tiny phantom's train split has a {plane} stack outside the field of view"
        # the stacks that miss the knee, and only those, get no window
        assert {cases[i] for i in result[plane]["figures"]["no_window"]} == missed
        assert f"exams given no window: {len(missed)} ({', '.join(sorted(missed))})" in printed
    sagittal = result["sagittal"]
    for horn in ("meniscus A", "meniscus B"):
        assert sagittal["truth"][horn]["median_px"] < 4 and sagittal["truth"][horn]["f1"] > 0.8
        assert 0.3 < sagittal["figures"]["places"][horn]["share"] < 0.7  # about half a stack shows the horns
        assert sagittal["figures"]["places"][horn]["jump_median_px"] < 8
    assert sagittal["truth"]["meniscus windows"]["on central notch slices"] < 0.2
    assert json.loads((out / "check.json").read_text())["planes"]["sagittal"]["figures"] == sagittal["figures"]
    # the montage: a 96 px tile (and 16 px of figures and gap) per slice and exam, windows in their colours
    image = Image.open(out / "sagittal.png").convert("RGB")
    slices = max(len(np.load(tiny_phantom / "train" / "sagittal" / f"{c}.npy", mmap_mode="r"))
                 for c in sagittal["cases"])
    expected = (slices * 98 + 85, 12 * 112 + 55)  # and the margins for the case labels, the title, the legend
    assert all(abs(got - want) <= 1 for got, want in zip(image.size, expected)), (image.size, expected)
    pixels = np.asarray(image).reshape(-1, 3)
    for name, colour in zip(PLACES, COLOURS):
        assert (pixels == ImageColor.getrgb(colour)).all(axis=1).sum() > 200, f"no {name} window drawn"
    assert not list(out.glob(".*.tmp"))


def test_a_broken_series_is_refused_by_file_before_anything_runs(tmp_path):
    from conftest import write_layout

    data = write_layout(tmp_path / "MRNet-v1.0", {"train": {"0000": (0, 0, 0)}, "valid": {"0001": (1, 0, 1)}})
    broken = data / "valid" / "sagittal" / "0001.npy"
    broken.write_bytes(broken.read_bytes()[:-1000])
    with pytest.raises(SystemExit, match=r"valid/sagittal/0001\.npy: .*truncated.*fix or remove"):
        localise.main(["--check", "--data-dir", str(data), "--out", str(tmp_path / "check")])
    assert not (tmp_path / "check" / "check.json").exists()
