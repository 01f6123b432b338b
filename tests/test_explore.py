"""The explorer prints statistics and writes the overview, a case PNG and a case GIF."""

from PIL import Image

import explore
from phantom.writer import read_truth


def test_overview_prints_statistics_and_flags_bad_stacks(tiny_phantom, tmp_path, capsys):
    stats = explore.overview(tiny_phantom, tmp_path)
    out = capsys.readouterr().out
    assert "exams per split: train 12, valid 6" in out
    assert "label prevalence" in out and "ACL x meniscal tear" in out and "slices per plane" in out
    png = Image.open(tmp_path / "overview.png")
    assert png.size[0] > 800 and png.size[1] > 500
    assert len(stats) == 18 * 3 and (tmp_path / "stacks.csv").is_file()
    truth = read_truth(tiny_phantom)["exams"]
    for case, t in truth.items():
        for plane, kind in t["bad_stacks"].items():
            if kind == "out of field of view":
                row = stats[(stats.case == case) & (stats.plane == plane)]
                assert row.suspicious.iloc[0] != "", (case, plane)


def test_case_png_and_gif(tiny_phantom, tmp_path):
    explore.main(["--data-dir", str(tiny_phantom), "--case", "13", "--out", str(tmp_path / "case.png"),
                  "--gif", str(tmp_path / "case.gif"), "--slices", "1", "2", "3"])
    assert Image.open(tmp_path / "case.png").size[0] > 600
    gif = Image.open(tmp_path / "case.gif")
    assert gif.n_frames > 10 and gif.size == (3 * 256 + 8, 256)
