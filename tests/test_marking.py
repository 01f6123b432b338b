"""Marking by hand (exploring/marking.py): the reader's pass, and the widget driven as with a mouse."""

import numpy as np

from exploring.marking import Marker, marking_widget, spread_slices
from learning.marks import read_marks
from mrnet.contract import PLACES
from phantom.landmarks import read_anatomy


def test_slices_are_spread_over_the_whole_stack():
    assert spread_slices(30, 8) == [0, 4, 8, 12, 17, 21, 25, 29]
    assert spread_slices(3, 8) == [0, 1, 2]


def test_a_reader_marking_the_truth_writes_marks_localise_reads_back(tiny_phantom, tmp_path):
    marker = Marker(tiny_phantom, "sagittal", exams=2, per_exam=5, reader="test")
    anatomy = read_anatomy(tiny_phantom)
    assert len(marker.todo) == 10 and marker.current() == (marker.todo[0][0], 0, "ACL")
    marker.point(300, 10)  # beside the slice: nothing marked
    assert marker.current()[2] == "ACL"
    while (now := marker.current()) is not None:
        case, k, place = now
        truth = anatomy[("sagittal", case)][k, PLACES.index(place)]
        marker.point(truth[1], truth[2]) if truth[0] else marker.absent()
        if len(marker.history) == 4:  # a slip, undone
            marker.back()
            assert marker.current() == now
            marker.point(truth[1], truth[2]) if truth[0] else marker.absent()
    assert marker.prompt().startswith("all 10 slices marked")
    assert marker.save(tmp_path / "marks.jsonl") == 3 * 10
    read = read_marks(tmp_path / "marks.jsonl", tiny_phantom)
    points = [m for m in read if "row" in m]
    assert points and all(m["reader"] == "test" and m["split"] == "train" for m in read)
    for m in points:
        truth = anatomy[("sagittal", m["case"])][m["slice"], PLACES.index(m["place"])]
        assert truth[0] and abs(m["row"] - truth[1]) <= 0.05 and abs(m["col"] - truth[2]) <= 0.05
    absent = {(m["case"], m["slice"], m["place"]) for m in read if m.get("absent")}
    assert all(not anatomy[("sagittal", c)][k, PLACES.index(p), 0] for c, k, p in absent)


def test_the_widget_marks_where_the_reader_clicks(tiny_phantom, tmp_path):
    from matplotlib.backend_bases import MouseEvent

    box = marking_widget(Marker(tiny_phantom, "sagittal", exams=1, per_exam=2), tmp_path / "marks.jsonl",
                         show=False)
    marker, canvas = box.marker, box.canvas
    assert "click the ACL" in box.children[0].value and "slice 1 of" in box.children[0].value
    ax = canvas.figure.axes[0]
    canvas.draw()

    def click(row, col):
        x, y = ax.transData.transform((col, row))
        canvas.callbacks.process("button_press_event", MouseEvent("button_press_event", canvas, x, y, button=1))

    click(120, 140)
    click(150, 90)
    assert marker.marks[(marker.todo[0])] == {"ACL": (120.0, 140.0), "meniscus A": (150.0, 90.0)}
    assert "posterior horn" in box.children[0].value
    assert len(ax.lines) == 2  # the two marks drawn on the slice
    box.buttons["absent"].click()
    box.buttons["back"].click()
    box.buttons["absent"].click()
    for _ in PLACES:  # the second slice: nothing on it
        box.buttons["absent"].click()
    box.buttons["save"].click()
    assert box.status.value.startswith("saved 6 marks")
    assert np.isclose([m.get("row", -1) for m in read_marks(tmp_path / "marks.jsonl", tiny_phantom)][:2],
                      [120.0, 150.0]).all()
