import math

import keras
from keras import initializers
from keras import ops

from attn_tf.layers.masking import attention_weights
from attn_tf.layers.masking import check_normalizer
from attn_tf.layers.masking import compute_attention_mask
from attn_tf.layers.masking import get_keras_mask
from attn_tf.layers.masking import pop_keras_masks
from attn_tf.layers.masking import restore_keras_masks
from attn_tf.layers.masking import set_keras_mask


@keras.saving.register_keras_serializable(package="attn_tf")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head scaled dot-product attention that returns and accepts weights.

    [Vaswani et al., 2017](https://arxiv.org/abs/1706.03762). The same
    computation as `keras.layers.MultiHeadAttention` on `[B, T, D]` sequences
    (einsum projections with `EinsumDense`, one batched einsum for the scores
    of all heads, one for the weighted sum), with these differences:

    * the softmax always runs in float32 (also under mixed precision);
    * a fully masked query row gets all-zero weights (so a zero context);
    * `attention_override` replaces the attention distribution of all heads
      (for faithfulness tests: permute, flatten, erase, optimise);
    * symbolic cross-attention weights have the right shape `[B, H, T, S]`.

    Sublayers: `query` (`[D, H, key_dim]`), `key` (`[Dk, H, key_dim]`),
    `value` (`[Dv, H, value_dim]`) and `attention_output`
    (`[H, value_dim, out]`), all `EinsumDense` (with biases if `use_bias`).

    Args:
        num_heads: number of attention heads `H`.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value. Defaults to `key_dim`.
        dropout: dropout rate on the attention weights used for the output
            (training only). Defaults to `0.0`.
        use_bias: whether the projections have biases. Defaults to `True`.
        output_shape: last dimension of the output (an int, or a 1-tuple).
            Defaults to the query feature dimension.
        kernel_initializer: initializer of the projection kernels.
        bias_initializer: initializer of the projection biases.
        normalizer: how scores become weights: `"softmax"` (default),
            `"sparsemax"` or `"entmax15"` (sparse: low scores get exactly
            zero weight; see `attn_tf.layers.masking.masked_normalize`).
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        query: query tensor `[B, T, D]`.
        value: value tensor `[B, S, Dv]`.
        key: optional key tensor `[B, S, Dk]`; defaults to `value`.
        query_mask: optional boolean `[B, T]`; taken from the Keras mask of
            `query` when not given. Padded query rows get zero weights.
        value_mask: optional boolean `[B, S]`; taken from the Keras mask of
            `value` when not given.
        key_mask: optional boolean `[B, S]`; taken from the Keras mask of
            `key` when not given.
        attention_mask: optional boolean mask `[B, T, S]` (or
            `[B, H, T, S]`, or broadcastable); `True` means "may attend".
        use_causal_mask: if `True`, query `t` cannot attend to keys `s > t`.
        return_attention_scores: if `True`, return `(output, weights)`.
        attention_override: optional tensor `[B, H, T, S]` (or broadcastable,
            e.g. `[B, 1, T, S]` for all heads) used as the attention
            distribution instead of the softmax of the scores (used as given,
            not renormalised; masked positions are still zeroed).
        training: Python boolean, whether dropout is active.

    Returns:
        output: `[B, T, output_shape or D]`, carrying the query mask as its
            Keras mask. A fully masked query row has a zero context, so its
            output is the bias of the output projection.
        weights: (only with `return_attention_scores=True`) `[B, H, T, S]`,
            post-softmax and pre-dropout (or the masked override).

    Example:

    >>> mha = MultiHeadAttention(num_heads=2, key_dim=4)
    >>> query = np.random.rand(3, 5, 8)
    >>> value = np.random.rand(3, 7, 8)
    >>> output, weights = mha(query, value, return_attention_scores=True)
    >>> output.shape, weights.shape
    (TensorShape([3, 5, 8]), TensorShape([3, 2, 5, 7]))
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_shape=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        normalizer="softmax",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.normalizer = check_normalizer(normalizer)
        for name, val in (("num_heads", num_heads), ("key_dim", key_dim)):
            if not isinstance(val, int) or val <= 0:
                raise ValueError(
                    f"`{name}` must be a positive integer. Received: "
                    f"{name}={val}"
                )
        if value_dim is not None and (
            not isinstance(value_dim, int) or value_dim <= 0
        ):
            raise ValueError(
                "`value_dim` must be a positive integer or None. "
                f"Received: value_dim={value_dim}"
            )
        if isinstance(output_shape, (list, tuple)):
            if len(output_shape) != 1:
                raise ValueError(
                    "`output_shape` must be an int or a 1-tuple. "
                    f"Received: output_shape={output_shape}"
                )
            output_shape = output_shape[0]
        if output_shape is not None and (
            not isinstance(output_shape, int) or output_shape <= 0
        ):
            raise ValueError(
                "`output_shape` must be a positive integer or None. "
                f"Received: output_shape={output_shape}"
            )
        dropout = float(dropout)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"`dropout` must be in [0, 1). Received: dropout={dropout}"
            )
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim if value_dim else key_dim
        self.dropout = dropout
        self.use_bias = bool(use_bias)
        self._output_dim = output_shape
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.supports_masking = True
        self._inverse_sqrt_key_dim = 1.0 / math.sqrt(float(self.key_dim))
        self._dropout_layer = keras.layers.Dropout(
            rate=self.dropout, dtype=self.dtype_policy, name="attention_dropout"
        )

    def _dense_kwargs(self):
        # Fresh initializer instances per sublayer (as Keras does), so seeded
        # initializers do not give identical kernels.
        return dict(
            kernel_initializer=self.kernel_initializer.__class__.from_config(
                self.kernel_initializer.get_config()
            ),
            bias_initializer=self.bias_initializer.__class__.from_config(
                self.bias_initializer.get_config()
            ),
            dtype=self.dtype_policy,
        )

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        for name, shape in (
            ("query", query_shape),
            ("value", value_shape),
            ("key", key_shape),
        ):
            if len(shape) != 3:
                raise ValueError(
                    f"`{name}` must have rank 3 [batch, length, features]. "
                    f"Received: {name}_shape={tuple(shape)}"
                )
        bias = "de" if self.use_bias else None
        self.query_dense = keras.layers.EinsumDense(
            "abc,cde->abde",
            output_shape=(None, self.num_heads, self.key_dim),
            bias_axes=bias,
            name="query",
            **self._dense_kwargs(),
        )
        self.query_dense.build(query_shape)
        self.key_dense = keras.layers.EinsumDense(
            "abc,cde->abde",
            output_shape=(None, self.num_heads, self.key_dim),
            bias_axes=bias,
            name="key",
            **self._dense_kwargs(),
        )
        self.key_dense.build(key_shape)
        self.value_dense = keras.layers.EinsumDense(
            "abc,cde->abde",
            output_shape=(None, self.num_heads, self.value_dim),
            bias_axes=bias,
            name="value",
            **self._dense_kwargs(),
        )
        self.value_dense.build(value_shape)
        out_dim = self._output_dim or query_shape[-1]
        self.output_dense = keras.layers.EinsumDense(
            "abcd,cde->abe",
            output_shape=(None, out_dim),
            bias_axes="e" if self.use_bias else None,
            name="attention_output",
            **self._dense_kwargs(),
        )
        self.output_dense.build(
            (query_shape[0], query_shape[1], self.num_heads, self.value_dim)
        )

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

        # A 4-D explicit mask [B, H, T, S] is merged after the head axis is
        # added to the others.
        mask_4d = None
        if attention_mask is not None and len(attention_mask.shape) == 4:
            mask_4d, attention_mask = ops.cast(attention_mask, "bool"), None
        mask = compute_attention_mask(
            query,
            value,
            query_mask=query_mask,
            value_mask=value_mask,
            key_mask=key_mask,
            attention_mask=attention_mask,
            use_causal_mask=use_causal_mask,
        )
        if mask is not None:
            mask = ops.expand_dims(mask, axis=-3)  # [B, 1, T, S]
        if mask_4d is not None:
            mask = mask_4d if mask is None else ops.logical_and(mask, mask_4d)

        # The masks are consumed here; EinsumDense would warn about them.
        saved = pop_keras_masks(query, value, key)
        try:
            # [B, T, H, key_dim]
            q = self.query_dense(query)
            # [B, S, H, value_dim]
            v = self.value_dense(value)

            if self._can_fuse(
                return_attention_scores, attention_override, training
            ):
                output = self.output_dense(self._fused_context(q, key, v, mask))
                return self._finish(output, query_mask)

            def scores():
                # [B, S, H, key_dim]
                k = self.key_dense(key)
                q_scaled = ops.multiply(
                    q, ops.cast(self._inverse_sqrt_key_dim, q.dtype)
                )
                # [B, H, T, S]
                return ops.einsum("aecd,abcd->acbe", k, q_scaled)

            weights = attention_weights(
                scores,
                mask=mask,
                attention_override=attention_override,
                dtype=self.compute_dtype,
                shape=(
                    ops.shape(query)[0],
                    self.num_heads,
                    ops.shape(query)[1],
                    ops.shape(value)[1],
                ),
                normalizer=self.normalizer,
            )
            used = weights
            if self.dropout > 0.0:
                used = self._dropout_layer(weights, training=training)
            # [B, T, H, value_dim]
            context = ops.einsum("acbe,aecd->abcd", used, v)
            output = self.output_dense(context)
        finally:
            restore_keras_masks(saved)

        output = self._finish(output, query_mask)
        if return_attention_scores:
            return output, weights
        return output

    def _finish(self, output, query_mask):
        if query_mask is not None:
            set_keras_mask(output, ops.cast(query_mask, "bool"))
        return output

    def _can_fuse(self, return_attention_scores, attention_override, training):
        """Whether `keras.ops.dot_product_attention` computes the same output.

        The fused op never materialises the weights (flash attention on
        backends that have it), so it applies only when nobody reads or
        replaces them, the normalizer is the softmax (a `normalizer` option,
        e.g. sparsemax, needs the explicit weights), no dropout acts on the
        weights, and query and value heads have one size (required by the
        flash kernels).
        """
        normalizer = getattr(self, "normalizer", None)
        return (
            not return_attention_scores
            and attention_override is None
            and normalizer in (None, "softmax")
            and (self.dropout == 0.0 or not training)
            and self.value_dim == self.key_dim
        )

    def _fused_context(self, q, key, v, mask):
        """`[B, T, H, value_dim]` context of the fused path.

        Equal to the explicit path within float rounding: the fused op
        gives a row with no allowed key a uniform distribution, ours all-zero
        weights (a zero context), so such rows are zeroed here.
        """
        k = self.key_dense(key)
        if mask is not None:
            # [B or 1, H or 1, T, S]: aligned with the op's [B, H, T, S] logits.
            mask = ops.cast(mask, "bool")
            while len(mask.shape) < 4:
                mask = ops.expand_dims(mask, 0)
        context = ops.dot_product_attention(
            q, k, v, mask=mask, scale=self._inverse_sqrt_key_dim
        )
        if mask is None:
            return context
        # 1.0 where the row has a key, [B, 1 or H, T] -> [B, T, 1 or H, 1]
        # (a max, not ops.any: keeps the exported graph on ops already
        # checked against TF Serving 2.20, attn_tf/export/graph_ops.py).
        has_key = ops.max(ops.cast(mask, context.dtype), axis=-1)
        return context * ops.expand_dims(ops.transpose(has_key, (0, 2, 1)), -1)

    def compute_mask(self, inputs, previous_mask=None):
        # The output mask is the query mask (the first argument's Keras mask).
        return previous_mask

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        out_dim = self._output_dim or query_shape[-1]
        return tuple(query_shape)[:-1] + (out_dim,)

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
        weights_shape = (
            query.shape[0],
            self.num_heads,
            query.shape[1],
            value.shape[1],
        )
        return output, keras.KerasTensor(weights_shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "normalizer": self.normalizer,
                "output_shape": self._output_dim,
                "kernel_initializer": initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": initializers.serialize(
                    self.bias_initializer
                ),
            }
        )
        return config
