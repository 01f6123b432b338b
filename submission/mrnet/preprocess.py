"""The single definition of input preprocessing, recorded in the bundle manifest.

Training builds these constants into the Keras model and the frozen SavedModel carries them, so
prediction cannot drift from training: predict feeds raw uint8 slices and nothing else.
"""

# Public MRNet submissions normalise with these (CONTRACT.md); kept so real-data models transfer.
MEAN = 58.09
STD = 49.73
INPUT_DTYPE = "uint8"
VALUE_RANGE = (0, 255)


def block_average(slices, input_size):
    """(N, 256, 256) uint8 -> (N, input_size, input_size) float32 means of square pixel blocks: the
    model's own `resample` step, done once in the training pipeline instead of in every step.

    Exactly the model's AveragePooling2D: a block's sum of at most 256 uint8 values is exact in
    float32 and the division is by a power of two, so both give the same bits (tested)."""
    import numpy as np

    k = 256 // input_size
    if k == 1:
        return slices.astype(np.float32)
    n = slices.shape[0]
    sums = slices.reshape(n, input_size, k, input_size, k).sum(axis=(2, 4), dtype=np.uint32)
    return sums.astype(np.float32) / np.float32(k * k)


def spec(input_size):
    """What the manifest says about the inputs: enough to build valid random inputs (self-check)."""
    return {
        "slices": {"dtype": INPUT_DTYPE, "shape": [None, 256, 256], "value_range": list(VALUE_RANGE),
                   "description": "all slices of the batch's exams, concatenated exam after exam"},
        "counts": {"dtype": "int32", "shape": [None], "value_range": [1, None],
                   "description": "slice count of each exam, in order; every count >= 1, sum = slices"},
        "normalisation": {"mean": MEAN, "std": STD, "formula": "(x - mean) / std"},
        "model_input_size": input_size,
        "resampling": "none" if input_size == 256 else "{0}x{0} block average".format(256 // input_size),
    }
