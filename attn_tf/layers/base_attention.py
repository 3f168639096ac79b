"""Shared machinery of the single-head query/value attention layers."""

import keras
from keras import ops

from attn_tf.layers.masking import attention_weights
from attn_tf.layers.masking import check_normalizer
from attn_tf.layers.masking import compute_attention_mask
from attn_tf.layers.masking import get_keras_mask
from attn_tf.layers.masking import set_keras_mask


class BaseAttention(keras.layers.Layer):
    """Base class of `AdditiveAttention` and `DotProductAttention`.

    Subclasses implement `_score(query, key)` returning raw scores `[B, T, S]`;
    this class handles masks, the float32 masked softmax, the external
    attention override, dropout, the weighted sum of the values, masks on the
    output and symbolic shapes.

    Args:
        dropout: float in `[0, 1)`, dropout rate on the attention weights used
            for the output (training only; returned weights are pre-dropout).
        normalizer: how scores become weights: `"softmax"` (default),
            `"sparsemax"` or `"entmax15"` (sparse: low scores get exactly
            zero weight; see `attn_tf.layers.masking.masked_normalize`).
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).
    """

    def __init__(self, dropout=0.0, normalizer="softmax", **kwargs):
        super().__init__(**kwargs)
        self.normalizer = check_normalizer(normalizer)
        dropout = float(dropout)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"`dropout` must be in [0, 1). Received: dropout={dropout}"
            )
        self.dropout = dropout
        self.supports_masking = True
        self._dropout_layer = keras.layers.Dropout(
            rate=self.dropout, dtype=self.dtype_policy, name="attention_dropout"
        )

    def _score(self, query, key):
        raise NotImplementedError

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        attention_override=None,
        training=None,
    ):
        key_is_value = key is None
        if key_is_value:
            key = value
        if query_mask is None:
            query_mask = get_keras_mask(query)
        if value_mask is None:
            value_mask = get_keras_mask(value)
        if key_mask is None and not key_is_value:
            key_mask = get_keras_mask(key)

        mask = compute_attention_mask(
            query,
            value,
            query_mask=query_mask,
            value_mask=value_mask,
            key_mask=key_mask,
            attention_mask=attention_mask,
            use_causal_mask=use_causal_mask,
        )
        weights = attention_weights(
            lambda: self._score(query, key),
            mask=mask,
            attention_override=attention_override,
            dtype=self.compute_dtype,
            shape=(
                ops.shape(query)[0],
                ops.shape(query)[1],
                ops.shape(value)[1],
            ),
            normalizer=self.normalizer,
        )
        used = weights
        if self.dropout > 0.0:
            used = self._dropout_layer(weights, training=training)
        output = ops.matmul(used, ops.cast(value, used.dtype))
        if query_mask is not None:
            set_keras_mask(output, ops.cast(query_mask, "bool"))
        if return_attention_scores:
            return output, weights
        return output

    def compute_mask(self, inputs, previous_mask=None):
        # The output mask is the query mask (the first argument's Keras mask).
        return previous_mask

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        return tuple(query_shape)[:-1] + (tuple(value_shape)[-1],)

    def compute_output_spec(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        attention_override=None,
        training=None,
    ):
        output = keras.KerasTensor(
            self.compute_output_shape(query.shape, value.shape),
            dtype=self.compute_dtype,
        )
        if not return_attention_scores:
            return output
        weights_shape = (query.shape[0], query.shape[1], value.shape[1])
        return output, keras.KerasTensor(weights_shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"dropout": self.dropout, "normalizer": self.normalizer})
        return config
