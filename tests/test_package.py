"""train/package.py: the archive it builds predicts from an empty folder; without a bundle it refuses."""

import shutil
import zipfile
from pathlib import Path

import pytest

import package
from upload.archive import check_output

ROOT = Path(__file__).resolve().parents[1]


def _submission(tmp_path, bundle=None):
    sub = tmp_path / "submission"
    shutil.copytree(ROOT / "submission", sub, ignore=shutil.ignore_patterns("bundle", "bundle.tmp*"))
    (sub / "mrnet" / "__pycache__").mkdir(exist_ok=True)
    (sub / "mrnet" / "__pycache__" / "stale.pyc").write_bytes(b"\0")
    if bundle:
        shutil.copytree(bundle, sub / "bundle")
    return sub


def test_archive_holds_submission_and_passes_the_organisers_command(tiny_phantom, tiny_bundle, tmp_path, capsys):
    out = tmp_path / "dist" / "upload.zip"
    package.main(["--submission", str(_submission(tmp_path, tiny_bundle)), "--out", str(out),
                  "--data-dir", str(tiny_phantom), "--exams", "3"])
    names = zipfile.ZipFile(out).namelist()
    assert "submission/predict.py" in names and "submission/bundle/manifest.json" in names
    assert "submission/bundle/combiner.json" in names
    assert not any("__pycache__" in n for n in names)
    assert not list(out.parent.glob(".*.tmp"))
    report = capsys.readouterr().out
    assert "on 3 exams" in report and "MiB" in report


def test_no_bundle_no_archive(tiny_phantom, tmp_path):
    out = tmp_path / "upload.zip"
    with pytest.raises(SystemExit, match="fit.py"):
        package.main(["--submission", str(_submission(tmp_path)), "--out", str(out), "--data-dir", str(tiny_phantom)])
    assert not out.exists()


def test_check_output_rejects_wrong_rows(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("0.1,0.2,0.3\n")
    check_output(path, 1)
    with pytest.raises(SystemExit, match="2 exams"):
        check_output(path, 2)
    path.write_text("0.1,1.2,0.3\n")
    with pytest.raises(SystemExit, match=r"out.csv:1"):
        check_output(path, 1)
