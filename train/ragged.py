"""Ragged exams as flat slices plus per-exam slice counts, with segment ops that run on any backend.

Counts, not per-slice exam ids, are the model's second input: the number of exams is then a
static shape under JAX (whose segment ops need `num_segments` at trace time), and the frozen
SavedModel takes exactly what predict has in hand. TensorFlow's sorted segment ops refuse
`num_segments`, JAX's require it: the one backend branch in the model lives here.
"""

import keras
from keras import ops


def exam_ids(counts, n_slices):
    """Slice -> exam index (sorted, 0..B-1), from counts alone: slice n belongs to the exam whose
    cumulative end is the first one past n. An (N, B) comparison, small next to any convolution."""
    ends = ops.cumsum(ops.cast(counts, "int32"))
    positions = ops.arange(n_slices, dtype="int32")
    return ops.sum(ops.cast(positions[:, None] >= ends[None, :], "int32"), axis=1)


def _segment(op, data, ids, n_exams):
    if keras.backend.backend() == "tensorflow":
        return op(data, ids, sorted=True)
    return op(data, ids, num_segments=n_exams, sorted=True)


def segment_max(data, ids, n_exams):
    return _segment(ops.segment_max, data, ids, n_exams)


def segment_sum(data, ids, n_exams):
    return _segment(ops.segment_sum, data, ids, n_exams)
