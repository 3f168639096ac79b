"""Private helpers shared by `TransformerEncoder` and `TransformerDecoder`.

Plain functions, as keras-hub's `transformer_layer_utils`: argument checks,
initializer clones and the sublayers both blocks are made of. The blocks
still create, name and assign their sublayers themselves (in their own
order), so attribute paths, layer names and weight order are theirs.
"""

import keras

from attn_tf.layers.multi_head_attention import MultiHeadAttention


def check_positive_int(name, value):
    """`value` if it is a positive int; ValueError naming `name` otherwise."""
    if not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value}"
        )
    return value


def check_hidden_dim(shape, num_heads, what, shape_name):
    """The last dimension of `shape`.

    ValueError if it is unknown or not divisible by `num_heads`; `what` and
    `shape_name` name the inputs and the shape argument in the message.
    """
    hidden_dim = shape[-1]
    if hidden_dim is None or hidden_dim % num_heads:
        raise ValueError(
            f"The hidden size of the {what} must be known and divisible by "
            f"num_heads={num_heads}. Received: "
            f"{shape_name}={tuple(shape)}"
        )
    return hidden_dim


def clone_initializer(initializer):
    """A fresh copy of `initializer`, so that no two sublayers share one."""
    return initializer.__class__.from_config(initializer.get_config())


def initializer_kwargs(block):
    """Clones of `block`'s kernel and bias initializers, for one sublayer."""
    return dict(
        kernel_initializer=clone_initializer(block.kernel_initializer),
        bias_initializer=clone_initializer(block.bias_initializer),
    )


def attention_sublayer(block, name, query_shape, value_shape):
    """A built `MultiHeadAttention` with `block`'s heads, dropout, normalizer.

    `key_dim = query_shape[-1] // block.num_heads`.
    """
    attention = MultiHeadAttention(
        num_heads=block.num_heads,
        key_dim=query_shape[-1] // block.num_heads,
        dropout=block.dropout,
        normalizer=block.normalizer,
        dtype=block.dtype_policy,
        name=name,
        **initializer_kwargs(block),
    )
    attention.build(query_shape, value_shape)
    return attention


def layer_norm_sublayer(block, name, shape):
    """A built `LayerNormalization` with `block`'s epsilon."""
    layer = keras.layers.LayerNormalization(
        epsilon=block.layer_norm_epsilon, dtype=block.dtype_policy, name=name
    )
    layer.build(shape)
    return layer


def dropout_sublayer(block, name):
    """A `Dropout` at `block`'s rate."""
    return keras.layers.Dropout(
        rate=block.dropout, dtype=block.dtype_policy, name=name
    )


def feedforward_sublayers(block, shape):
    """The built feed-forward pair for inputs of `shape`.

    `(feedforward_intermediate_dense, feedforward_output_dense)`:
    `Dense(intermediate_dim, activation)` then `Dense(shape[-1])`.
    """
    intermediate = keras.layers.Dense(
        block.intermediate_dim,
        activation=block.activation,
        dtype=block.dtype_policy,
        name="feedforward_intermediate_dense",
        **initializer_kwargs(block),
    )
    intermediate.build(shape)
    output = keras.layers.Dense(
        shape[-1],
        dtype=block.dtype_policy,
        name="feedforward_output_dense",
        **initializer_kwargs(block),
    )
    output.build(tuple(shape)[:-1] + (block.intermediate_dim,))
    return intermediate, output


def residual_sub_block(x, fn, layer_norm, dropout, normalize_first, training):
    """`fn` + dropout + residual, with the LayerNorm before or after.

    `fn` maps the (normalised, if `normalize_first`) input to
    `(outputs, weights)`; returns `(outputs, weights)`.
    """
    residual = x
    if normalize_first:
        x = layer_norm(x)
    x, weights = fn(x)
    x = dropout(x, training=training) + residual
    if not normalize_first:
        x = layer_norm(x)
    return x, weights


def feedforward_sub_block(block, x, training):
    """The feed-forward sub-block through `block`'s `feedforward_*` layers."""
    x, _ = residual_sub_block(
        x,
        lambda h: (
            block.feedforward_output_dense(
                block.feedforward_intermediate_dense(h)
            ),
            None,
        ),
        block.feedforward_layer_norm,
        block.feedforward_dropout,
        block.normalize_first,
        training,
    )
    return x


def block_config(block):
    """The `get_config` entries both blocks share, beyond the base layer's."""
    return {
        "num_heads": block.num_heads,
        "intermediate_dim": block.intermediate_dim,
        "dropout": block.dropout,
        "activation": keras.activations.serialize(block.activation),
        "layer_norm_epsilon": block.layer_norm_epsilon,
        "normalize_first": block.normalize_first,
        "normalizer": block.normalizer,
        "kernel_initializer": keras.initializers.serialize(
            block.kernel_initializer
        ),
        "bias_initializer": keras.initializers.serialize(
            block.bias_initializer
        ),
    }
