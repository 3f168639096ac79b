import keras
from keras import activations
from keras import initializers
from keras import ops

from attn_tf.layers.masking import check_normalizer
from attn_tf.layers.masking import get_keras_mask
from attn_tf.layers.masking import set_keras_mask
from attn_tf.layers.multi_head_attention import MultiHeadAttention


@keras.saving.register_keras_serializable(package="attn_tf")
class TransformerEncoder(keras.layers.Layer):
    """Transformer encoder block that returns and accepts its attention.

    The block of [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762), as
    in keras-hub's `TransformerEncoder`: self-attention (`attn_tf`
    `MultiHeadAttention`, `key_dim = hidden_dim // num_heads`) + dropout +
    residual + LayerNorm, then feed-forward (`Dense(intermediate_dim,
    activation)`, `Dense(hidden_dim)`) + dropout + residual + LayerNorm.
    With `normalize_first=True` the LayerNorms are applied to the input of
    each sub-block instead (pre-norm).

    Sublayers: `self_attention`, `self_attention_dropout`,
    `self_attention_layer_norm`, `feedforward_intermediate_dense`,
    `feedforward_output_dense`, `feedforward_dropout`,
    `feedforward_layer_norm`.

    Args:
        num_heads: number of attention heads `H` (must divide the hidden
            size of the inputs).
        intermediate_dim: width of the feed-forward hidden layer.
        dropout: dropout rate of the attention weights and of the two
            residual branches. Defaults to `0.1`.
        activation: activation of the feed-forward hidden layer.
            Defaults to `"relu"`.
        layer_norm_epsilon: epsilon of the LayerNorms. Defaults to `1e-5`.
        normalize_first: pre-norm if `True`, post-norm (default) otherwise.
        kernel_initializer: initializer of all kernels.
        bias_initializer: initializer of all biases.
        normalizer: how the scores of every attention sublayer become
            weights: `"softmax"` (default), `"sparsemax"` or `"entmax15"`
            (sparse: low scores get exactly zero weight; see
            `attn_tf.layers.masking.masked_normalize`).
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: sequence `[B, T, D]`.
        padding_mask: optional boolean `[B, T]`, `True` for real tokens;
            taken from the Keras mask of `inputs` when not given. Padded keys
            get zero weight and padded query rows all-zero weights.
        attention_mask: optional boolean `[B, T, T]` (or broadcastable),
            `True` means "may attend"; combined with the padding mask.
        use_causal_mask: if `True`, position `t` cannot attend to `s > t`.
        return_attention_scores: if `True`, return `(outputs, weights)`.
        attention_override: optional `[B, H, T, T]` (or broadcastable)
            attention distribution used instead of the computed one (see
            `attn_tf.layers.MultiHeadAttention`).
        training: Python boolean, whether dropout is active.

    Returns:
        outputs: `[B, T, D]`, carrying the padding mask as its Keras mask.
        weights: (only with `return_attention_scores=True`) `[B, H, T, T]`
            self-attention weights, post-softmax and pre-dropout.

    Example:

    >>> encoder = TransformerEncoder(num_heads=2, intermediate_dim=32)
    >>> x = np.random.rand(2, 6, 16)
    >>> outputs, weights = encoder(x, return_attention_scores=True)
    >>> outputs.shape, weights.shape
    (TensorShape([2, 6, 16]), TensorShape([2, 2, 6, 6]))
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        dropout=0.1,
        activation="relu",
        layer_norm_epsilon=1e-5,
        normalize_first=False,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        normalizer="softmax",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.normalizer = check_normalizer(normalizer)
        if not isinstance(num_heads, int) or num_heads <= 0:
            raise ValueError(
                "`num_heads` must be a positive integer. "
                f"Received: num_heads={num_heads}"
            )
        if not isinstance(intermediate_dim, int) or intermediate_dim <= 0:
            raise ValueError(
                "`intermediate_dim` must be a positive integer. "
                f"Received: intermediate_dim={intermediate_dim}"
            )
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = float(dropout)
        self.activation = activations.get(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.normalize_first = bool(normalize_first)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.supports_masking = True

    def _init_kwargs(self):
        return dict(
            kernel_initializer=self.kernel_initializer.__class__.from_config(
                self.kernel_initializer.get_config()
            ),
            bias_initializer=self.bias_initializer.__class__.from_config(
                self.bias_initializer.get_config()
            ),
        )

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        if hidden_dim is None or hidden_dim % self.num_heads:
            raise ValueError(
                "The hidden size of the inputs must be known and divisible by "
                f"num_heads={self.num_heads}. Received: "
                f"inputs_shape={tuple(inputs_shape)}"
            )
        self.self_attention = MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=hidden_dim // self.num_heads,
            dropout=self.dropout,
            normalizer=self.normalizer,
            dtype=self.dtype_policy,
            name="self_attention",
            **self._init_kwargs(),
        )
        self.self_attention.build(inputs_shape, inputs_shape)
        self.self_attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="self_attention_layer_norm",
        )
        self.self_attention_layer_norm.build(inputs_shape)
        self.self_attention_dropout = keras.layers.Dropout(
            rate=self.dropout,
            dtype=self.dtype_policy,
            name="self_attention_dropout",
        )
        self.feedforward_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="feedforward_layer_norm",
        )
        self.feedforward_layer_norm.build(inputs_shape)
        self.feedforward_intermediate_dense = keras.layers.Dense(
            self.intermediate_dim,
            activation=self.activation,
            dtype=self.dtype_policy,
            name="feedforward_intermediate_dense",
            **self._init_kwargs(),
        )
        self.feedforward_intermediate_dense.build(inputs_shape)
        self.feedforward_output_dense = keras.layers.Dense(
            hidden_dim,
            dtype=self.dtype_policy,
            name="feedforward_output_dense",
            **self._init_kwargs(),
        )
        self.feedforward_output_dense.build(
            tuple(inputs_shape)[:-1] + (self.intermediate_dim,)
        )
        self.feedforward_dropout = keras.layers.Dropout(
            rate=self.dropout,
            dtype=self.dtype_policy,
            name="feedforward_dropout",
        )

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        attention_override=None,
        training=None,
    ):
        if padding_mask is None:
            padding_mask = get_keras_mask(inputs)
        if padding_mask is not None:
            padding_mask = ops.cast(padding_mask, "bool")

        x = inputs
        residual = x
        if self.normalize_first:
            x = self.self_attention_layer_norm(x)
        # Weights only when asked for: without them MultiHeadAttention may
        # take the fused keras.ops.dot_product_attention path (same output).
        x = self.self_attention(
            x,
            x,
            query_mask=padding_mask,
            value_mask=padding_mask,
            attention_mask=attention_mask,
            use_causal_mask=use_causal_mask,
            return_attention_scores=return_attention_scores,
            attention_override=attention_override,
            training=training,
        )
        if return_attention_scores:
            x, weights = x
        x = self.self_attention_dropout(x, training=training)
        x = x + residual
        if not self.normalize_first:
            x = self.self_attention_layer_norm(x)

        residual = x
        if self.normalize_first:
            x = self.feedforward_layer_norm(x)
        x = self.feedforward_intermediate_dense(x)
        x = self.feedforward_output_dense(x)
        x = self.feedforward_dropout(x, training=training)
        x = x + residual
        if not self.normalize_first:
            x = self.feedforward_layer_norm(x)

        if padding_mask is not None:
            set_keras_mask(x, padding_mask)
        if return_attention_scores:
            return x, weights
        return x

    def compute_mask(self, inputs, previous_mask=None):
        return previous_mask

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape)

    def compute_output_spec(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        attention_override=None,
        training=None,
    ):
        output = keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return output
        b, t = inputs.shape[0], inputs.shape[1]
        weights = keras.KerasTensor(
            (b, self.num_heads, t, t), dtype=self.compute_dtype
        )
        return output, weights

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "activation": activations.serialize(self.activation),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "normalize_first": self.normalize_first,
                "normalizer": self.normalizer,
                "kernel_initializer": initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": initializers.serialize(
                    self.bias_initializer
                ),
            }
        )
        return config
