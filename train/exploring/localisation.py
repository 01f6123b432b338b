"""Where the localiser looks on a folder of series, before a long fit trusts it: every slice of a few
exams per plane with its windows drawn, and the figures that tell a lost localiser from a working one.

A fit's fallback count cannot tell windows on a meniscus from windows on the patella: on 32 real
MRNet exams it read "0 of N fell back" while the windows sat on a horn a third of the time. So the
check draws every slice (a person sees at a glance whether the windows sit on the horns) and counts:

- the share of slices given each window: a real sagittal stack shows the horns on about half its
  slices (../shared/REAL_KNEE.md) and the ACL on one or two;
- how far a window's centre jumps between neighbouring slices where both are used: a horn moves a
  few pixels from one slice to the next, a localiser lost on unfamiliar data jumps about;
- the exams given no window at all: a stack that misses the knee should be one of them, and a
  normal stack should not.

On a phantom (anatomy truth beside the series) it also measures the windows against the truth,
with the localiser's own precision figures (learning/localiser.precision).
"""

import json
import os
from pathlib import Path

import numpy as np

from learning.crops import CONFIDENT, WINDOW
from mrnet.contract import PLACES

# a colour per place (ACL, meniscus A, meniscus B), readable on grey and to most colour-blind readers
COLOURS = ("#ffb000", "#00c0ff", "#ff3db0")


def read_exams(data_dir, split, plane, exams):
    """The first `exams` cases of a split's plane (sorted by case id, as the folder lists them):
    [(case, uint8 (s, 256, 256))], read with the checks predict.py applies."""
    from mrnet.layout import series_cases, series_path
    from mrnet.series import check_series, read_data

    out = []
    for case in series_cases(data_dir, split, plane)[:exams]:
        path = series_path(data_dir, split, plane, case)
        info, reason = check_series(path)
        try:
            if reason:
                raise ValueError(f"{path}: {reason}")
            out.append((case, np.asarray(read_data(path, info))))
        except ValueError as e:
            raise SystemExit(f"localise --check: {e}; fix or remove the file") from None
    return out


