"""Conicity of a set of hidden states, and the Diversity-LSTM penalty layer."""

import keras
from keras import ops

from attn_tf.layers.masking import get_keras_mask
from attn_tf.layers.penalty_layer import PenaltyLayer


def conicity(hidden, mask=None, epsilon=1e-8):
    """Mean cosine similarity of each hidden state with their mean (per example).

    Mohankumar et al. (2020): conicity near 1 means all hidden states point
    the same way (so attention over them can hardly matter); near 0 means they
    are spread out. Padded positions (mask False) are left out.

    Args:
        hidden: `[B, T, D]`.
        mask: optional boolean `[B, T]`.
        epsilon: guards the norms.

    Returns:
        `[B]` conicity per example (0 for an all-padding example).

    Example:

    >>> float(conicity(np.array([[[1.0, 0.0], [0.0, 1.0]]], "float32"))[0])  # doctest: +ELLIPSIS
    0.7071...
    """
    hidden = ops.cast(hidden, "float32")
    if mask is None:
        m = ops.ones(ops.shape(hidden)[:2], "float32")
    else:
        m = ops.cast(mask, "float32")
    count = ops.maximum(ops.sum(m, axis=1), 1.0)
    mean = ops.sum(hidden * m[..., None], axis=1) / count[:, None]  # [B, D]
    dot = ops.sum(hidden * mean[:, None, :], axis=-1)
    norms = ops.sqrt(ops.sum(hidden * hidden, axis=-1) + epsilon) * ops.sqrt(
        ops.sum(mean * mean, axis=-1, keepdims=True) + epsilon)
    return ops.sum(dot / norms * m, axis=1) / count


@keras.saving.register_keras_serializable(package="attn_tf")
class ConicityPenalty(PenaltyLayer):
    """Identity on a sequence that adds `weight * mean conicity` to the model loss.

    Put it after an LSTM to get the Diversity LSTM of Mohankumar et al.
    (2020): training minimises cross-entropy plus the conicity of the hidden
    states, which spreads them out so attention over them has to choose.
    The penalty is added (with `add_loss`) only in training calls; the output
    is the input, with its Keras mask passed through.

    Args:
        weight: penalty weight `lambda` (> 0).
        **kwargs: base layer arguments.

    Call arguments:
        inputs: `[B, T, D]` hidden states.
        mask: optional boolean `[B, T]` (taken from the Keras mask).
        training: Python boolean; the penalty is added only when True.

    Returns:
        `inputs`, unchanged.

    Example:

    >>> layer = ConicityPenalty(1.0)
    >>> layer(np.random.rand(2, 5, 4)).shape
    TensorShape([2, 5, 4])
    """

    def call(self, inputs, mask=None, training=None):
        if mask is None:
            mask = get_keras_mask(inputs)
        if training:
            self.add_loss(self.weight * ops.mean(conicity(inputs, mask)))
        return inputs

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape
