"""Streaming prediction with a frozen bundle: ragged batches across exams, reads overlapped with compute.

Exams are grouped into chunks bounded by a slice budget; while one chunk runs through the three
plane models, a reader thread loads the next. Memory holds two chunks, whatever the exam count.
"""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from mrnet import combiner as comb
from mrnet.bundle import verify
from mrnet.contract import PLANES
from mrnet.series import read_data


def load_bundle(bundle):
    """(manifest, combiner, {plane: loaded SavedModel}); raises BundleError before loading any model.

    The bundle is verified before TensorFlow is imported: a broken bundle fails fast, in one line.
    The loaded objects themselves are kept: holding only their `serve` lets the variables be freed.
    """
    from importlib.metadata import version

    from mrnet.runtime import import_tensorflow

    manifest, combiner = verify(bundle, version("tensorflow"))
    tf = import_tensorflow()

    models = {plane: tf.saved_model.load(str(Path(bundle) / plane)) for plane in PLANES}
    return manifest, combiner, models


def chunks(exams, budget):
    """Consecutive exams whose largest plane stack sum stays within `budget` slices."""
    chunk, used = [], 0
    for exam in exams:
        size = max(info[0][0] for _, info in exam.series.values())
        if chunk and used + size > budget:
            yield chunk
            chunk, used = [], 0
        chunk.append(exam)
        used += size
    if chunk:
        yield chunk


def read_series(path, info):
    """One checked series as uint8 0-255 (other dtypes were checked to hold 0-255 values; rounded)."""
    a = read_data(path, info)
    return a if a.dtype == np.uint8 else np.rint(a).astype(np.uint8)


def read_chunk(chunk):
    """{plane: (uint8 slices, int32 counts)} for a chunk of exams."""
    out = {}
    for plane in PLANES:
        arrays = [read_series(*exam.series[plane]) for exam in chunk]
        out[plane] = (np.concatenate(arrays), np.array([a.shape[0] for a in arrays], np.int32))
    return out


def plane_logits(model, slices, counts, flip=False):
    """(logits (exams, 3), windows used per exam and place (exams, K), or None for a whole-slice
    model). `flip` averages with the mirror image (columns reversed): a left knee looks like a
    mirrored right knee, on coronal and axial slices only (predict --tta)."""
    import tensorflow as tf

    serve = model.serve
    out = serve(slices=tf.constant(slices), counts=tf.constant(counts))
    logits = out["logits"].numpy()
    if flip:
        mirrored = serve(slices=tf.constant(slices[:, :, ::-1].copy()), counts=tf.constant(counts))
        logits = (logits + mirrored["logits"].numpy()) / 2
    return logits, out["localised"].numpy() if "localised" in out else None


# The planes whose mirror image (columns reversed) is a knee that exists: on coronal and axial
# slices it is the other knee; on a sagittal slice it swaps front and back, which no scan shows.
MIRRORED = ("coronal", "axial")


def predict(exams, combiner, models, batch_slices=256, tta=False, progress=None):
    """Yield (exam, probabilities[3], planes that fell back) in input order; `combiner`, `models` as
    load_bundle returns them. A crop model's plane falls back to its whole-slice branch for an exam
    on whose slices the localiser was confident of no place; those planes are named."""
    plan = list(chunks(exams, batch_slices))
    with ThreadPoolExecutor(1) as reader:
        pending = reader.submit(read_chunk, plan[0]) if plan else None
        for i, chunk in enumerate(plan):
            data = pending.result()
            pending = reader.submit(read_chunk, plan[i + 1]) if i + 1 < len(plan) else None
            out = {p: plane_logits(models[p], *data[p], flip=tta and p in MIRRORED) for p in PLANES}
            logits = {p: logit for p, (logit, _) in out.items()}
            for row, (exam, probs) in enumerate(zip(chunk, comb.apply(combiner, logits))):
                fell_back = [p for p, (_, used) in out.items() if used is not None and not used[row].any()]
                yield exam, probs, fell_back
            if progress:
                progress(len(chunk))
