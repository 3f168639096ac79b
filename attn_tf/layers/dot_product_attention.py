import math

import keras
from keras import initializers
from keras import ops

from attn_tf.layers.base_attention import BaseAttention

SCORES = ("dot", "general", "scaled")


@keras.saving.register_keras_serializable(package="attn_tf")
class DotProductAttention(BaseAttention):
    """Multiplicative (Luong) attention: dot, general or scaled dot scores.

    Scores of query position `t` and key position `s`
    ([Luong et al., 2015](https://arxiv.org/abs/1508.04025);
    [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)):

    * `"dot"`: `q_t . k_s` (requires `Dq == Dk`);
    * `"general"`: `q_t W k_s` with a learned `W` of shape `[Dq, Dk]`
      (the weight `kernel`);
    * `"scaled"`: `q_t . k_s / sqrt(Dk)` (requires `Dq == Dk`).

    The weights are `masked_softmax(score)` over the key axis (computed in
    float32), the output is the weighted sum of the values. Padded keys (and
    padded queries) get exactly zero weight; a fully masked row gives zero
    weights and a zero output.

    Args:
        score: one of `"dot"`, `"general"`, `"scaled"`. Defaults to `"dot"`.
        dropout: dropout rate on the attention weights used for the output
            (training only). Defaults to `0.0`.
        normalizer: how scores become weights: `"softmax"` (default),
            `"sparsemax"` or `"entmax15"` (sparse: low scores get exactly
            zero weight; see `attn_tf.layers.masking.masked_normalize`).
        kernel_initializer: initializer of `W` (`"general"` only).
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        query: query tensor `[B, T, Dq]`.
        value: value tensor `[B, S, Dv]`.
        key: optional key tensor `[B, S, Dk]`; defaults to `value`.
        query_mask: optional boolean `[B, T]`; taken from the Keras mask of
            `query` when not given. Padded query rows get zero weights.
        value_mask: optional boolean `[B, S]`; taken from the Keras mask of
            `value` when not given.
        key_mask: optional boolean `[B, S]`; taken from the Keras mask of
            `key` when not given.
        attention_mask: optional boolean mask broadcastable to `[B, T, S]`;
            `True` means "may attend".
        use_causal_mask: if `True`, query `t` cannot attend to keys `s > t`.
        return_attention_scores: if `True`, return `(output, weights)`.
        attention_override: optional tensor `[B, T, S]` used as the attention
            distribution instead of the softmax of the scores (used as given,
            not renormalised; masked positions are still zeroed).
        training: Python boolean, whether dropout is active.

    Returns:
        output: `[B, T, Dv]`, carrying the query mask as its Keras mask.
        weights: (only with `return_attention_scores=True`) `[B, T, S]`
            attention weights, post-softmax and pre-dropout (or the masked
            override).

    Example:

    >>> layer = DotProductAttention(score="scaled")
    >>> query = np.random.rand(2, 5, 8)
    >>> value = np.random.rand(2, 7, 8)
    >>> output, weights = layer(query, value, return_attention_scores=True)
    >>> output.shape, weights.shape
    (TensorShape([2, 5, 8]), TensorShape([2, 5, 7]))
    """

    def __init__(
        self,
        score="dot",
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        normalizer="softmax",
        **kwargs,
    ):
        super().__init__(dropout=dropout, normalizer=normalizer, **kwargs)
        if score not in SCORES:
            raise ValueError(
                f"`score` must be one of {', '.join(map(repr, SCORES))}. "
                f"Received: score={score!r}"
            )
        self.score = score
        self.kernel_initializer = initializers.get(kernel_initializer)

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        q_dim, k_dim = query_shape[-1], key_shape[-1]
        if k_dim is None:
            raise ValueError(
                "DotProductAttention needs a known last dimension of the key. "
                f"Received: key_shape={tuple(key_shape)}"
            )
        self._scale = 1.0 / math.sqrt(float(k_dim))
        if self.score == "general":
            self.kernel = self.add_weight(
                name="kernel",
                shape=(q_dim, k_dim),
                initializer=self.kernel_initializer,
            )
        elif q_dim is not None and k_dim is not None and q_dim != k_dim:
            raise ValueError(
                f"score={self.score!r} needs query and key of the same last "
                f"dimension (use score='general' otherwise). Received: "
                f"query_shape={tuple(query_shape)}, "
                f"key_shape={tuple(key_shape)}"
            )

    def _score(self, query, key):
        if self.score == "general":
            query = ops.matmul(query, ops.cast(self.kernel, query.dtype))
        elif self.score == "scaled":
            query = ops.multiply(query, ops.cast(self._scale, query.dtype))
        return ops.einsum("btd,bsd->bts", query, ops.cast(key, query.dtype))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "score": self.score,
                "kernel_initializer": initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
