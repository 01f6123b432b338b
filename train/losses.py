"""Binary cross-entropy with a positive weight per task: ACL tears are 18 % of exams, abnormal 81 %."""

import keras
import numpy as np
from keras import ops


def positive_weights(labels):
    """neg/pos per task, so each task's positives and negatives weigh the same in the loss."""
    labels = np.asarray(labels, np.float64)
    pos = labels.sum(axis=0)
    return ((len(labels) - pos) / np.maximum(pos, 1)).tolist()


@keras.saving.register_keras_serializable("mrnet")
class WeightedBCE(keras.losses.Loss):
    def __init__(self, pos_weight, name="weighted_bce", **kw):
        super().__init__(name=name, **kw)
        self.pos_weight = [float(w) for w in pos_weight]

    def call(self, y_true, logits):
        y_true = ops.cast(y_true, logits.dtype)
        w = ops.convert_to_tensor(self.pos_weight, dtype=logits.dtype)
        per_task = -(w * y_true * ops.log_sigmoid(logits) + (1 - y_true) * ops.log_sigmoid(-logits))
        return ops.mean(per_task, axis=-1)

    def get_config(self):
        return {**super().get_config(), "pos_weight": self.pos_weight}
