"""Look where the lesions live: windows cut around the places the localiser found, slice by slice.

A meniscal tear is a 2 mm line on a few of 30 slices; at 64 px over the whole field of view it is a
pixel, and exam labels never taught a whole-slice CNN where to look (docs/experiments.md). Cut
at twice that resolution around each meniscus and the ACL, the same tear fills a good part of the
window, and every window of a kind shows the same anatomy in the same place.

The window follows its structure from slice to slice (a meniscus moves), and is used only on the
slices where the localiser is confident the structure is (`gates`). Everything is keras.ops, so the
same function cuts the windows in the training pipeline (once per exam, with a margin kept for shift
augmentation) and inside the exported SavedModel (from the raw uint8 slices predict feeds).
"""

import keras
from keras import ops

WINDOW = 32  # pixels of the 256 px series around each place's centre, at full resolution
SCALE = 1  # no averaging: a 2 mm meniscal tear is 3 pixels here, 1 at half the resolution
MARGIN = 8  # pixels each side kept around a training window, for shift augmentation (and its test)
CONFIDENT = 0.5  # a place's window is used on a slice where its presence probability exceeds this


def crop_size(margin=0, window=WINDOW, scale=SCALE):
    """Side of a crop as the network sees it (block-averaged), with `margin` series pixels each side."""
    return (window + 2 * margin) // scale


def cut_windows(slices, centres, size):
    """(N, 256, 256) slices and (N, K, 2) centres (row, column in pixels of the series) ->
    (N, K, size, size) windows, float32. Centres are rounded to whole pixels; a window reaching past
    the image's edge is filled with black (0), as the scanner's background."""
    slices = ops.cast(slices, "float32")
    n = ops.shape(centres)[0]
    half = size // 2
    padded = ops.pad(slices, ((0, 0), (half, half), (half, half)))
    side = 256 + 2 * half
    # the padded image's index of the window's top-left corner is the centre's own index
    top = ops.clip(ops.cast(ops.round(centres[..., 0]), "int32"), 0, 256)
    left = ops.clip(ops.cast(ops.round(centres[..., 1]), "int32"), 0, 256)
    steps = ops.arange(size, dtype="int32")
    rows = top[..., :, None] + steps  # (N, K, size)
    cols = left[..., :, None] + steps
    image = ops.reshape(ops.arange(n, dtype="int32") * (side * side), (-1, 1, 1, 1))
    index = image + rows[..., :, None] * side + cols[..., None, :]
    return ops.take(ops.reshape(padded, (-1,)), index)


def average_blocks(windows, factor=SCALE):
    """(N, K, s, s) -> (N, K, s / factor, s / factor): means of factor x factor pixel blocks."""
    if factor == 1:
        return windows
    n, k, s = ops.shape(windows)[0], ops.shape(windows)[1], ops.shape(windows)[2]
    blocks = ops.reshape(windows, (n, k, s // factor, factor, s // factor, factor))
    return ops.mean(blocks, axis=(3, 5))


def crops_at(slices, centres, margin=0, window=WINDOW, scale=SCALE):
    """The crop branch's input at these centres: windows of `window` + 2 * margin series pixels,
    block-averaged by `scale` (the localiser's refiner looks wider and coarser)."""
    return average_blocks(cut_windows(slices, centres, window + 2 * margin), scale)


def gates_from(presence):
    """1 where a place's window is used (confident presence), else 0: a window on a slice without
    its structure shows nothing the crop CNN was taught about, so it must not vote."""
    return ops.cast(presence > CONFIDENT, "float32")


def front(slices, input_size, pooled, localiser=None, margin=0):
    """What a plane model sees of raw uint8 slices (N, 256, 256): {'slices': block-averaged to
    input_size where the model trained on averaged slices, else as they are}, and with a localiser
    {'crops', 'gates'} and, for explanations, the centres and presence probabilities it found.

    The block average is the pipeline's (preprocess.block_average): sums of at most 256 uint8 values
    are exact in float32 and the division is by a power of two, so both give the same bits."""
    out = {"slices": slices}
    if pooled:
        x = ops.cast(slices, "float32")[:, None]
        out["slices"] = average_blocks(x, 256 // input_size)[:, 0]
    if localiser is not None:
        found = localiser({"slices": slices}, training=False)
        presence = ops.sigmoid(found["presence"])
        out.update(crops=crops_at(slices, found["centre"], margin), gates=gates_from(presence),
                   centres=found["centre"], presence=presence)
    return out


@keras.saving.register_keras_serializable("mrnet")
class Windows(keras.layers.Layer):
    """crops_at as a layer, for functional models (the localiser's close-up corrections): traced as a
    whole, so the batch size may stay unknown until the model runs."""

    def __init__(self, window=WINDOW, scale=SCALE, **kw):
        super().__init__(**kw)
        self.window, self.scale = window, scale

    def call(self, slices, centres):
        return crops_at(slices, centres, window=self.window, scale=self.scale)

    def compute_output_shape(self, slices_shape, centres_shape):
        side = crop_size(window=self.window, scale=self.scale)
        return (slices_shape[0], centres_shape[1], side, side)

    def get_config(self):
        return {**super().get_config(), "window": self.window, "scale": self.scale}
