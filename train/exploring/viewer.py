"""Look at one exam: the three planes side by side, as a PNG, an animated GIF or Jupyter sliders."""

from pathlib import Path

import numpy as np

from mrnet.contract import PLANES
from mrnet.layout import load_exam


def case_figure(exam, slices=None, title=""):
    """Matplotlib figure of the three planes at the given slice indices (default: middle slices)."""
    import matplotlib.pyplot as plt

    slices = slices or {p: exam[p].shape[0] // 2 for p in PLANES}
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    for ax, plane in zip(axes, PLANES):
        k = int(np.clip(slices[plane], 0, exam[plane].shape[0] - 1))
        ax.imshow(exam[plane][k], cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{plane}  slice {k + 1}/{exam[plane].shape[0]}")
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def case_png(exam, out, slices=None, title=""):
    import matplotlib
    matplotlib.use("Agg")  # the command-line path: no display

    Path(out).write_bytes(figure_png(case_figure(exam, slices, title)))


def case_gif(exam, out, frames=None, ms_per_frame=120):
    """Scroll all three planes together, each through its own slice count, side by side."""
    from PIL import Image

    frames = frames or max(a.shape[0] for a in exam.values())
    images = []
    for t in range(frames):
        row = [np.asarray(exam[p][min(int(t * exam[p].shape[0] / frames), exam[p].shape[0] - 1)]) for p in PLANES]
        gap = np.zeros((256, 4), np.uint8)
        images.append(Image.fromarray(np.concatenate([row[0], gap, row[1], gap, row[2]], axis=1)))
    images[0].save(out, save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)


def figure_png(fig, dpi=80):
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def browse(data_dir, split="valid", show=True):
    """Interactive viewer for Jupyter: a case selector and one slice slider per plane.

    Returns the widget (a VBox: case selector, the three sliders, the picture). The picture is an
    Image widget holding a PNG rendered here: no output capture, so it behaves the same in
    JupyterLab, in VS Code and in a headless kernel. Its `shown` dict holds what the picture shows
    now - case, slice per plane, panel titles, redraw count - so a notebook, or a test driving
    one, can see the effect of moving a control.
    """
    import ipywidgets as w
    from IPython.display import display

    from mrnet.layout import series_cases

    cases = series_cases(data_dir, split, "sagittal")
    case = w.Dropdown(options=cases, description="case")
    sliders = {p: w.IntSlider(0, 0, 1, description=p, continuous_update=False) for p in PLANES}
    picture = w.Image(format="png")
    box = w.VBox([case, w.HBox(list(sliders.values())), picture])
    box.shown = {"draws": 0}
    state = {"exam": None, "loading": False}

    def redraw(*_):
        if state["loading"]:
            return  # a new case sets three sliders at once: draw once, after the last
        chosen = {p: sliders[p].value for p in PLANES}
        # drawn with the notebook's own backend and closed at once, so it is never also shown inline
        fig = case_figure(state["exam"], chosen, f"{split} case {case.value}")
        titles = [ax.get_title() for ax in fig.axes]
        picture.value = figure_png(fig)
        box.shown.update(case=case.value, slices=chosen, titles=titles, draws=box.shown["draws"] + 1)

    def new_case(*_):
        state["exam"] = load_exam(data_dir, split, case.value)
        state["loading"] = True
        for p in PLANES:
            sliders[p].max = state["exam"][p].shape[0] - 1
            sliders[p].value = state["exam"][p].shape[0] // 2
        state["loading"] = False
        redraw()

    case.observe(new_case, "value")
    for s in sliders.values():
        s.observe(redraw, "value")
    new_case()
    if show:
        display(box)
    return box
