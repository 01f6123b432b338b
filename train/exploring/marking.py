"""Marking the localiser's places by hand in Jupyter: a reader clicks each place on a few slices of a
few exams, or says it is absent, and the marks go to a JSON lines file (learning/marks.py's format)
that `localise.py --marks` fine-tunes a localiser on.

    from exploring.marking import Marker, marking_widget
    marker = Marker(data_dir, plane="sagittal", exams=10, per_exam=8)
    marking_widget(marker, "marks.jsonl")     # click, click, click, ... then Save

The slices are spread over each whole stack, not only its middle: a "no horn here" on a notch slice
or outside the joint teaches the localiser as much as a point does (a phantom-taught localiser was
measured putting windows there on real knees). 10 exams of 8 slices are 240 clicks, a few minutes.
"""

from pathlib import Path

import numpy as np

from exploring.localisation import COLOURS
from mrnet.contract import PLACES, SPLITS

# what to click, per plane and place, in the anatomy truth's conventions (phantom/landmarks.py)
PROMPTS = {"sagittal": {"ACL": "the ACL", "meniscus A": "the anterior horn (meniscus A, image left)",
                        "meniscus B": "the posterior horn (meniscus B, image right)"}}
OTHER_PLANES = {"ACL": "the ACL", "meniscus A": "the meniscus on the image's left (meniscus A)",
                "meniscus B": "the meniscus on the image's right (meniscus B)"}


def spread_slices(count, per_exam):
    """`per_exam` slice indices spread evenly over a stack of `count`, its first and last included
    (the slices outside the joint are where a lost localiser still fires)."""
    return sorted({int(round(k)) for k in np.linspace(0, count - 1, min(per_exam, count))})


class Marker:
    """One reader's pass over some slices. State is real here: where the reader is, and what they
    have marked (undo walks it back), kept apart from any display so a test or another tool can drive
    it as the widget does."""

    def __init__(self, data_dir, plane="sagittal", cases=None, exams=10, per_exam=8, split="train", reader=""):
        from mrnet.layout import series_cases, series_path
        from mrnet.series import open_series

        if split not in SPLITS:
            raise ValueError(f"split {split!r} is not one of {', '.join(SPLITS)}")
        self.data_dir, self.plane, self.split, self.reader = Path(data_dir), plane, split, reader
        cases = list(cases) if cases else series_cases(self.data_dir, split, plane)[:exams]
        self.series = {case: open_series(series_path(self.data_dir, split, plane, case)) for case in cases}
        self.todo = [(case, k) for case, s in self.series.items() for k in spread_slices(len(s), per_exam)]
        self.marks = {}  # (case, slice) -> {place: (row, col) or None for absent}
        self.history = []  # (case, slice, place) in the order marked, for back()

    def current(self):
        """(case, slice, place) to mark next, or None once every slice is marked."""
        for case, k in self.todo:
            done = self.marks.get((case, k), {})
            for place in PLACES:
                if place not in done:
                    return case, k, place
        return None

    def prompt(self):
        """The line the widget shows: where the reader is and what to click."""
        now = self.current()
        if now is None:
            return f"all {len(self.todo)} slices marked: save"
        case, k, place = now
        what = PROMPTS.get(self.plane, OTHER_PLANES)[place]
        done = sum(len(v) == len(PLACES) for v in self.marks.values())
        return (f"{self.plane} case {case}, slice {k + 1} of {len(self.series[case])} "
                f"({done + 1} of {len(self.todo)}): click {what}, or press absent")

    def image(self):
        """The uint8 (256, 256) slice being marked (the last one once all are done)."""
        case, k = (self.current() or (*self.todo[-1], None))[:2]
        return np.asarray(self.series[case][k])

    def _set(self, value):
        now = self.current()
        if now is None:
            return
        case, k, place = now
        self.marks.setdefault((case, k), {})[place] = value
        self.history.append(now)

    def point(self, row, col):
        """The current place is at (row, col), pixels of the 256 x 256 slice."""
        if not (0 <= row < 256 and 0 <= col < 256):
            return  # a click beside the slice marks nothing
        self._set((round(float(row), 1), round(float(col), 1)))

    def absent(self):
        """The current slice does not show the current place."""
        self._set(None)

    def back(self):
        """Undo the last mark."""
        if self.history:
            case, k, place = self.history.pop()
            del self.marks[(case, k)][place]

    def records(self):
        """The marks of every fully marked slice, as learning/marks.py reads them (a half-marked slice
        is left out: an unmarked place would be read as a wrong "absent")."""
        out = []
        for (case, k), done in sorted(self.marks.items()):
            if len(done) < len(PLACES):
                continue
            for place in PLACES:
                mark = {"case": case, "plane": self.plane, "slice": k, "place": place}
                if done[place] is None:
                    mark["absent"] = True
                else:
                    mark["row"], mark["col"] = done[place]
                if self.reader:
                    mark["reader"] = self.reader
                out.append(mark)
        return out

    def save(self, path):
        """Write the marks (whole or not at all), read them back as localise.py --marks will, and
        return how many were written."""
        from learning.marks import read_marks, write_marks

        write_marks(path, self.records())
        return len(read_marks(path, self.data_dir))


