"""Masked token loss and accuracy for teacher-forced seq2seq training.

Keras 3 attaches padding masks to outputs and applies them inside its own loss
reduction in ways that have changed between releases (keras#20320).  These
functions take the mask from the targets themselves (id 0 = padding) and
return already-reduced values, so no Keras mask is involved.
"""

import keras
from keras import ops


def masked_sparse_crossentropy(y_true, y_pred, pad_id=0, label_smoothing=0.0):
    """Mean cross-entropy over the non-padding positions of `y_true` [B, T] (logits `y_pred` [B, T, V])."""
    y_true = ops.cast(y_true, "int32")
    mask = ops.cast(ops.not_equal(y_true, pad_id), "float32")
    logits = ops.cast(y_pred, "float32")
    if label_smoothing:
        v = ops.shape(logits)[-1]
        onehot = ops.one_hot(y_true, v)
        onehot = onehot * (1.0 - label_smoothing) + label_smoothing / ops.cast(v, "float32")
        loss = ops.categorical_crossentropy(onehot, logits, from_logits=True)
    else:
        loss = ops.sparse_categorical_crossentropy(y_true, logits, from_logits=True)
    return ops.sum(loss * mask) / ops.maximum(ops.sum(mask), 1.0)


class MaskedLoss(keras.losses.Loss):
    """`masked_sparse_crossentropy` as a Keras loss (returns a scalar)."""

    def __init__(self, pad_id=0, label_smoothing=0.0, name="masked_loss", **kwargs):
        super().__init__(name=name, reduction="sum", **kwargs)
        self.pad_id = pad_id
        self.label_smoothing = float(label_smoothing)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # Keras's Loss.__call__ would apply a Keras mask carried by y_pred (the
        # Transformer's embedding mask reaches its logits) to this already
        # reduced scalar: with reduction "sum" that multiplies the loss by the
        # number of target tokens. The targets are the mask here.
        if sample_weight is not None:
            raise ValueError("MaskedLoss does not take sample weights: padding (id %d) is the mask" % self.pad_id)
        return self.call(y_true, y_pred)

    def call(self, y_true, y_pred):
        return masked_sparse_crossentropy(y_true, y_pred, self.pad_id, self.label_smoothing)

    def get_config(self):
        return {"name": self.name, "pad_id": self.pad_id, "label_smoothing": self.label_smoothing}


class MaskedAccuracy(keras.metrics.Metric):
    """Token accuracy over the non-padding positions of `y_true` [B, T]."""

    def __init__(self, pad_id=0, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pad_id = pad_id
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        mask = ops.cast(ops.not_equal(y_true, self.pad_id), "float32")
        hit = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), "float32")
        self.correct.assign_add(ops.sum(hit * mask))
        self.total.assign_add(ops.sum(mask))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)

    def get_config(self):
        return {"name": self.name, "pad_id": self.pad_id}
