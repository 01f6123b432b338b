"""A reader's marks (learning/marks.py): the file refused line by line, and a localiser fine-tuned on them."""

import json

import numpy as np
import pytest

import localise
from learning.marks import read_marks, truth_marks, write_marks
from mrnet.problems import InputError


def _lines(path, marks):
    path.write_text("".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in marks))
    return path


def test_marks_from_truth_round_trip_as_json_lines(tiny_phantom, tmp_path):
    marks = truth_marks(tiny_phantom, "train", "sagittal", ["0001", "0002"], noise_px=2.0, seed=1)
    write_marks(tmp_path / "marks.jsonl", marks)
    read = read_marks(tmp_path / "marks.jsonl", tiny_phantom)
    slices = sum(len(np.load(tiny_phantom / "train" / "sagittal" / f"{c}.npy", mmap_mode="r")) for c in ("0001", "0002"))
    assert len(read) == len(marks) == 3 * slices
    assert [m["line"] for m in read] == list(range(1, len(marks) + 1)) and {m["split"] for m in read} == {"train"}
    assert all(r[k] == v for m, r in zip(marks, read) for k, v in m.items())
    truth = np.load(tiny_phantom / "phantom-anatomy.npz")["sagittal-0001"]
    pointed = [m for m in read if m["case"] == "0001" and "row" in m]
    error = [np.hypot(m["row"] - truth[m["slice"], ("ACL", "meniscus A", "meniscus B").index(m["place"]), 1],
                      m["col"] - truth[m["slice"], ("ACL", "meniscus A", "meniscus B").index(m["place"]), 2])
             for m in pointed]
    assert 1.5 < np.median(error) < 3.5  # the ±2 px a reader's marks are given


def test_a_marks_file_is_refused_line_by_line_and_nothing_is_written(tiny_phantom, tmp_path):
    at = {"case": "0001", "plane": "sagittal", "slice": 3}
    good = {**at, "place": "ACL", "absent": True}
    path = _lines(tmp_path / "marks.jsonl", [
        good,
        {**at, "place": "meniscus A", "row": 150, "col": 100},
        {**at, "place": "meniscus B", "row": 150.5, "col": 160.0},
        {**good, "place": "meniscus C", "absent": True},             # 4: unknown place
        {**good, "case": "9999"},                                    # 5: case not in the data
        {**good, "slice": 500},                                      # 6: slice past the stack
        {**at, "place": "meniscus B", "row": 300, "col": 20},      # 7: point outside the slice
        "{not json",                                                 # 8
        {**good, "colour": "red"},                                   # 9: unknown key
        good,                                                        # 10: marked twice
        {**at, "slice": 4, "place": "meniscus A", "row": 1, "col": 2},  # 11: slice 4 lacks ACL and B
    ])
    with pytest.raises(InputError) as raised:
        read_marks(path, tiny_phantom)
    found = {p.line: p.reason for p in raised.value.problems}
    assert set(found) == {4, 5, 6, 7, 8, 9, 10, 11}
    assert "meniscus C" in found[4] and "9999" in found[5] and "500" in found[6] and "row 300" in found[7]
    assert "not JSON" in found[8] and "colour" in found[9] and "line 1" in found[10]
    assert "slice 4" in found[11] and "ACL, meniscus B" in found[11]
    with pytest.raises(SystemExit, match=r"marks\.jsonl:4: place 'meniscus C' is not one of"):
        localise.main(["--marks", str(path), "--data-dir", str(tiny_phantom), "--out", str(tmp_path / "loc")])
    assert not (tmp_path / "loc").exists()


@pytest.mark.slow
def test_a_localiser_fine_tuned_on_marks_moves_to_them_and_fit_can_use_it(tiny_phantom, tmp_path):
    """Marks 12 px below the phantom's truth, as a site whose readers mark another point of the horn:
    the shipped localiser, fine-tuned on them, is measured closer to the held-out exams' marks."""
    from learning.artefacts import SHIPPED
    from learning.localiser import load_localiser

    cases = [f"{i:04d}" for i in range(7)]
    marks = truth_marks(tiny_phantom, "train", "sagittal", cases, noise_px=2.0, seed=0)
    for mark in marks:
        if "row" in mark:
            mark["row"] = min(255.0, mark["row"] + 12)
    write_marks(tmp_path / "marks.jsonl", marks)
    out = localise.main(["--marks", str(tmp_path / "marks.jsonl"), "--data-dir", str(tiny_phantom), "--out",
                         str(tmp_path / "loc"), "--corpus-dirs", str(tiny_phantom), "--epochs", "3",
                         "--refiner-epochs", "2", "--xla", "off", "--quiet"])
    manifest = json.loads((out / "manifest.json").read_text())
    record = manifest["fine_tuned"]["planes"]["sagittal"]
    assert record["marked_exams"] == 7 and len(record["held_out_exams"]) == 2  # 0.3 of 7
    assert record["marks"] == len(marks) and set(manifest["fine_tuned"]["planes"]) == {"sagittal"}
    measured = manifest["measured"]["precision"]["sagittal"]
    for horn in ("meniscus A", "meniscus B"):
        before, after = measured["held-out marks, before"][horn], measured["held-out marks, after"][horn]
        assert after["median_px"] < 0.7 * before["median_px"], (horn, before, after)
    # every plane is there for fit.py --localiser PATH: the unmarked ones the base's own weights
    assert (out / "coronal.weights.h5").read_bytes() == (SHIPPED["localiser"] / "coronal.weights.h5").read_bytes()
    assert (out / "sagittal.weights.h5").read_bytes() != (SHIPPED["localiser"] / "sagittal.weights.h5").read_bytes()
    for plane in ("sagittal", "coronal", "axial"):
        load_localiser(out, plane)
    # what a bundle made with fit.py --localiser PATH says of it
    from learning.export import artefact_record
    said = artefact_record(out)
    assert said["fine_tuned"] == manifest["fine_tuned"] and said["measured"] == manifest["measured"]
    assert said["base"]["folder"] == SHIPPED["localiser"].name


def test_a_handful_of_marked_slices_is_enough_to_fine_tune_on(tiny_phantom, tmp_path):
    """Fewer slices than a batch (one reader's first minute): an epoch is one batch of them all."""
    marks = [m for m in truth_marks(tiny_phantom, "train", "sagittal", ["0003", "0004"], seed=0)
             if m["slice"] in (0, 6, 9)]
    write_marks(tmp_path / "marks.jsonl", marks)
    out = localise.main(["--marks", str(tmp_path / "marks.jsonl"), "--data-dir", str(tiny_phantom), "--out",
                         str(tmp_path / "loc"), "--corpus-share", "0", "--hold-out", "0", "--epochs", "1",
                         "--refiner-epochs", "1", "--xla", "off", "--quiet"])
    record = json.loads((out / "manifest.json").read_text())["fine_tuned"]["planes"]["sagittal"]
    assert record["fine_tuned_on"] == {"marked_slices": 6, "corpus_slices": 0} and record["held_out_exams"] == []
