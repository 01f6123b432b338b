"""The data layer reads the real layout and reports every problem at once, each with path and reason."""

import numpy as np
import pytest
from conftest import write_layout

from mrnet.layout import case_id, load_exam, read_labels
from mrnet.problems import InputError
from mrnet.validate import dataset_problems, validate_dataset

GOOD = {"train": {"0000": (1, 1, 0), "0001": (0, 0, 0)}, "valid": {"0002": (1, 0, 1)}}


def test_reads_real_layout_with_int_or_padded_ids(tmp_path):
    root = write_layout(tmp_path, GOOD)
    (root / "valid-acl.csv").write_text("2,0\r\n\r\n")  # unpadded id, CRLF, trailing blank line
    validate_dataset(root)
    labels = read_labels(root)
    assert list(labels.index) == [("train", "0000"), ("train", "0001"), ("valid", "0002")]
    assert labels.loc[("train", "0000")].tolist() == [1, 1, 0]
    exam = load_exam(root, "valid", 2)
    assert set(exam) == {"sagittal", "coronal", "axial"}
    assert exam["axial"].dtype == np.uint8 and exam["axial"].shape == (3, 256, 256)
    assert isinstance(exam["axial"], np.memmap)
    assert case_id(7) == case_id("0007") == "0007"


def test_every_bad_input_is_reported_with_path_and_reason(tmp_path):
    root = write_layout(tmp_path, GOOD)
    tr = root / "train"
    (tr / "sagittal" / "0000.npy").unlink()                                          # missing file
    (tr / "coronal" / "0000.npy").write_bytes(b"not numpy at all")                   # not an npy
    np.save(tr / "axial" / "0000.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)  # pickled
    np.save(tr / "sagittal" / "0001.npy", np.zeros((256, 256), np.uint8))             # wrong ndim
    np.save(tr / "coronal" / "0001.npy", np.zeros((3, 128, 256), np.uint8))           # wrong in-plane size
    np.save(tr / "axial" / "0001.npy", np.zeros((3, 256, 256), np.float32))           # not uint8
    np.save(root / "valid" / "axial" / "0002.npy", np.zeros((0, 256, 256), np.uint8))  # zero slices
    np.save(root / "valid" / "sagittal" / "0099.npy", np.zeros((3, 256, 256), np.uint8))  # series w/o labels
    (root / "valid-abnormal.csv").write_text("0002,1\n0002,1\n0005,1\n")           # duplicate + labels w/o series
    (root / "valid-acl.csv").write_text("0002,2\n")                                 # not 0/1
    with pytest.raises(InputError) as err:
        validate_dataset(root)
    text = str(err.value)
    expected = [
        ("train/sagittal/0000.npy", "has labels but no sagittal series"),
        ("train/coronal/0000.npy", "not a .npy file"),
        ("train/axial/0000.npy", "object (pickled) array"),
        ("train/sagittal/0001.npy", "expected 3 dimensions"),
        ("train/coronal/0001.npy", "in-plane size 256x256, got 128x256"),
        ("train/axial/0001.npy", "dtype float32 is not uint8"),
        ("valid/axial/0002.npy", "zero slices"),
        ("valid/sagittal/0099.npy", "has no labels"),
        ("valid-abnormal.csv:2", "case 0002 listed twice"),
        ("valid-acl.csv:1", "label '2' for case 0002 is not 0 or 1"),
        ("valid/axial/0005.npy", "case 0005 has labels but no axial series"),
        ("valid-meniscus.csv", "case 0005 has no meniscus label"),
    ]
    for path, reason in expected:
        assert any(path in line and reason in line for line in text.splitlines()), (path, reason, text)
    assert len(dataset_problems(root)) == len(err.value.problems) >= len(expected)


def test_header_line_and_missing_label_file_are_explained(tmp_path):
    root = write_layout(tmp_path, GOOD)
    (root / "train-meniscus.csv").write_text("case,label\n0000,0\n0001,0\n")
    (root / "valid-meniscus.csv").unlink()
    problems = [str(p) for p in dataset_problems(root)]
    assert any("train-meniscus.csv:1" in p and "no header" in p for p in problems)
    assert any("valid-meniscus.csv" in p and "label file missing" in p for p in problems)


def test_missing_data_dir_says_what_to_do(tmp_path):
    problems = dataset_problems(tmp_path / "nowhere")
    assert len(problems) == 1 and "--data-dir" in str(problems[0])
