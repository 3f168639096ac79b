import keras
from keras import initializers
from keras import ops

from attn_tf.layers.masking import attention_weights
from attn_tf.layers.masking import check_normalizer
from attn_tf.layers.masking import get_keras_mask


@keras.saving.register_keras_serializable(package="attn_tf")
class AttentionPooling(keras.layers.Layer):
    """Attention pooling of a sequence with a learned query vector.

    The classic classifier attention of
    [Yang et al., 2016](https://aclanthology.org/N16-1174/) (Bahdanau-style
    scores against a learned context vector `v`):

    `score_t = v^T tanh(W h_t + b)`, `a = masked_softmax(score)`,
    `output = sum_t a_t h_t`.

    `W` and `b` are the weights of the Dense sublayer `projection`, `v` is the
    weight `v`. The softmax runs in float32 and only over valid (unpadded)
    positions; padded positions get exactly zero weight, and a fully padded
    sequence gives zero weights and a zero output.

    Args:
        units: width of the hidden layer of the score. Defaults to `None`
            (the input feature width `D`).
        dropout: dropout rate on the attention weights used for the output
            (training only). Defaults to `0.0`.
        kernel_initializer: initializer of `W` and `v`.
        normalizer: how scores become weights: `"softmax"` (default),
            `"sparsemax"` or `"entmax15"` (sparse: low scores get exactly
            zero weight; see `attn_tf.layers.masking.masked_normalize`).
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: sequence `[B, T, D]`.
        mask: optional boolean `[B, T]`, `True` for real tokens; taken from
            the Keras mask of `inputs` when not given.
        return_attention_scores: if `True`, return `(output, weights)`.
        attention_override: optional tensor `[B, T]` used as the attention
            distribution instead of the softmax of the scores (used as given,
            not renormalised; masked positions are still zeroed).
        training: Python boolean, whether dropout is active.

    Returns:
        output: `[B, D]` (no Keras mask).
        weights: (only with `return_attention_scores=True`) `[B, T]`,
            post-softmax and pre-dropout (or the masked override).

    Example:

    >>> pool = AttentionPooling(units=32)
    >>> x = np.random.rand(2, 6, 16)
    >>> output, weights = pool(x, return_attention_scores=True)
    >>> output.shape, weights.shape
    (TensorShape([2, 16]), TensorShape([2, 6]))
    """

    def __init__(
        self,
        units=None,
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        normalizer="softmax",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.normalizer = check_normalizer(normalizer)
        if units is not None and (not isinstance(units, int) or units <= 0):
            raise ValueError(
                "`units` must be a positive integer or None. "
                f"Received: units={units}"
            )
        dropout = float(dropout)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"`dropout` must be in [0, 1). Received: dropout={dropout}"
            )
        self.units = units
        self.dropout = dropout
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.supports_masking = True
        self._dropout_layer = keras.layers.Dropout(
            rate=self.dropout, dtype=self.dtype_policy, name="attention_dropout"
        )

    def _initializer(self):
        return self.kernel_initializer.__class__.from_config(
            self.kernel_initializer.get_config()
        )

    def build(self, inputs_shape):
        units = self.units if self.units is not None else inputs_shape[-1]
        if units is None:
            raise ValueError(
                "AttentionPooling needs a known last input dimension when "
                f"`units` is None. Received: inputs_shape={inputs_shape}"
            )
        self.projection = keras.layers.Dense(
            units,
            activation="tanh",
            kernel_initializer=self._initializer(),
            dtype=self.dtype_policy,
            name="projection",
        )
        self.projection.build(inputs_shape)
        self.v = self.add_weight(
            name="v", shape=(units,), initializer=self._initializer()
        )

    def _score(self, inputs):
        hidden = self.projection(inputs)  # [B, T, U]
        return ops.einsum("btu,u->bt", hidden, ops.cast(self.v, hidden.dtype))

    def call(
        self,
        inputs,
        mask=None,
        return_attention_scores=False,
        attention_override=None,
        training=None,
    ):
        if mask is None:
            mask = get_keras_mask(inputs)
        if mask is not None:
            mask = ops.cast(mask, "bool")
        weights = attention_weights(
            lambda: self._score(inputs),
            mask=mask,
            attention_override=attention_override,
            dtype=self.compute_dtype,
            shape=ops.shape(inputs)[:2],
            normalizer=self.normalizer,
        )
        used = weights
        if self.dropout > 0.0:
            used = self._dropout_layer(weights, training=training)
        output = ops.einsum("bt,btd->bd", used, ops.cast(inputs, used.dtype))
        if return_attention_scores:
            return output, weights
        return output

    def compute_mask(self, inputs, previous_mask=None):
        return None

    def compute_output_shape(self, inputs_shape):
        return (inputs_shape[0], inputs_shape[-1])

    def compute_output_spec(
        self,
        inputs,
        mask=None,
        return_attention_scores=False,
        attention_override=None,
        training=None,
    ):
        output = keras.KerasTensor(
            self.compute_output_shape(inputs.shape), dtype=self.compute_dtype
        )
        if not return_attention_scores:
            return output
        weights = keras.KerasTensor(inputs.shape[:2], dtype=self.compute_dtype)
        return output, weights

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "dropout": self.dropout,
                "normalizer": self.normalizer,
                "kernel_initializer": initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
