"""The per-plane model: a 2-D CNN over every slice, pooled over space, then over each exam's slices.

Inputs are ragged without padding: `slices` holds every slice of the batch's exams back to back
(the CNN's batch axis), `counts` holds each exam's slice count, in order (see layers.py).
Output: three logits per exam (abnormal, ACL, meniscus). Keras layers and keras.ops only.
"""

import keras
from keras import layers, ops

from learning.layers import ExamAugment, ExamPool
from learning.recipe import pretrained_weights
from mrnet import preprocess
from mrnet.contract import TASKS

BACKBONES = ("compact", "resnet50", "efficientnetb0")


def compact_backbone(width=16):
    """Small from-scratch CNN, GroupNorm (batch-independent, see the BatchNorm note in the README)."""
    def block(x, filters, stride):
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        x = layers.GroupNormalization(groups=min(8, filters // 4))(x)
        return layers.Activation("relu")(x)

    inp = keras.Input((None, None, 1))
    x = block(inp, width, 2)
    x = block(x, width * 2, 2)
    x = block(x, width * 3, 2)
    x = block(x, width * 3, 1)
    x = block(x, width * 4, 2)
    return keras.Model(inp, x, name="compact")


def applications_backbone(name, weights, input_size):
    """keras.applications backbone; `weights` is 'imagenet', 'none' or a path to saved weights.

    With pretrained weights its BatchNorm layers keep their learnt statistics in training too
    (inference mode, as Keras' transfer-learning guide fine-tunes): a 256 px batch holds about one
    exam (--batch-slices auto: 32), and BatchNorm over one exam's slices ranked exams inversely
    (the team's measured AUC 0.26 where 0.75 was reachable). An exam's logits are then the same
    alone and in any batch, as with the compact CNN's GroupNorm (tests/test_model.py). From scratch
    there are no statistics to keep, so its BatchNorm learns from batches of several exams
    (learning.recipe.slice_budget)."""
    ctor = {"resnet50": keras.applications.ResNet50, "efficientnetb0": keras.applications.EfficientNetB0}[name]
    hub_weights = "imagenet" if weights == "imagenet" else None
    base = ctor(include_top=False, weights=hub_weights, input_shape=(input_size, input_size, 3))
    if weights not in ("imagenet", "none", None):
        base.load_weights(weights)
    if pretrained_weights(weights):
        for layer in base.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.trainable = False  # Keras 3: a BatchNormalization that is not trainable runs in inference mode
    inp = keras.Input((None, None, 1))
    x = layers.Concatenate()([inp, inp, inp])  # grey to the 3 channels ImageNet backbones expect
    return keras.Model(inp, base(x), name=name)


def build_model(backbone="compact", pooling="max", input_size=128, width=16, weights="none", dropout=0.3,
                augment=True, seed=0, space_pool="avg", rotate=25.0, shift=25.0, pool_on="features",
                pooled_input=False):
    """`pool_on`: pool slice features then score the exam (the MRNet paper's order), or score every
    slice then pool the slice logits (each slice is a candidate finding; its score is the explanation).

    `pooled_input`: the slices arrive already block-averaged to `input_size` (float32, from
    preprocess.block_average in the training pipeline: 16x fewer bytes per step at 64 px). The
    weights are the same either way; the exported model always takes the raw uint8 256 px slices."""
    if pooled_input:
        slices = keras.Input((input_size, input_size), dtype="float32", name="slices")
    else:
        slices = keras.Input((256, 256), dtype="uint8", name="slices")
    counts = keras.Input((), dtype="int32", name="counts")
    size = input_size if pooled_input else 256
    x = layers.Reshape((size, size, 1))(ops.cast(slices, "float32"))
    if size != input_size:
        x = layers.AveragePooling2D(256 // input_size, name="resample")(x)
    x = layers.Rescaling(1 / preprocess.STD, -preprocess.MEAN / preprocess.STD, name="normalise")(x)
    if augment:
        x = ExamAugment(rotate, shift, fill=-preprocess.MEAN / preprocess.STD, seed=seed, name="augment")(
            [x, counts])
    net = compact_backbone(width) if backbone == "compact" else applications_backbone(backbone, weights, input_size)
    x = layers.Identity(name="feature_map")(net(x))  # named: explanations read the map from here
    if space_pool == "avg":
        x = layers.GlobalAveragePooling2D(name="space_pool")(x)
    elif space_pool == "max":
        x = layers.GlobalMaxPooling2D(name="space_pool")(x)
    else:  # both: the average sees diffuse findings (effusion), the max sees small ones (a tear line)
        x = layers.Concatenate(name="space_pool")([layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)])
    if pool_on == "features":
        x = ExamPool(pooling, name="slice_pool")([x, counts])
        x = layers.Dropout(dropout, seed=seed)(x)
        logits = layers.Dense(len(TASKS), name="logits")(x)
    else:
        x = layers.Dropout(dropout, seed=seed)(x)
        x = layers.Dense(len(TASKS), name="slice_logits")(x)
        logits = ExamPool(pooling, name="logits")([x, counts])
    return keras.Model({"slices": slices, "counts": counts}, logits, name=f"mrnet_{backbone}_{pooling}")
