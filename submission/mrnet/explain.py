"""Per-exam explanation figures: where in the exam each prediction comes from.

For each plane: every slice's own score for the chosen task (the strip under the image: which
slices the pooling over slices picked up), and the class activation map of the most decisive
slice, overlaid on it. With a crop model, the windows the localiser placed on that slice are drawn
too, and the decisive window (the one whose share of the task's logit is largest, over the exam's
slices and the task's places) is shown in bold on its own slice. The frozen bundle's `explain`
endpoint supplies all of it; no model code here. matplotlib is imported only when asked for.
"""

import os
from pathlib import Path

import numpy as np

from mrnet.contract import PLACES, PLANES, TASK_PLACES, TASKS
from mrnet.infer import read_series


def plane_explanation(model, slices):
    """The explain endpoint's outputs for one plane's uint8 stack, as one exam, as numpy: slice_logits
    (n, 3), cam (n, h, w, 3) and, for a crop model, window_logits (n, K, 3), gates (n, K), presence
    (n, K) and boxes (n, K, 4: top, left, bottom, right)."""
    import tensorflow as tf

    result = model.explain(slices=tf.constant(slices), counts=tf.constant([len(slices)], tf.int32))
    return {name: value.numpy() for name, value in result.items()}


def explain_exam(models, exam):
    """{plane: (uint8 slices, plane_explanation's dict)}."""
    out = {}
    for plane in PLANES:
        slices = read_series(*exam.series[plane])
        out[plane] = (slices, plane_explanation(models[plane], slices))
    return out


def decisive_window(explained, task):
    """(slice, place) of the window with the largest share of the task's logit among the windows used
    (gates) at the task's places, or None (a whole-slice model, a task no window serves, or an exam
    where the localiser was confident of none: it fell back to the whole slice)."""
    if "window_logits" not in explained or task not in TASK_PLACES:
        return None
    places = list(TASK_PLACES[task])
    shares = explained["window_logits"][:, places, TASKS.index(task)]
    used = explained["gates"][:, places] > 0
    if not used.any():
        return None
    best = np.argmax(np.where(used, shares, -np.inf))
    row, col = np.unravel_index(best, shares.shape)
    return int(row), places[int(col)]


def decisive_slices(slice_logits, task, k=1):
    """Indices of the k slices with the highest score for the task, best first."""
    t = TASKS.index(task)
    return list(np.argsort(-slice_logits[:, t], kind="stable")[:k])


def upsample(cam, size=256):
    """Bilinear resize of a small (h, w) map to size x size, pixel centres aligned."""
    h, w = cam.shape
    ys = np.clip((np.arange(size) + 0.5) * h / size - 0.5, 0, h - 1)
    xs = np.clip((np.arange(size) + 0.5) * w / size - 0.5, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = cam[y0][:, x0] * (1 - fx) + cam[y0][:, x1] * fx
    bottom = cam[y1][:, x0] * (1 - fx) + cam[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def figure(exam_key, parts, probabilities, task, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = TASKS.index(task)
    fig, axes = plt.subplots(2, 3, figsize=(12, 5.6), gridspec_kw={"height_ratios": [4, 1]})
    for col, plane in enumerate(PLANES):
        slices, explained = parts[plane]
        logits, cams = explained["slice_logits"], explained["cam"]
        window = decisive_window(explained, task)
        best = window[0] if window else decisive_slices(logits, task)[0]
        cam = upsample(cams[best, :, :, t])
        ax = axes[0, col]
        ax.imshow(slices[best], cmap="gray", vmin=0, vmax=255)
        top = max(float(cam.max()), 1e-6)
        ax.imshow(np.ma.masked_less(cam, 0.3 * top), cmap="jet", alpha=0.4, vmin=0, vmax=top)  # strongest 70 %
        if "boxes" in explained:  # the windows used on this slice; the decisive one in bold
            for k, name in enumerate(PLACES):
                if explained["gates"][best, k] > 0:
                    y0, x0, y1, x1 = explained["boxes"][best, k]
                    bold = window == (best, k)
                    ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=2.5 if bold else 0.8,
                                               color="yellow" if bold else "cyan"))
                    ax.text(x0, y0 - 2, name + (" (decisive)" if bold else ""), color="yellow" if bold else "cyan",
                            fontsize=6)
        ax.set_title(f"{plane}: slice {best + 1}/{len(slices)}", fontsize=9)
        ax.axis("off")
        strip = axes[1, col]
        for j, name in enumerate(TASKS):
            strip.plot(np.arange(1, len(slices) + 1), 1 / (1 + np.exp(-logits[:, j])), lw=2 if j == t else 0.8,
                       alpha=1 if j == t else 0.5, label=name)
        strip.axvline(best + 1, color="k", ls=":", lw=0.8)
        strip.set(xlim=(1, len(slices)), ylim=(0, 1), xlabel="slice")
        strip.tick_params(labelsize=7)
        if col == 0:
            strip.set_ylabel("slice score", fontsize=8)
            strip.legend(fontsize=6, loc="upper left", ncol=3)
    title = "  ".join(f"{name} {p:.2f}" for name, p in zip(TASKS, probabilities))
    fig.suptitle(f"exam {exam_key}: {title}   (map: {task})", fontsize=11)
    fig.tight_layout()
    tmp = Path(path).with_name(f".{Path(path).name}.tmp.png")
    fig.savefig(tmp, dpi=80)
    os.replace(tmp, path)
    plt.close(fig)
