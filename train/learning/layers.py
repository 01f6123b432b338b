"""The model's ragged-exam layers: segment ops over flat slices, per-exam pooling, per-exam augmentation.

A batch is several exams' slices back to back (the CNN's batch axis) plus each exam's slice count.
Counts, not per-slice exam ids, are the model's second input: the number of exams is then a
static shape under JAX (whose segment ops need `num_segments` at trace time), and the frozen
SavedModel takes exactly what predict has in hand. TensorFlow's sorted segment ops refuse
`num_segments`, JAX's require it: the one backend branch in the model lives here.

Keras' own random layers draw a transform per image; here an image is a slice, and an exam whose
slices are rotated differently is no longer a knee. So ExamAugment draws one transform per exam and
gathers it to the exam's slices. Keras layers and keras.ops only: any backend, any device.
"""

import math

import keras
from keras import layers, ops

POOLINGS = ("max", "mean", "attention")


def exam_ids(counts, n_slices):
    """Slice -> exam index (sorted, 0..B-1), from counts alone: slice n belongs to the exam whose
    cumulative end is the first one past n. An (N, B) comparison, small next to any convolution."""
    ends = ops.cumsum(ops.cast(counts, "int32"))
    positions = ops.arange(n_slices, dtype="int32")
    return ops.sum(ops.cast(positions[:, None] >= ends[None, :], "int32"), axis=1)


def _segment(op, data, ids, n_exams):
    # The unsorted form with num_segments is the one every backend and XLA compile: TensorFlow's
    # sorted segment ops refuse num_segments, and without it XLA cannot size the output.
    return op(data, ids, num_segments=n_exams, sorted=False)


def segment_max(data, ids, n_exams):
    return _segment(ops.segment_max, data, ids, n_exams)


def segment_sum(data, ids, n_exams):
    return _segment(ops.segment_sum, data, ids, n_exams)


@keras.saving.register_keras_serializable("mrnet")
class ExamPool(layers.Layer):
    """Pool each exam's slice features into one vector: the step that makes ragged exams work.

    Segment ops are used with sorted ids, so an exam's result depends on its own slices only,
    whoever shares the batch. An exam with no slices never reaches here (the pipeline rejects it).
    """

    def __init__(self, mode="max", **kw):
        super().__init__(**kw)
        if mode not in POOLINGS:
            raise ValueError(f"pooling {mode!r} not in {POOLINGS}")
        self.mode = mode

    def build(self, input_shape):
        if self.mode == "attention":
            self.score = layers.Dense(1, name="slice_score")
            self.score.build(input_shape[0])

    def call(self, inputs):
        features, counts = inputs
        n = ops.shape(counts)[0]
        ids = exam_ids(counts, ops.shape(features)[0])
        if self.mode == "max":
            return segment_max(features, ids, n)
        if self.mode == "mean":
            return segment_sum(features, ids, n) / ops.cast(counts, features.dtype)[:, None]
        logit = self.score(features)  # (N, 1): softmax within each exam
        peak = ops.take(segment_max(logit, ids, n), ids, axis=0)
        weight = ops.exp(logit - peak)
        norm = ops.take(segment_sum(weight, ids, n), ids, axis=0)
        return segment_sum(features * weight / norm, ids, n)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable("mrnet")
class ExamAugment(keras.layers.Layer):
    """Rotation, translation, flip and intensity jitter, identical across one exam's slices."""

    def __init__(self, rotation_deg=25.0, shift_px=25.0, flip=True, intensity=0.1, fill=0.0, seed=None, **kw):
        super().__init__(**kw)
        self.fill = fill  # the normalised value of a black pixel, so the corners stay background
        self.rotation_deg, self.shift_px, self.flip, self.intensity = rotation_deg, shift_px, flip, intensity
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        images, counts = inputs
        if not training:
            return images
        n_exams = ops.shape(counts)[0]
        ids = exam_ids(counts, ops.shape(images)[0])
        size = ops.cast(ops.shape(images)[1], "float32")
        scale_px = size / 256.0  # shifts are given at the native 256 px
        angle = keras.random.uniform((n_exams,), -1, 1, seed=self.generator) * self.rotation_deg * math.pi / 180
        tx = keras.random.uniform((n_exams,), -1, 1, seed=self.generator) * self.shift_px * scale_px
        ty = keras.random.uniform((n_exams,), -1, 1, seed=self.generator) * self.shift_px * scale_px
        sign = ops.where(keras.random.uniform((n_exams,), seed=self.generator) < 0.5, -1.0, 1.0) if self.flip \
            else ops.ones((n_exams,))
        gain = 1 + keras.random.uniform((n_exams,), -1, 1, seed=self.generator) * self.intensity
        cos, sin = ops.cos(angle), ops.sin(angle)
        c = (size - 1) / 2
        # output->input map: x_in = a0*x + a1*y + a2, y_in = b0*x + b1*y + b2 (flip mirrors x)
        a0, a1 = cos * sign, -sin
        b0, b1 = sin * sign, cos
        a2 = c - a0 * c - a1 * c + tx
        b2 = c - b0 * c - b1 * c + ty
        zeros = ops.zeros_like(a0)
        transforms = ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        per_slice = ops.take(transforms, ids, axis=0)
        moved = ops.image.affine_transform(images, per_slice, interpolation="bilinear", fill_mode="constant",
                                           fill_value=self.fill)
        return moved * ops.take(gain, ids, axis=0)[:, None, None, None]

    def get_config(self):
        return {**super().get_config(), "rotation_deg": self.rotation_deg, "shift_px": self.shift_px,
                "flip": self.flip, "intensity": self.intensity, "fill": self.fill, "seed": self.seed}


def standardise(x):
    """Each image (a slice, a window: (N, h, w, 1)) to zero mean and unit spread, on its own: contrast,
    coil shading and gain vary across the field of view, between scanners and across a randomised
    corpus; where a structure is, and a tear as a contrast within its window, do not depend on them.
    Nothing depends on the batch."""
    mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
    spread = ops.sqrt(ops.mean(ops.square(x - mean), axis=(1, 2, 3), keepdims=True) + 1.0)
    return (x - mean) / spread


NO_WINDOW = -1e4  # the score of a window the localiser did not place (below any real logit)


@keras.saving.register_keras_serializable("mrnet")
class WindowVote(layers.Layer):
    """Each exam's highest window score per kind, over its own slices; 0 for an exam none of whose
    windows was used (every score NO_WINDOW): such an exam falls back to the whole-slice branch."""

    def call(self, inputs):
        scores, counts = inputs
        n = ops.shape(counts)[0]
        best = segment_max(scores, exam_ids(counts, ops.shape(scores)[0]), n)
        return ops.where(best > NO_WINDOW / 2, best, ops.zeros_like(best))
