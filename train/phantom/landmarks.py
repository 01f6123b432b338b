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
        cols = np.arange(both.shape[2])
        a, b = np.zeros_like(both), np.zeros_like(both)
        for i, plane_slice in enumerate(both):
            on = np.nonzero(plane_slice)
            if len(on[0]):
                split = on[1].mean()  # between the horns: the slice's meniscus centroid
                a[i] = plane_slice & (cols[None, :] < split)
                b[i] = plane_slice & (cols[None, :] >= split)
    else:
        mean_col = [np.nonzero(m)[2].mean() if m.any() else 0.0 for m in (medial, lateral)]
        a, b = (medial, lateral) if mean_col[0] <= mean_col[1] else (lateral, medial)
    return {"ACL": masks["ACL"], "meniscus A": a, "meniscus B": b}


def slice_landmarks(masks, plane):
    """(slices, len(PLACES), 5) float32: present, centroid row and column, bounding-box height and
    width (pixels of the 256 px series), from the phantom's structure masks. Absent: zeros."""
    found = places(masks, plane)
    n = len(found["ACL"])
    out = np.zeros((n, len(PLACES), len(FIELDS)), np.float32)
    for k, name in enumerate(PLACES):
        for i, plane_slice in enumerate(found[name]):
            rows, cols = np.nonzero(plane_slice)
            if len(rows) < MIN_AREA:
                continue
            out[i, k] = (1.0, rows.mean(), cols.mean(), rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
    return out


def lesion_centres(masks, names):
    """{lesion name: {slice: [row, col]}} for the named lesions, on every slice that holds any of them."""
    out = {}
    for name in names:
        per_slice = {}
        for i, plane_slice in enumerate(masks[name]):
            rows, cols = np.nonzero(plane_slice)
            if len(rows):
                per_slice[str(i)] = [round(float(rows.mean()), 1), round(float(cols.mean()), 1)]
        out[name] = per_slice
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
