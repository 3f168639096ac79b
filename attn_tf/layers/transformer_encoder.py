import keras
from keras import activations
from keras import initializers
from keras import ops

from attn_tf.layers.masking import check_normalizer
from attn_tf.layers.masking import get_keras_mask
from attn_tf.layers.masking import set_keras_mask
from attn_tf.layers.transformer_layer_utils import attention_sublayer
from attn_tf.layers.transformer_layer_utils import block_config
from attn_tf.layers.transformer_layer_utils import check_hidden_dim
from attn_tf.layers.transformer_layer_utils import check_positive_int
from attn_tf.layers.transformer_layer_utils import dropout_sublayer
from attn_tf.layers.transformer_layer_utils import feedforward_sublayers
from attn_tf.layers.transformer_layer_utils import feedforward_sub_block
from attn_tf.layers.transformer_layer_utils import layer_norm_sublayer
from attn_tf.layers.transformer_layer_utils import residual_sub_block


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
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.intermediate_dim = check_positive_int(
            "intermediate_dim", intermediate_dim
        )
        self.dropout = float(dropout)
        self.activation = activations.get(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.normalize_first = bool(normalize_first)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.supports_masking = True

    def build(self, inputs_shape):
        check_hidden_dim(inputs_shape, self.num_heads, "inputs", "inputs_shape")
        self.self_attention = attention_sublayer(
            self, "self_attention", inputs_shape, inputs_shape
        )
        self.self_attention_layer_norm = layer_norm_sublayer(
            self, "self_attention_layer_norm", inputs_shape
        )
        self.self_attention_dropout = dropout_sublayer(
            self, "self_attention_dropout"
        )
        self.feedforward_layer_norm = layer_norm_sublayer(
            self, "feedforward_layer_norm", inputs_shape
        )
        (
            self.feedforward_intermediate_dense,
            self.feedforward_output_dense,
        ) = feedforward_sublayers(self, inputs_shape)
        self.feedforward_dropout = dropout_sublayer(self, "feedforward_dropout")

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

        def self_attention(h):
            # Weights only when asked for: without them MultiHeadAttention
            # may take the fused keras.ops.dot_product_attention path (same
            # output).
            outputs = self.self_attention(
                h,
                h,
                query_mask=padding_mask,
                value_mask=padding_mask,
                attention_mask=attention_mask,
                use_causal_mask=use_causal_mask,
                return_attention_scores=return_attention_scores,
                attention_override=attention_override,
                training=training,
            )
            return outputs if return_attention_scores else (outputs, None)

        x, weights = residual_sub_block(
            inputs,
            self_attention,
            self.self_attention_layer_norm,
            self.self_attention_dropout,
            self.normalize_first,
            training,
        )
        x = feedforward_sub_block(self, x, training)

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
        config.update(block_config(self))
        return config
