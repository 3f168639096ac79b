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
class TransformerDecoder(keras.layers.Layer):
    """Transformer decoder block that returns and accepts both attentions.

    The decoder block of [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762)
    (as keras-hub's `TransformerDecoder`): causal self-attention + dropout +
    residual + LayerNorm, cross-attention to the encoder outputs + dropout +
    residual + LayerNorm, feed-forward + dropout + residual + LayerNorm
    (post-norm; `normalize_first=True` gives pre-norm). Both attentions are
    `attn_tf.layers.MultiHeadAttention` with `key_dim = hidden_dim //
    num_heads`, so both can return their weights and both can be overridden.

    Sublayers: `self_attention`, `self_attention_dropout`,
    `self_attention_layer_norm`, `cross_attention`, `cross_attention_dropout`,
    `cross_attention_layer_norm`, `feedforward_intermediate_dense`,
    `feedforward_output_dense`, `feedforward_dropout`,
    `feedforward_layer_norm`.

    Args:
        num_heads: number of attention heads `H` (must divide the hidden
            size of the decoder inputs).
        intermediate_dim: width of the feed-forward hidden layer.
        dropout: dropout rate of the attention weights and of the residual
            branches. Defaults to `0.1`.
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
        decoder_sequence: decoder inputs `[B, T, D]`.
        encoder_sequence: encoder outputs `[B, S, De]`.
        decoder_padding_mask: optional boolean `[B, T]`; taken from the Keras
            mask of `decoder_sequence` when not given.
        encoder_padding_mask: optional boolean `[B, S]`; taken from the Keras
            mask of `encoder_sequence` when not given.
        return_attention_scores: if `True`, return
            `(outputs, self_weights, cross_weights)`.
        self_attention_override: optional `[B, H, T, T]` distribution used
            instead of the causal self-attention (masked positions, including
            the future, are still zeroed).
        cross_attention_override: optional `[B, H, T, S]` distribution used
            instead of the cross-attention (masked positions still zeroed).
        training: Python boolean, whether dropout is active.

    Returns:
        outputs: `[B, T, D]`, carrying the decoder padding mask.
        self_weights: (only with `return_attention_scores=True`)
            `[B, H, T, T]`, zero above the diagonal.
        cross_weights: (only with `return_attention_scores=True`)
            `[B, H, T, S]`.

    Example:

    >>> decoder = TransformerDecoder(num_heads=2, intermediate_dim=32)
    >>> target = np.random.rand(2, 4, 16)
    >>> source = np.random.rand(2, 6, 16)
    >>> outputs, self_w, cross_w = decoder(
    ...     target, source, return_attention_scores=True)
    >>> outputs.shape, self_w.shape, cross_w.shape
    (TensorShape([2, 4, 16]), TensorShape([2, 2, 4, 4]), TensorShape([2, 2, 4, 6]))
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

    def build(self, decoder_sequence_shape, encoder_sequence_shape):
        check_hidden_dim(
            decoder_sequence_shape,
            self.num_heads,
            "decoder inputs",
            "decoder_sequence_shape",
        )
        self.self_attention = attention_sublayer(
            self,
            "self_attention",
            decoder_sequence_shape,
            decoder_sequence_shape,
        )
        self.self_attention_dropout = dropout_sublayer(
            self, "self_attention_dropout"
        )
        self.self_attention_layer_norm = layer_norm_sublayer(
            self, "self_attention_layer_norm", decoder_sequence_shape
        )
        self.cross_attention = attention_sublayer(
            self,
            "cross_attention",
            decoder_sequence_shape,
            encoder_sequence_shape,
        )
        self.cross_attention_dropout = dropout_sublayer(
            self, "cross_attention_dropout"
        )
        self.cross_attention_layer_norm = layer_norm_sublayer(
            self, "cross_attention_layer_norm", decoder_sequence_shape
        )
        (
            self.feedforward_intermediate_dense,
            self.feedforward_output_dense,
        ) = feedforward_sublayers(self, decoder_sequence_shape)
        self.feedforward_dropout = dropout_sublayer(self, "feedforward_dropout")
        self.feedforward_layer_norm = layer_norm_sublayer(
            self, "feedforward_layer_norm", decoder_sequence_shape
        )

    def call(
        self,
        decoder_sequence,
        encoder_sequence,
        decoder_padding_mask=None,
        encoder_padding_mask=None,
        return_attention_scores=False,
        self_attention_override=None,
        cross_attention_override=None,
        training=None,
    ):
        if decoder_padding_mask is None:
            decoder_padding_mask = get_keras_mask(decoder_sequence)
        if encoder_padding_mask is None:
            encoder_padding_mask = get_keras_mask(encoder_sequence)
        if decoder_padding_mask is not None:
            decoder_padding_mask = ops.cast(decoder_padding_mask, "bool")
        if encoder_padding_mask is not None:
            encoder_padding_mask = ops.cast(encoder_padding_mask, "bool")

        x, self_weights = residual_sub_block(
            decoder_sequence,
            lambda h: self.self_attention(
                h,
                h,
                query_mask=decoder_padding_mask,
                value_mask=decoder_padding_mask,
                use_causal_mask=True,
                return_attention_scores=True,
                attention_override=self_attention_override,
                training=training,
            ),
            self.self_attention_layer_norm,
            self.self_attention_dropout,
            self.normalize_first,
            training,
        )
        x, cross_weights = residual_sub_block(
            x,
            lambda h: self.cross_attention(
                h,
                encoder_sequence,
                query_mask=decoder_padding_mask,
                value_mask=encoder_padding_mask,
                return_attention_scores=True,
                attention_override=cross_attention_override,
                training=training,
            ),
            self.cross_attention_layer_norm,
            self.cross_attention_dropout,
            self.normalize_first,
            training,
        )
        x = feedforward_sub_block(self, x, training)
        if decoder_padding_mask is not None:
            set_keras_mask(x, decoder_padding_mask)
        if return_attention_scores:
            return x, self_weights, cross_weights
        return x

    def compute_mask(self, inputs, previous_mask=None):
        return previous_mask

    def compute_output_shape(
        self, decoder_sequence_shape, encoder_sequence_shape
    ):
        return tuple(decoder_sequence_shape)

    def compute_output_spec(
        self,
        decoder_sequence,
        encoder_sequence,
        decoder_padding_mask=None,
        encoder_padding_mask=None,
        return_attention_scores=False,
        self_attention_override=None,
        cross_attention_override=None,
        training=None,
    ):
        output = keras.KerasTensor(
            decoder_sequence.shape, dtype=self.compute_dtype
        )
        if not return_attention_scores:
            return output
        b, t = decoder_sequence.shape[0], decoder_sequence.shape[1]
        s = encoder_sequence.shape[1]
        return (
            output,
            keras.KerasTensor(
                (b, self.num_heads, t, t), dtype=self.compute_dtype
            ),
            keras.KerasTensor(
                (b, self.num_heads, t, s), dtype=self.compute_dtype
            ),
        )

    def get_config(self):
        config = super().get_config()
        config.update(block_config(self))
        return config