def draw(ax, marker):
    """The slice being marked, with this slice's marks so far in each place's colour."""
    ax.clear()
    ax.imshow(marker.image(), cmap="gray", vmin=0, vmax=255)
    now = marker.current()
    if now is not None:
        for place, value in marker.marks.get(now[:2], {}).items():
            if value is not None:
                colour = COLOURS[PLACES.index(place)]
                ax.plot(value[1], value[0], "+", color=colour, ms=14, mew=2)
                ax.annotate(place, (value[1], value[0]), (6, 6), textcoords="offset points", color=colour)
    ax.set_xlim(-0.5, 255.5)
    ax.set_ylim(255.5, -0.5)
    ax.axis("off")


def marking_widget(marker, out, show=True):
    """The widget: the prompt, the slice (an ipympl canvas: a click marks the place), and buttons
    absent, back and save. Returns the VBox; its `canvas` and `marker` are there for a notebook (or
    a test) to drive."""
    import ipywidgets as w
    import matplotlib
    from IPython.display import display
    from matplotlib.figure import Figure

    backend = matplotlib.get_backend()
    from ipympl.backend_nbagg import Canvas, FigureManager
    matplotlib.use(backend)  # importing ipympl makes it the notebook's backend: keep the reader's plots as they were

    figure = Figure(figsize=(5, 5))
    canvas = Canvas(figure)
    FigureManager(canvas, 0)
    canvas.header_visible = canvas.footer_visible = canvas.toolbar_visible = False
    ax = figure.add_axes((0, 0, 1, 1))
    prompt, status = w.HTML(), w.HTML()
    buttons = {name: w.Button(description=name) for name in ("absent", "back", "save")}

    def refresh():
        prompt.value = f"<b>{marker.prompt()}</b>"
        draw(ax, marker)
        canvas.draw_idle()

    def click(event):
        if event.inaxes is ax and event.button == 1 and event.xdata is not None:
            marker.point(event.ydata, event.xdata)
            refresh()

    def save(_):
        try:
            status.value = f"saved {marker.save(out)} marks to {out}"
        except Exception as e:  # a problem the reader must see in the widget, not in a log
            status.value = f"<span style='color:#c00'>not saved: {e}</span>"

    canvas.mpl_connect("button_press_event", click)
    buttons["absent"].on_click(lambda _: (marker.absent(), refresh()))
    buttons["back"].on_click(lambda _: (marker.back(), refresh()))
    buttons["save"].on_click(save)
    box = w.VBox([prompt, canvas, w.HBox(list(buttons.values())), status])
    box.canvas, box.marker, box.buttons, box.status = canvas, marker, buttons, status
    refresh()
    if show:
        display(box)
    return box