def locate_exams(model, series):
    """[(centres (s, K, 2) at 256 px, presence (s, K))] for each exam's slices, in one pass."""
    from learning.localiser import locate

    centres, presence = locate(model, np.concatenate([s for _, s in series]))
    bounds = np.cumsum([0] + [len(s) for _, s in series])
    return [(centres[a:b], presence[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def window_figures(found):
    """The check's figures of one plane's exams (`found`: locate_exams' list): per place the share
    of slices given its window and the centre's jump between neighbouring slices that both use it
    (median, 90th percentile, px at 256), and the cases given no window on any slice."""
    used = [p > CONFIDENT for _, p in found]
    every = np.concatenate(used)
    out = {"slices": int(len(every)), "places": {}}
    for k, name in enumerate(PLACES):
        jumps = np.concatenate([np.linalg.norm(np.diff(c[:, k], axis=0), axis=-1)[u[1:, k] & u[:-1, k]]
                                for (c, _), u in zip(found, used)])
        out["places"][name] = {"share": float(every[:, k].mean()),
                               "jump_median_px": float(np.median(jumps)) if len(jumps) else None,
                               "jump_p90_px": float(np.percentile(jumps, 90)) if len(jumps) else None}
    out["no_window"] = [i for i, u in enumerate(used) if not u.any()]
    return out


def figures_text(plane, figures, cases):
    """The check's printed lines for one plane."""
    places = figures["places"]
    shares = ", ".join(f"{name} {v['share']:.0%}" for name, v in places.items())
    jumps = ", ".join(f"{name} {v['jump_median_px']:.1f}/{v['jump_p90_px']:.1f} px" for name, v in places.items()
                      if v["jump_median_px"] is not None)
    empty = [cases[i] for i in figures["no_window"]]
    return (f"{plane}: {len(cases)} exams, {figures['slices']} slices\n"
            f"  slices given a window: {shares}\n"
            f"  centre jump between neighbouring slices, median/p90: {jumps or 'no two neighbours share a window'}\n"
            f"  exams given no window: {len(empty)}" + (f" ({', '.join(empty)})" if empty else ""))


def montage(plane, series, found, title="", tile=96, columns=None):
    """A matplotlib figure: an exam per row, its slices left to right, each place's window drawn in
    its colour (solid where used, dotted where not) with its presence probability in per cent
    above the slice. `columns` caps the slices shown per row (evenly spread) for a smaller picture.

    The figure is pixel for pixel the mosaic (no resampling), and the windows are two collections,
    not a patch each: 20 exams took 10 s to draw a plane with one artist per window, 4 s so."""
    import matplotlib.pyplot as plt
    from matplotlib.collections import PatchCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle
    from PIL import Image

    width = max(len(s) for _, s in series)
    width = width if columns is None else min(columns, width)
    gap, label = 2, 14  # pixels between tiles, and above each for the presence figures
    scale, side = tile / 256, WINDOW * tile / 256
    cell_h, cell_w = tile + label + gap, tile + gap
    mosaic = np.full((len(series) * cell_h, width * cell_w), 255, np.uint8)
    shown = []
    for row, (_, stack) in enumerate(series):
        picks = np.arange(len(stack)) if len(stack) <= width else np.linspace(0, len(stack) - 1, width).round().astype(int)
        shown.append(picks)
        top = row * cell_h + label
        for col, k in enumerate(picks):
            small = Image.fromarray(np.asarray(stack[k])).resize((tile, tile), Image.BOX)
            mosaic[top:top + tile, col * cell_w:col * cell_w + tile] = np.asarray(small)
    dpi, left_in, top_in = 100, 0.8, 0.5  # room for the case labels, and for the title and legend
    w_in, h_in = mosaic.shape[1] / dpi, mosaic.shape[0] / dpi
    fig = plt.figure(figsize=(w_in + left_in + 0.05, h_in + top_in + 0.05), dpi=dpi)
    fig_w, fig_h = fig.get_size_inches()
    ax = fig.add_axes([left_in / fig_w, 0.05 / fig_h, w_in / fig_w, h_in / fig_h])
    ax.imshow(np.repeat(mosaic[..., None], 3, axis=-1), interpolation="nearest")
    ax.set_axis_off()
    boxes = {True: ([], []), False: ([], [])}  # used / unused: rectangles and their colours
    for row, ((case, stack), (centres, presence), picks) in enumerate(zip(series, found, shown)):
        top = row * cell_h + label
        ax.text(-6, top + tile / 2, f"{case}\n{len(stack)} sl.", ha="right", va="center", fontsize=7)
        for col, k in enumerate(picks):
            left = col * cell_w
            ax.text(left, top - label + 1, f"{k + 1}", fontsize=5, va="top", color="0.35")
            for p in range(len(PLACES)):
                r, c = centres[k, p] * scale
                used = bool(presence[k, p] > CONFIDENT)
                boxes[used][0].append(Rectangle((left + c - side / 2, top + r - side / 2), side, side))
                boxes[used][1].append(COLOURS[p])
                ax.text(left + 12 + p * (tile - 12) / 3, top - label + 1, f"{presence[k, p] * 100:.0f}", fontsize=5,
                        va="top", color=COLOURS[p], fontweight="bold" if used else "normal")
    for used, (rectangles, colours) in boxes.items():
        if rectangles:
            ax.add_collection(PatchCollection(rectangles, facecolor="none", edgecolor=colours,
                                              linewidth=1.0 if used else 0.6, linestyle="-" if used else ":"))
    legend = [Line2D([], [], color=c, lw=1.5, label=n) for c, n in zip(COLOURS, PLACES)]
    legend += [Line2D([], [], color="0.3", lw=1, label="used window"),
               Line2D([], [], color="0.3", lw=1, ls=":", label="unused (presence < 50 %)")]
    fig.legend(handles=legend, loc="upper left", ncol=len(legend), fontsize=7, frameon=False,
               bbox_to_anchor=(left_in / fig_w, 1 - 0.2 / fig_h))
    which = "every slice" if all(len(p) == len(s) for p, (_, s) in zip(shown, series)) else \
        f"{width} slices of each exam, evenly spread"
    fig.text(left_in / fig_w, 1 - 0.04 / fig_h, title or f"{plane}: the localiser's windows on {which}; above each "
             "slice its number and each place's presence (%) in the place's colour", fontsize=9, va="top")
    return fig


def palette():
    """A PIL palette image: grey levels and each place's colour with its blends towards white and
    black (the anti-aliased edges of its lines and figures). An adaptive palette gave the greys every
    entry and turned the place colours brown."""
    from PIL import Image, ImageColor

    colours = [np.array(ImageColor.getrgb(c), float) for c in COLOURS]
    entries = [np.full(3, g) for g in np.linspace(0, 255, 232)]
    for c in colours:
        entries += [c * (1 - t) + 255 * t for t in (0, 0.35, 0.7)] + [c * (1 - t) for t in (0.3, 0.6)]
    image = Image.new("P", (1, 1))
    image.putpalette(np.clip(np.round(entries), 0, 255).astype(np.uint8).ravel().tolist())
    return image


def write_png(fig, path):
    """The figure to `path` as a palette PNG, whole or not at all (a temporary name, then a rename).
    A montage of noisy slices barely compresses: as RGBA it took 12 MB and 7 s a plane (20 exams),
    in palette() 4 MB and 1 s, and reads the same."""
    import matplotlib.pyplot as plt
    from PIL import Image

    fig.canvas.draw()
    image = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3])
    plt.close(fig)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    image.quantize(palette=palette(), dither=Image.Dither.NONE).save(tmp, format="png")
    os.replace(tmp, path)


def check(data_dir, localiser_dir, planes, split="valid", exams=20, out=None, tile=96, columns=None, report=print):
    """The check over a folder: per plane the figures (window_figures, and against the truth where the
    folder has anatomy truth), and with `out` a montage <out>/<plane>.png and <out>/check.json.
    Returns {plane: {"cases", "figures", "truth"}}."""
    from learning.localiser import load_localiser, precision, precision_text
    from phantom.landmarks import read_anatomy

    anatomy = read_anatomy(data_dir)
    result = {}
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
    for plane in planes:
        series = read_exams(data_dir, split, plane, exams)
        if not series:
            raise SystemExit(f"localise --check: {data_dir}/{split}/{plane} holds no series")
        found = locate_exams(load_localiser(localiser_dir, plane), series)
        cases = [case for case, _ in series]
        figures = window_figures(found)
        report(figures_text(plane, figures, cases))
        truth = None
        if anatomy is not None:
            targets = np.concatenate([anatomy[(plane, case)][..., :3] for case in cases])
            exam_of = np.concatenate([np.full(len(s), i) for i, (_, s) in enumerate(series)])
            centres, presence = (np.concatenate(a) for a in zip(*found))
            truth = precision(centres, presence, targets, exam_of if plane == "sagittal" else None)
            report(f"  against the phantom's anatomy truth: {precision_text(truth)}")
        result[plane] = {"cases": cases, "figures": figures, "truth": truth}
        if out is not None:
            write_png(montage(plane, series, found, tile=tile, columns=columns), Path(out) / f"{plane}.png")
    if out is not None:
        text = json.dumps({"data_dir": str(data_dir), "split": split, "localiser": str(localiser_dir),
                           "planes": result}, indent=1)
        tmp = Path(out) / ".check.json.tmp"
        tmp.write_text(text)
        os.replace(tmp, Path(out) / "check.json")
    return result
