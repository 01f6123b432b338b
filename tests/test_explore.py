"""The explorer prints statistics and writes the overview, a case PNG and a case GIF."""

import numpy as np
from PIL import Image

import explore


def test_overview_prints_statistics_and_writes_its_files(tiny_phantom, tmp_path, capsys):
    stats = explore.overview(tiny_phantom, tmp_path)
    out = capsys.readouterr().out
    assert "exams per split: train 12, valid 6" in out
    assert "label prevalence" in out and "ACL x meniscal tear" in out and "slices per plane" in out
    png = Image.open(tmp_path / "overview.png")
    assert png.size[0] > 800 and png.size[1] > 500
    assert np.asarray(png.convert("L")).std() > 10  # drawn: not one colour
    assert len(stats) == 18 * 3 and (tmp_path / "stacks.csv").is_file()


def test_a_knee_out_of_the_field_of_view_is_flagged(tiny_phantom, tmp_path, capsys):
    """Drawn on purpose: the first exam of seed 5 with a stack out of the field of view replaces one
    stack of a copy of the tiny phantom, which is flagged, and only that stack changed."""
    import shutil

    import numpy as np

    from phantom.exam import make_exam

    index = next(i for i in range(200) if "out of field of view" in make_exam(5, i, render_size=64)["bad"].values())
    exam = make_exam(5, index, render_size=64)
    plane = next(p for p, kind in exam["bad"].items() if kind == "out of field of view")
    data = tmp_path / "MRNet-v1.0"
    shutil.copytree(tiny_phantom, data)
    np.save(data / "train" / plane / "0004.npy", exam["series"][plane], allow_pickle=False)
    before = explore.overview(tiny_phantom, tmp_path / "before")
    after = explore.overview(data, tmp_path / "after")
    capsys.readouterr()

    def flag(stats):
        return stats[(stats.case == "0004") & (stats.plane == plane)].suspicious.iloc[0]

    assert flag(before) == "" and flag(after) != ""


def test_case_png_and_gif(tiny_phantom, tmp_path):
    explore.main(["--data-dir", str(tiny_phantom), "--case", "13", "--out", str(tmp_path / "case.png"),
                  "--gif", str(tmp_path / "case.gif"), "--slices", "1", "2", "3"])
    case = Image.open(tmp_path / "case.png")
    assert case.size[0] > 600 and np.asarray(case.convert("L")).std() > 10  # the slices drawn, not a blank page
    gif = Image.open(tmp_path / "case.gif")
    assert gif.n_frames > 10 and gif.size == (3 * 256 + 8, 256)
    # the first frame holds the three planes' first slices side by side, as the series are
    gif.seek(0)
    frame = np.asarray(gif.convert("L")).astype(float)
    series = np.load(tiny_phantom / "valid" / "sagittal" / "0013.npy", allow_pickle=False)
    assert np.corrcoef(frame[:, :256].ravel(), series[0].astype(float).ravel())[0, 1] > 0.9
