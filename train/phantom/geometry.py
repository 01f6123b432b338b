"""The phantom's sagittal geometry measured the way ../shared/REAL_KNEE.md measures real MRNet series,
beside the real figures, so a phantom whose knee is another size or in another place is caught.

A localiser learns where menisci are from the phantom alone; a phantom whose joint line sits at row
128 with a notch of one slice taught one that fired on the real notch and missed the real horns.
Every figure here is computed from the anatomy truth (phantom/landmarks.py: per slice, whether each
place is there, its centroid and box) with the counting rules REAL_KNEE.md states, so the two
columns compare like with like.
"""

import numpy as np

# ../shared/REAL_KNEE.md, real MRNet sagittal series: median and 10-90 % range (figures, not data).
REAL = {
    "slices": (29, 23, 36),
    "horn share": (0.50, 0.38, 0.60),
    "ACL slices": (1, 0, 2),
    "outside at start": (0.15, 0.09, 0.25),
    "outside at end": (0.16, 0.10, 0.19),
    "notch slices": (5, 4, 7),
    "notch centre": (0.50, 0.45, 0.55),
    "anterior horn row": (153, 138, 176),
    "anterior horn col": (106, 90, 124),
    "posterior horn row": (150, 132, 173),
    "posterior horn col": (162, 150, 176),
    "horn span": (55, 45, 71),
    "ACL row": (136, 126, 161),
    "ACL col": (133, 122, 144),
    "condyle front to back": (110, 100, 120),  # by eye on 4 series
}
# The real ACL count is of slices where a reader saw the ligament's band, the phantom's of slices
# with at least 12 px of it (REAL_KNEE.md): not the same measure, so it is printed, never required.
NOT_COMPARABLE = ("ACL slices",)
ACL, HORN_A, HORN_B = 0, 1, 2


def _runs(flags):
    """[(start, stop)] of the runs of True in a 1-D boolean array."""
    padded = np.concatenate([[False], flags, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2], edges[1::2]))


def notch_and_outside(marks):
    """Boolean (slices,) masks of one sagittal series's notch slices (the longest run without a horn
    between the first and the last slice that shows one) and of its slices outside the joint (before
    the first and after the last slice that shows a horn or the ACL): where a localiser must place
    no meniscus window. The central notch slices are the notch's less its first and last slice (next
    to a compartment, where a horn's last sliver may still be on the slice)."""
    present = marks[..., 0] > 0
    horn = present[:, HORN_A] | present[:, HORN_B]
    seen = horn | present[:, ACL]
    notch, outside = np.zeros(len(marks), bool), np.ones(len(marks), bool)
    if seen.any():
        first, last = np.flatnonzero(seen)[[0, -1]]
        outside[first:last + 1] = False
    if horn.any():
        lo, hi = np.flatnonzero(horn)[[0, -1]]
        gaps = [(a + lo, b + lo) for a, b in _runs(~horn[lo:hi + 1])]
        if gaps:
            start, stop = max(gaps, key=lambda g: g[1] - g[0])
            notch[start:stop] = True
    return notch, outside


