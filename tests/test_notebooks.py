"""The notebooks, executed headless in a real Jupyter kernel on the tiny phantom (and its bundle).

Each notebook runs unchanged (its first cell reads MRNET_DATA_DIR and MRNET_BUNDLE); to the
exploration notebook two cells are appended that drive the browser widget inside the same
kernel, as a person would with the mouse.
"""

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]

PROBE = """\
print("CONTROLS", [type(c).__name__ for c in browser.children],
      [f"{type(s).__name__}:{s.description}:{s.max}" for s in browser.children[1].children],
      browser.children[0].options[:2])
print("SHOWN", browser.shown["draws"], browser.shown["case"], browser.shown["slices"])
first_picture = browser.children[2].value"""
MOVE = """\
sagittal = browser.children[1].children[0]
before = browser.shown["draws"]
sagittal.value = 2
picture = browser.children[2].value
print("REDRAW", browser.shown["draws"] - before, browser.shown["slices"]["sagittal"], browser.shown["titles"][0])
print("PICTURE", picture[:4] == b"\\x89PNG", picture != first_picture)
import matplotlib
print("BACKEND", matplotlib.get_backend())"""
MARK = """\
for _ in range(3):
    marking.buttons["absent"].click()
print("MARKED", len(marking.marker.todo), marking.marker.current(), marking.marker.prompt())"""


def _text(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def cell(cells, code):
    """The one executed code cell whose source holds `code`: found by what it does, so a cell added
    or moved in the notebook cannot make a test read another cell's output."""
    found = [c for c in cells if code in c.source]
    assert len(found) == 1, f"{len(found)} cells run {code!r}"
    return found[0]


def execute(name, monkeypatch, extra=(), **env):
    """Run notebooks/<name> in a fresh kernel (which inherits `env`); its code cells, outputs filled."""
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"
    nb.cells += [nbformat.v4.new_code_cell(source) for source in extra]
    with monkeypatch.context() as m:
        for key, value in env.items():
            m.setenv(key, str(value))
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("explore-work")


@pytest.fixture(scope="module")
def executed(tiny_phantom, work):
    with pytest.MonkeyPatch.context() as monkeypatch:
        return execute("explore.ipynb", monkeypatch, (PROBE, MOVE, MARK), MRNET_DATA_DIR=tiny_phantom, MRNET_WORK=work)


def test_notebook_prints_the_exam_shapes_and_label_counts(executed, tiny_phantom):
    assert str(tiny_phantom) in _text(cell(executed, 'DATA_DIR = os.environ.get("MRNET_DATA_DIR")'))
    shapes = _text(cell(executed, "exam = load_exam(DATA_DIR, split, case)"))
    for plane in ("sagittal", "coronal", "axial"):
        real = np.load(tiny_phantom / "train" / plane / "0000.npy", allow_pickle=False).shape
        assert f"{plane:9s} shape {real}  dtype uint8" in shapes
    counts = _text(cell(executed, 'print("exams per split:"'))
    assert "exams per split: {'train': 12, 'valid': 6}" in counts
    assert "ACL x meniscal tear (train)" in counts
    # the histogram is a real figure, and the printed table holds the real slice counts
    histogram = cell(executed, "labels, stats = scan(DATA_DIR")
    assert any("image/png" in o.get("data", {}) for o in histogram.outputs)
    lengths = [np.load(p, mmap_mode="r", allow_pickle=False).shape[0]
               for p in sorted((tiny_phantom / "train" / "axial").glob("*.npy")) +
               sorted((tiny_phantom / "valid" / "axial").glob("*.npy"))]
    axial = next(line for line in _text(histogram).splitlines() if line.startswith("axial"))
    assert axial.split()[1:] == [str(min(lengths)), str(int(np.median(lengths))), str(max(lengths))]
    assert "suspicious stacks:" in _text(cell(executed, 'bad = stats[stats.suspicious != ""]'))


def test_notebook_shows_where_the_localiser_looks(executed, tiny_phantom, work):
    looked = cell(executed, 'looked = check(DATA_DIR, SHIPPED["localiser"]')
    assert "sagittal: 4 exams" in _text(looked) and "slices given a window: ACL" in _text(looked)
    assert any("image/png" in o.get("data", {}) for o in looked.outputs)
    checked = json.loads((work / "check" / "check.json").read_text())
    assert checked["planes"]["sagittal"]["cases"] == ["0012", "0013", "0014", "0015"]
    assert checked["data_dir"] == str(tiny_phantom)


def test_notebook_marks_slices_in_a_real_kernel(executed):
    shown = cell(executed, "marking = marking_widget(marker, MARKS)").outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in shown)
    marked = _text(cell(executed, MARK))
    # 10 of the tiny phantom's 12 training exams, 8 slices each; three clicks finish the first slice
    assert marked.startswith("MARKED 80 ('0000', 4, 'ACL')") and "(2 of 80)" in marked, marked


def test_browser_has_its_controls_and_a_slider_redraws(executed):
    shown = cell(executed, 'browser = browse(DATA_DIR, "valid")').outputs
    widget_outputs = [o for o in shown if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widget_outputs, "the browser cell shows no widget"
    probe = _text(cell(executed, PROBE))
    assert "CONTROLS ['Dropdown', 'HBox', 'Image']" in probe
    for plane in ("sagittal", "coronal", "axial"):
        assert f"IntSlider:{plane}:" in probe
    assert "('0012', '0013')" in probe  # valid cases of the tiny phantom, zero-padded
    assert "SHOWN 1 0012" in probe  # one draw for the first case, not one per slider
    moved = _text(cell(executed, MOVE)).split()
    assert moved[:5] == ["REDRAW", "1", "2", "sagittal", "slice"] and moved[5].startswith("3/")
    assert moved[6:9] == ["PICTURE", "True", "True"]  # a new PNG, drawn for the moved slider
    assert moved[9] == "BACKEND" and "inline" in moved[10]  # the browser left the notebook's plots inline


def test_submission_notebook_predicts_scores_and_explains(tiny_phantom, tiny_bundle, monkeypatch, tmp_path):
    cells = execute("submission.ipynb", monkeypatch, MRNET_DATA_DIR=tiny_phantom, MRNET_BUNDLE=tiny_bundle,
                    MRNET_WORK=tmp_path)
    assert len((tmp_path / "output.csv").read_text().splitlines()) == 6
    assert "6 exams, 18 lines" in _text(cell(cells, 'valid = read_labels(DATA_DIR).loc["valid"]'))
    predicted = _text(cell(cells, 'str(WORK / "output.csv"), "--bundle"'))
    assert "predict: ok" in predicted and "6 rows (abnormal, acl, meniscus)" in predicted
    scoring = cell(cells, '"train" / "evaluate.py"')
    assert "6 exams; 95% intervals" in _text(scoring) and "\nmean " in _text(scoring)
    explained = cell(cells, 'display(Image(filename=str(WORK / "explain"')
    for shown in (scoring, explained):  # the ROC figure and one explanation, shown as pictures
        assert any("image/png" in o.get("data", {}) for o in shown.outputs)
