"""The per-plane model: a 2-D CNN over every slice, pooled over space, then over each exam's slices.

Inputs are ragged without padding: `slices` holds every slice of the batch's exams back to back
(the CNN's batch axis), `counts` holds each exam's slice count, in order (see layers.py).
Output: three logits per exam (abnormal, ACL, meniscus). Keras layers and keras.ops only.
"""

import keras
from keras import layers, ops

from learning.crops import crop_size
from learning.layers import NO_WINDOW, ExamAugment, ExamPool, WindowVote, standardise
from learning.recipe import MODEL_DEFAULTS, MODEL_KEYS, pretrained_weights
from mrnet import preprocess
from mrnet.contract import PLACE_KIND, PLACES, TASKS, WINDOW_TASKS

BACKBONES = ("compact", "resnet50", "efficientnetb0")


def conv_block(x, filters, stride=1):
    """3 x 3 convolution, GroupNorm (batch-independent: see docs/design.md, Training), ReLU.
    At most 8 groups of at least 4 channels, and a number of groups that divides the channels."""
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    groups = max(1, min(8, filters // 4))
    while filters % groups:
        groups -= 1
    x = layers.GroupNormalization(groups=groups)(x)
    return layers.Activation("relu")(x)


def compact_backbone(width=16):
    """Small from-scratch CNN for the whole slice."""
    inp = keras.Input((None, None, 1))
    x = conv_block(inp, width, 2)
    x = conv_block(x, width * 2, 2)
    x = conv_block(x, width * 3, 2)
    x = conv_block(x, width * 3, 1)
    x = conv_block(x, width * 4, 2)
    return keras.Model(inp, x, name="compact")


def applications_backbone(name, weights, input_size):
    """keras.applications backbone; `weights` is 'imagenet', 'none' or a path to saved weights.

    With pretrained weights its BatchNorm layers keep their learnt statistics in training too
    (inference mode, as Keras' transfer-learning guide fine-tunes): a 256 px batch holds about one
    exam (--batch-slices auto: 32), and BatchNorm over one exam's slices ranked exams inversely
    (measured: AUC 0.26 where 0.75 was reachable). An exam's logits are then the same
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


def crop_backbone(width):
    """The crop CNN: the compact CNN's blocks, no stride at first (a 32 px window at full resolution,
    where a meniscal tear is 2-4 pixels, keeps its detail to the second block) down to a 4 x 4 map."""
    inp = keras.Input((None, None, 1))
    x = conv_block(inp, width, 1)
    x = conv_block(x, width * 2, 2)
    x = conv_block(x, width * 3, 2)
    x = conv_block(x, width * 4, 2)
    return keras.Model(inp, x, name="crop_cnn")


def space_pooling(x, mode, name):
    if mode == "avg":
        return layers.GlobalAveragePooling2D(name=name)(x)
    if mode == "max":
        return layers.GlobalMaxPooling2D(name=name)(x)
    # both: the average sees diffuse findings (effusion), the max sees small ones (a tear line)
    return layers.Concatenate(name=name)([layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)])


def window_network(width, space_pool):
    """The crop branch's network, one window at a time: (M, s, s) windows -> (M, 2) logits, an ACL
    tear's and a meniscal tear's. The same network (its crop CNN and its head) is what pretrain.py
    trains on window labels, so the exam model can start from it as it is."""
    windows = keras.Input((None, None), dtype="float32", name="windows")
    x = ops.expand_dims(windows, -1)
    x = layers.Lambda(standardise, name="crop_normalise")(x)
    x = layers.Identity(name="crop_map")(crop_backbone(width)(x))
    x = space_pooling(x, space_pool, "crop_pool")
    return keras.Model(windows, layers.Dense(len(WINDOW_TASKS), name="window_head")(x), name="window_network")


def window_scores(crops, gates, network):
    """(N, K, s, s) windows and (N, K) gates -> (N, K) each window's tear logit for its place's kind
    (named window_scores: explanations read it), and (N, 2) per slice the ACL window's and the more
    suspicious meniscus window's logit, NO_WINDOW where the window was not used."""
    size, places = crops.shape[-1], crops.shape[1]
    both = ops.reshape(network(ops.reshape(crops, (-1, size, size))), (-1, places, len(WINDOW_TASKS)))
    per_window = ops.sum(both * ops.one_hot(ops.convert_to_tensor(PLACE_KIND), len(WINDOW_TASKS))[None], axis=-1)
    per_window = layers.Identity(name="window_scores")(per_window)
    used = ops.where(gates > 0, per_window, NO_WINDOW)
    return per_window, ops.stack([used[:, 0], ops.max(used[:, 1:], axis=1)], axis=1)


def build_model(pooled_input=False, **config):
    """The per-plane network; every argument a recipe key (learning/recipe.py), defaults the recipe's.

    `pooled_input`: the slices arrive already block-averaged to `input_size` (float32, from
    preprocess.block_average in the training pipeline: 16x fewer bytes per step at 64 px). The
    weights are the same either way (learning/export.py wraps the trained model for raw slices).

    With `crops`, two more inputs: `crops` (N, 3, s, s), the windows around the ACL and the two
    meniscus places of each slice (learning/crops.py), and `gates` (N, 3), 1 where the localiser is
    confident the place is on the slice. Each used window scores its own tear (window_network: the
    ACL's window for an ACL tear, a meniscus's for a meniscal tear), the exam keeps its most
    suspicious window of each kind (multiple-instance learning: a tear is in one window of ~40), and
    those two votes join the whole-slice branch's logits through a small learnt mixing."""
    unknown = set(config) - set(MODEL_KEYS)
    if unknown:
        raise TypeError(f"build_model: unknown recipe keys {sorted(unknown)}; see learning/recipe.MODEL_KEYS")
    c = {**MODEL_DEFAULTS, **config}
    input_size = c["input_size"]
    if pooled_input:
        slices = keras.Input((input_size, input_size), dtype="float32", name="slices")
    else:
        slices = keras.Input((256, 256), dtype="uint8", name="slices")
    counts = keras.Input((), dtype="int32", name="counts")
    inputs = {"slices": slices, "counts": counts}
    size = input_size if pooled_input else 256
    x = layers.Reshape((size, size, 1))(ops.cast(slices, "float32"))
    if size != input_size:
        x = layers.AveragePooling2D(256 // input_size, name="resample")(x)
    x = layers.Rescaling(1 / preprocess.STD, -preprocess.MEAN / preprocess.STD, name="normalise")(x)
    if c["augment"]:
        x = ExamAugment(c["rotate"], c["shift"], fill=-preprocess.MEAN / preprocess.STD, seed=c["seed"],
                        name="augment")([x, counts])
    backbone = c["backbone"]
    net = compact_backbone(c["width"]) if backbone == "compact" else \
        applications_backbone(backbone, c["weights"], input_size)
    x = layers.Identity(name="feature_map")(net(x))  # named: explanations read the map from here
    x = space_pooling(x, c["space_pool"], "space_pool")
    x = ExamPool(c["pooling"], name="slice_pool")([x, counts])
    x = layers.Dropout(c["dropout"], seed=c["seed"])(x)
    logits = layers.Dense(len(TASKS), name="logits")(x)
    if c["crops"]:
        side = crop_size()
        inputs["crops"] = keras.Input((len(PLACES), side, side), dtype="float32", name="crops")
        inputs["gates"] = keras.Input((len(PLACES),), dtype="float32", name="gates")
        network = window_network(c["crop_width"], c["space_pool"])
        _, per_slice = window_scores(inputs["crops"], inputs["gates"], network)
        # each exam's most suspicious ACL window and meniscus window (0 where it had none: the exam
        # falls back to the whole slice), added to the tasks they speak for: at the start an ACL
        # window's tear logit is the exam's ACL evidence as pretrain.py taught it; the exam labels
        # then learn how much each window kind says about each task
        votes = WindowVote(name="window_vote")([per_slice, counts])
        logits = layers.Add(name="exam_logits")([logits, layers.Dense(
            len(TASKS), name="window_logits", kernel_initializer=keras.initializers.Constant(
                [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))(votes)])
    return keras.Model(inputs, logits, name=f"mrnet_{backbone}_{c['pooling']}" + ("_crops" if c["crops"] else ""))
