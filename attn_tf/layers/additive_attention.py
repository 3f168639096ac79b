import keras
from keras import initializers
from keras import ops

from attn_tf.layers.base_attention import BaseAttention


@keras.saving.register_keras_serializable(package="attn_tf")
class AdditiveAttention(BaseAttention):
    """Additive (Bahdanau) attention with learned projections.

    The score of query position `t` and key position `s` is the full
    [Bahdanau et al., 2015](https://arxiv.org/abs/1409.0473) score

    `score[t, s] = v^T tanh(W1 q_t + W2 k_s + b)`

    with learned `W1` (`query_dense`, no bias), `W2` and `b` (`key_dense`) and
    `v` (`v`). Unlike `keras.layers.AdditiveAttention` (which computes
    `sum(scale * tanh(q + k))` on the raw inputs), the query and the key are
    projected to `units` dimensions, so they may have different widths.

    The weights are `masked_softmax(score)` over the key axis (computed in
    float32), the output is the weighted sum of the values. Padded keys (and
    padded queries) get exactly zero weight; a fully masked row gives zero
    weights and a zero output.

    Args:
        units: width of the hidden layer of the score (the size of `v`).
        use_bias: whether `W2` has a bias `b`. Defaults to `True`.
        dropout: dropout rate on the attention weights used for the output
            (training only). Defaults to `0.0`.
        normalizer: how scores become weights: `"softmax"` (default),
            `"sparsemax"` or `"entmax15"` (sparse: low scores get exactly
            zero weight; see `attn_tf.layers.masking.masked_normalize`).
        kernel_initializer: initializer of `W1`, `W2` and `v`.
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

    >>> layer = AdditiveAttention(units=16)
    >>> query = np.random.rand(2, 5, 8)
    >>> value = np.random.rand(2, 7, 4)
    >>> output, weights = layer(query, value, return_attention_scores=True)
    >>> output.shape, weights.shape
    (TensorShape([2, 5, 4]), TensorShape([2, 5, 7]))
    """

    def __init__(
        self,
        units,
        use_bias=True,
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        normalizer="softmax",
        **kwargs,
    ):
        super().__init__(dropout=dropout, normalizer=normalizer, **kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(
                f"`units` must be a positive integer. Received: units={units}"
            )
        self.units = units
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)

    def _initializer(self):
        # A fresh instance per weight, so seeded initializers do not repeat.
        return self.kernel_initializer.__class__.from_config(
            self.kernel_initializer.get_config()
        )

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        self.query_dense = keras.layers.Dense(
            self.units,
            use_bias=False,
            kernel_initializer=self._initializer(),
            dtype=self.dtype_policy,
            name="query_dense",
        )
        self.query_dense.build(query_shape)
        self.key_dense = keras.layers.Dense(
            self.units,
            use_bias=self.use_bias,
            kernel_initializer=self._initializer(),
            dtype=self.dtype_policy,
            name="key_dense",
        )
        self.key_dense.build(key_shape)
        self.v = self.add_weight(
            name="v",
            shape=(self.units,),
            initializer=self._initializer(),
        )

    def _score(self, query, key):
        q = ops.expand_dims(self.query_dense(query), 2)  # [B, T, 1, U]
        k = ops.expand_dims(self.key_dense(key), 1)  # [B, 1, S, U]
        hidden = ops.tanh(q + k)  # [B, T, S, U]
        return ops.einsum("btsu,u->bts", hidden, ops.cast(self.v, hidden.dtype))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