def series_figures(marks):
    """REAL_KNEE.md's figures of one sagittal series from its anatomy truth (slices, places, 5):
    {figure: value}, a figure absent where the series has nothing to measure it on."""
    present = marks[..., 0] > 0
    n = len(marks)
    horn = present[:, HORN_A] | present[:, HORN_B]
    seen = horn | present[:, ACL]
    out = {"slices": n, "horn share": float(horn.mean()), "ACL slices": int(present[:, ACL].sum())}
    if seen.any():
        first, last = np.flatnonzero(seen)[[0, -1]]
        out["outside at start"] = first / n
        out["outside at end"] = (n - 1 - last) / n
    if horn.any():
        lo, hi = np.flatnonzero(horn)[[0, -1]]
        gaps = [(a + lo, b + lo) for a, b in _runs(~horn[lo:hi + 1])]
        start, stop = max(gaps, key=lambda g: g[1] - g[0]) if gaps else (lo, lo)
        out["notch slices"] = int(stop - start)
        if gaps:
            out["notch centre"] = (start + stop) / 2 / n
    # the clearest horn slices: both horns on the slice and on the two slices either side
    both = present[:, HORN_A] & present[:, HORN_B]
    clear = np.array([both[max(0, i - 2):i + 3].all() and 2 <= i < n - 2 for i in range(n)], bool)
    if clear.any():
        a, b = marks[clear, HORN_A], marks[clear, HORN_B]
        out.update({"anterior horn row": float(np.median(a[:, 1])), "anterior horn col": float(np.median(a[:, 2])),
                    "posterior horn row": float(np.median(b[:, 1])), "posterior horn col": float(np.median(b[:, 2])),
                    "horn span": float(np.median(b[:, 2] - a[:, 2]))})
    if present[:, ACL].any():
        acl = marks[present[:, ACL], ACL]
        area = acl[:, 3] * acl[:, 4]
        clearest = acl[area >= 0.5 * area.max()]
        out["ACL row"] = float(np.median(clearest[:, 1]))
        out["ACL col"] = float(np.median(clearest[:, 2]))
    return out


def condyle_extent(femur, joint_row):
    """Front-to-back extent (px) of the femoral condyle on one slice: the columns the femur mask
    covers on the rows from 40 px above the joint line down to it (the condyle, not the shaft)."""
    rows = femur[max(0, int(joint_row) - 40):int(joint_row) + 1]
    cols = np.flatnonzero(rows.any(axis=0))
    return float(cols[-1] - cols[0] + 1) if len(cols) else None


def exam_figures(exam):
    """series_figures of an exam's sagittal series (make_exam with_anatomy and with_masks), with the
    condyle's front-to-back extent: its median over the slices that show both horns (through either
    compartment), measured on the femur's marrow above that slice's joint line. A bad stack (its knee
    out of view) is left out, as REAL_KNEE.md left out its one unusable series: {}."""
    if exam["bad"].get("sagittal"):
        return {}
    marks = exam["anatomy"]["sagittal"]
    out = series_figures(marks)
    femur = exam["masks"]["sagittal"]["femur"]
    both = (marks[:, HORN_A, 0] > 0) & (marks[:, HORN_B, 0] > 0)
    extents = [condyle_extent(femur[i], (marks[i, HORN_A, 1] + marks[i, HORN_B, 1]) / 2) for i in np.flatnonzero(both)]
    extents = [e for e in extents if e]
    if extents:
        out["condyle front to back"] = float(np.median(extents))
    return out


def summarise(per_series):
    """{figure: (median, p10, p90, series measured)} over the series' figures."""
    out = {}
    for key in REAL:
        values = [f[key] for f in per_series if f.get(key) is not None]
        if values:
            out[key] = (float(np.median(values)), float(np.percentile(values, 10)), float(np.percentile(values, 90)),
                        len(values))
    return out


def outside_real(summary):
    """[(figure, median, real p10, real p90)] for every comparable figure whose median falls outside the
    real 10-90 % range: what the geometry test refuses."""
    return [(key, summary[key][0], REAL[key][1], REAL[key][2]) for key in REAL
            if key in summary and key not in NOT_COMPARABLE
            and not REAL[key][1] <= summary[key][0] <= REAL[key][2]]


def table(summary):
    """The figures side by side as text lines: real median [p10-p90], phantom median [p10-p90]."""
    lines = [f"{'figure':24s}{'real':>20s}{'phantom':>24s}"]
    for key, (median, lo, hi) in REAL.items():
        if key not in summary:
            lines.append(f"{key:24s}{median:>8g} [{lo:g}-{hi:g}]{'-':>18s}")
            continue
        m, p10, p90, n = summary[key]
        flag = "" if key in NOT_COMPARABLE else ("" if lo <= m <= hi else "  OUTSIDE")
        lines.append(f"{key:24s}{median:>8g} [{lo:g}-{hi:g}]{m:>12.3g} [{p10:.3g}-{p90:.3g}] n={n}{flag}")
    return lines
