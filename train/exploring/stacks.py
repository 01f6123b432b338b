"""Per-series statistics and the heuristics that flag suspicious stacks.

Each series is summarised from a subsample (every other slice, every other pixel) so the whole real
dataset is scanned in seconds. Flags are relative to the plane's own distribution (robust z-scores),
because what is normal for a T1 coronal is odd for a fat-suppressed sagittal.
"""

import numpy as np
import pandas as pd

from mrnet.series import header_info, read_data

FOREGROUND = 20  # grey level above which a pixel is taken to be tissue


def series_stats(path):
    a = read_data(path, header_info(path))
    sub = a[::2, ::2, ::2].astype(np.float32)
    fg = sub >= FOREGROUND
    per_slice_fg = fg.mean(axis=(1, 2))
    weight = fg.sum(axis=0)
    total = max(weight.sum(), 1)
    yy, xx = np.indices(weight.shape)
    cy, cx = (weight * yy).sum() / total, (weight * xx).sum() / total
    half = (weight.shape[0] - 1) / 2
    background = sub[~fg]
    return {
        "slices": a.shape[0],
        "mean": float(sub.mean()),
        "std": float(sub.std()),
        "dark_share": float((sub < 10).mean()),
        "saturated_share": float((sub >= 255).mean()),
        "empty_slice_share": float((per_slice_fg < 0.05).mean()),
        "centre_offset": float(np.hypot(cy - half, cx - half) / weight.shape[0]),
        "background_level": float(background.mean()) if background.size else 0.0,
        "roughness": float(np.abs(np.diff(sub, axis=2)).mean() / max(sub.mean(), 1.0)),
    }


def robust_z(values):
    values = np.asarray(values, float)
    med = np.median(values)
    mad = np.median(np.abs(values - med)) * 1.4826
    return (values - med) / max(mad, 1e-6)


def flag_suspicious(stats, z_limit=4.0):
    """A 'reason' column per series: empty when nothing looks wrong."""
    reasons = pd.Series([""] * len(stats), index=stats.index, dtype=object)

    def add(where, text):
        for i in (stats.index[where] if isinstance(where, (pd.Series, np.ndarray)) and where.dtype == bool else where):
            reasons[i] = (reasons[i] + "; " if reasons[i] else "") + text

    add(stats["centre_offset"] > 0.18, "knee off-centre, partly outside the field of view")
    add(stats["empty_slice_share"] > 0.5, "mostly empty slices")
    for plane, group in stats.groupby("plane"):
        idx = group.index
        z_noise = robust_z(group["background_level"] + 10 * group["roughness"])
        add(idx[z_noise > z_limit] if len(group) > 4 else idx[:0], "heavy noise or artefact (ghosting)")
        z_mean = robust_z(group["mean"])
        add(idx[np.abs(z_mean) > z_limit] if len(group) > 4 else idx[:0], "intensity outlier")
    return reasons.str.strip("; ")
