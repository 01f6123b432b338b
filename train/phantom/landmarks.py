"""Where each structure is, slice by slice: the anatomy truth a localiser learns from and is measured
against. The phantom draws every structure, so this truth comes for free and is exact.

Per plane and slice, for each of the places (mrnet.contract.PLACES): whether the structure is on the slice (at least
MIN_AREA pixels of it), the centroid of its pixels and the height and width of their bounding box,
all in pixels of the 256 x 256 series. Written beside the series as `phantom-anatomy.npz` (one
float32 (slices, structures, 5) array per plane and case); tears' centroids per slice go into
phantom-truth.json, so a decisive crop can be checked against where the tear really is.
"""

import zipfile
from pathlib import Path

import numpy as np

from mrnet.contract import PLACES

# The places (mrnet.contract.PLACES), in the localiser's output order: the ACL, and the menisci as two
# places per slice. On a sagittal slice at most one meniscus shows, as two horns (a tear sits in one):
# "meniscus A" is the anterior horn (image left), "meniscus B" the posterior one. On coronal and axial
# slices both menisci show side by side: A is the one on the image's left, B the one on its right, by
# where each lies over the whole stack, so a left knee (the mirror image) is localised as well as a
# right one; which is medial does not matter to the tasks.
FIELDS = ("present", "row", "col", "height", "width")
MIN_AREA = 12  # pixels at 256: a sliver at a structure's edge is not something to crop around
ANATOMY = "phantom-anatomy.npz"


def places(masks, plane):
    """{place in PLACES: boolean (slices, 256, 256) mask} from the phantom's structure masks."""
    medial, lateral = masks["medial meniscus"], masks["lateral meniscus"]
    if plane == "sagittal":
        both = medial | lateral
        counts, col_sums = _sums(both.sum(axis=1))
        # between the horns: each slice's meniscus centroid column (none on a slice without meniscus)
        split = np.divide(col_sums, counts, out=np.full(len(both), np.inf), where=counts > 0)
        left = np.arange(both.shape[2])[None, None, :] < split[:, None, None]
        a, b = both & left, both & ~left
    else:
        mean_col = []
        for m in (medial, lateral):
            count, col_sum = _sums(m.sum(axis=(0, 1))[None])
            mean_col.append(col_sum[0] / count[0] if count[0] else 0.0)
        a, b = (medial, lateral) if mean_col[0] <= mean_col[1] else (lateral, medial)
    return {"ACL": masks["ACL"], "meniscus A": a, "meniscus B": b}


def _sums(profiles):
    """(pixel count, index-weighted sum) of each slice's (slices, n) row or column profile, in exact
    integers: their quotient is the centroid np.nonzero(...).mean() gives, to the bit, at a fraction
    of its time (the generator spent a fifth of its time in per-slice np.nonzero)."""
    profiles = profiles.astype(np.int64)
    return profiles.sum(axis=1), profiles @ np.arange(profiles.shape[1], dtype=np.int64)


def _extent(profiles):
    """First and last index with a pixel, per slice of a (slices, n) profile ((0, n - 1) where none:
    such a slice is under MIN_AREA and never read)."""
    on = profiles > 0
    first = np.argmax(on, axis=1)
    last = profiles.shape[1] - 1 - np.argmax(on[:, ::-1], axis=1)
    return first, last


def slice_landmarks(masks, plane):
    """(slices, len(PLACES), 5) float32: present, centroid row and column, bounding-box height and
    width (pixels of the 256 px series), from the phantom's structure masks. Absent: zeros."""
    found = places(masks, plane)
    n = len(found["ACL"])
    out = np.zeros((n, len(PLACES), len(FIELDS)), np.float32)
    for k, name in enumerate(PLACES):
        row_profile, col_profile = found[name].sum(axis=2), found[name].sum(axis=1)
        counts, row_sums = _sums(row_profile)
        _, col_sums = _sums(col_profile)
        (top, bottom), (left, right) = _extent(row_profile), _extent(col_profile)
        shown = counts >= MIN_AREA  # a sliver at a structure's edge is no place
        safe = np.maximum(counts, 1)
        out[shown, k] = np.stack([np.ones(n), row_sums / safe, col_sums / safe, bottom - top + 1,
                                  right - left + 1], axis=1)[shown]
    return out


def lesion_centres(masks, names):
    """{lesion name: {slice: [row, col]}} for the named lesions, on every slice that holds any of them."""
    out = {}
    for name in names:
        counts, row_sums = _sums(masks[name].sum(axis=2))
        _, col_sums = _sums(masks[name].sum(axis=1))
        out[name] = {str(i): [round(float(row_sums[i] / counts[i]), 1), round(float(col_sums[i] / counts[i]), 1)]
                     for i in np.flatnonzero(counts)}
    return out


def write_anatomy(path, anatomy):
    """`anatomy`: {case: {plane: (slices, structures, 5) array}} -> one npz, keys 'plane-case'. Written
    entry by entry with a fixed time stamp (np.savez stamps the clock), so the same seed gives the
    same bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for case, planes in anatomy.items():
            for plane, array in planes.items():
                info = zipfile.ZipInfo(f"{plane}-{case}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(info, "w") as f:
                    np.lib.format.write_array(f, np.asarray(array, np.float32), allow_pickle=False)


def read_anatomy(data_dir):
    """{(plane, case): (slices, structures, 5) float32}, or None where the data has no anatomy truth
    (real data; phantoms older than generator v5)."""
    path = Path(data_dir) / ANATOMY
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as npz:
        return {tuple(key.split("-", 1)): npz[key] for key in npz.files}
