"""On-device augmentation, one random transform per exam applied to all of its slices.

Keras' own random layers draw a transform per image; here an image is a slice, and an exam whose
slices are rotated differently is no longer a knee. So the transform is drawn per exam and
gathered to its slices. Only keras.ops: it runs on whatever backend and device the model does.
"""

import math

import keras
from keras import ops

from ragged import exam_ids


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
