"""Freeze a trained plane model into a SavedModel that predict can run with no model code.

The signature is flat slices plus per-exam slice counts: `model.export()` would silently turn a
ragged input into a dense one, and `input_signature` rejects a RaggedTensorSpec.

A second endpoint, `explain`, returns what the slice pooling saw: each slice's own logits (the
exam head applied to that slice's pooled features alone) and a class activation map per slice
and task (the head's weights applied to the backbone's feature map, before spatial pooling).
"""

import keras
import tensorflow as tf

SIGNATURE = [tf.TensorSpec([None, 256, 256], tf.uint8, name="slices"),
             tf.TensorSpec([None], tf.int32, name="counts")]


def explain_parts(model):
    """(feature model: inputs -> (N, h, w, C) map, the Dense head scoring pooled features, space-pool mode)."""
    features = keras.Model(model.inputs, model.get_layer("feature_map").output)
    names = {layer.name for layer in model.layers}
    head = model.get_layer("slice_logits" if "slice_logits" in names else "logits")  # see build_model(pool_on)
    space_pool = model.get_layer("space_pool")
    mode = "avgmax" if isinstance(space_pool, keras.layers.Concatenate) else (
        "max" if isinstance(space_pool, keras.layers.GlobalMaxPooling2D) else "avg")
    return features, head, mode


def slice_scores(feature_map, kernel, bias, mode):
    """Per-slice logits and CAMs from the feature map; float32 whatever the compute policy."""
    fmap = tf.cast(feature_map, tf.float32)
    kernel, bias = tf.cast(kernel, tf.float32), tf.cast(bias, tf.float32)
    channels = fmap.shape[-1]
    avg, mx = tf.reduce_mean(fmap, axis=[1, 2]), tf.reduce_max(fmap, axis=[1, 2])
    if mode == "avgmax":
        pooled, per_pixel = tf.concat([avg, mx], -1), kernel[:channels] + kernel[channels:]
    else:
        pooled, per_pixel = (avg if mode == "avg" else mx), kernel
    return pooled @ kernel + bias, tf.einsum("nhwc,ct->nhwt", fmap, per_pixel)


def export_plane(model, folder):
    archive = keras.export.ExportArchive()
    archive.track(model)
    features, head, mode = explain_parts(model)
    archive.track(features)

    @tf.function(input_signature=SIGNATURE)
    def serve(slices, counts):
        logits = tf.cast(model({"slices": slices, "counts": counts}, training=False), tf.float32)
        return {"logits": logits, "probabilities": tf.sigmoid(logits)}

    @tf.function(input_signature=SIGNATURE)
    def explain(slices, counts):
        fmap = features({"slices": slices, "counts": counts}, training=False)
        logits, cam = slice_scores(fmap, head.kernel, head.bias, mode)
        return {"slice_logits": logits, "cam": cam}

    archive.add_endpoint("serve", serve)
    archive.add_endpoint("explain", explain)
    archive.write_out(str(folder), verbose=False)
