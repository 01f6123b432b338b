"""Freeze a trained plane model into a SavedModel that predict can run with no model code.

The signature is flat slices plus per-exam slice counts: `model.export()` would silently turn a
ragged input into a dense one, and `input_signature` rejects a RaggedTensorSpec.
"""

import keras
import tensorflow as tf


def export_plane(model, folder):
    archive = keras.export.ExportArchive()
    archive.track(model)

    @tf.function(input_signature=[tf.TensorSpec([None, 256, 256], tf.uint8, name="slices"),
                                  tf.TensorSpec([None], tf.int32, name="counts")])
    def serve(slices, counts):
        logits = tf.cast(model({"slices": slices, "counts": counts}, training=False), tf.float32)
        return {"logits": logits, "probabilities": tf.sigmoid(logits)}

    archive.add_endpoint("serve", serve)
    archive.write_out(str(folder), verbose=False)
