"""Word-level tying objective (Tutek & Snajder, 2020)."""

import keras
from keras import ops

from attn_tf.layers.masking import get_keras_mask
from attn_tf.layers.penalty_layer import PenaltyLayer


@keras.saving.register_keras_serializable(package="attn_tf")
class WordTyingPenalty(PenaltyLayer):
    """Identity on hidden states that ties each one to its input word's embedding.

    "Staying True to Your Word: (How) Can Attention Become Explanation?"
    (Tutek & Snajder, RepL4NLP 2020): a word-level objective keeps the hidden
    state `h_t` of a recurrent encoder close to the embedding `e_t` of the
    word it sits on, so attention over hidden states is attention over words.
    Here the BiLSTM state (width `2 * units`) is mapped to the embedding width
    by a learned linear map `W` (the weight `projection`), and the penalty is
    `weight * mean_t (1 - cos(W h_t, e_t))` over real tokens (a cosine, so the
    weight does not depend on the scale of the embeddings, which start near
    0), with the embeddings held constant (`stop_gradient`: they must not
    move to make the penalty small). Added with `add_loss` in training calls
    only.

    Args:
        weight: penalty weight (> 0).
        **kwargs: base layer arguments.

    Call arguments:
        inputs: list `[hidden [B, T, H], embeddings [B, T, D]]`.
        mask: optional; the Keras mask of `hidden` is used.
        training: Python boolean; the penalty is added only when True.

    Returns:
        `hidden`, unchanged (with its Keras mask).

    Example:

    >>> layer = WordTyingPenalty(0.5)
    >>> layer([np.random.rand(2, 5, 8), np.random.rand(2, 5, 3)]).shape
    TensorShape([2, 5, 8])
    """

    def build(self, input_shape):
        hidden_shape, emb_shape = input_shape
        self.projection = self.add_weight(
            name="projection", shape=(hidden_shape[-1], emb_shape[-1]), initializer="glorot_uniform")

    def penalty(self, hidden, embeddings, mask=None):
        """`mean over real tokens of 1 - cos(W h_t, e_t)` (a scalar in [0, 2])."""
        pred = ops.matmul(ops.cast(hidden, "float32"), ops.cast(self.projection, "float32"))
        target = ops.stop_gradient(ops.cast(embeddings, "float32"))
        cos = ops.sum(pred * target, axis=-1) / (
            ops.sqrt(ops.sum(pred * pred, axis=-1) + 1e-8) * ops.sqrt(ops.sum(target * target, axis=-1) + 1e-8))
        err = 1.0 - cos
        if mask is None:
            return ops.mean(err)
        m = ops.cast(mask, "float32")
        return ops.sum(err * m) / ops.maximum(ops.sum(m), 1.0)

    def call(self, inputs, mask=None, training=None):
        hidden, embeddings = inputs
        hmask = get_keras_mask(hidden)
        if hmask is None and isinstance(mask, (list, tuple)):
            hmask = mask[0]
        if training:
            self.add_loss(self.weight * self.penalty(hidden, embeddings, hmask))
        return hidden

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            return mask[0]
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape[0]
