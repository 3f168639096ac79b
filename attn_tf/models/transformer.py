"""Transformer encoder text classifier.

    token ids [B, T] -> token + position embeddings -> N encoder blocks (H heads)
    -> masked mean pooling -> Dense

The model returns a dict:
  "probabilities": [B, C],
  "attention":     [B, L, H, T, T] self-attention of every block (rows =
                   queries, columns = keys; padded keys get exactly 0).

Layer names ("embedding", "encoder_block_<i>", "pooling", "dropout",
"classifier") are a contract used by `forward` and the evaluation code.
"""

import keras
from keras import layers, ops

from attn_tf.layers.token_and_position_embedding import TokenAndPositionEmbedding
from attn_tf.layers import TransformerEncoder
from attn_tf.layers.masking import check_normalizer


def transformer(
    vocab_size,
    num_classes,
    max_length=64,
    hidden_dim=64,
    num_layers=2,
    num_heads=4,
    intermediate_dim=128,
    dropout=0.1,
    classifier_dropout=0.3,
    attention_normalizer="softmax",
    name="transformer",
):
    """Builds the Transformer encoder classifier.

    Args:
      vocab_size: size of the token vocabulary (id 0 is padding).
      num_classes: number of output classes.
      max_length: padded sequence length T.
      hidden_dim: model width (divisible by num_heads).
      num_layers: number of encoder blocks L.
      num_heads: attention heads H per block.
      intermediate_dim: feed-forward width.
      dropout: dropout inside the blocks.
      classifier_dropout: dropout before the classifier.
      attention_normalizer: how every block's attention scores become
        weights: "softmax" (default), "sparsemax" or "entmax15" (exact zeros
        on the keys a query does not use; train.py --attention-normalizer).
    Returns:
      A functional `keras.Model` from int ids [B, T] to a dict with
      "probabilities" [B, C] and "attention" [B, L, H, T, T].
    """
    if hidden_dim % num_heads:
        raise ValueError("hidden_dim (%d) must be divisible by num_heads (%d)" % (hidden_dim, num_heads))
    check_normalizer(attention_normalizer)
    token_ids = keras.Input(shape=(max_length,), dtype="int32", name="token_ids")
    x = TokenAndPositionEmbedding(vocab_size, max_length, hidden_dim, name="embedding")(token_ids)
    x = layers.Dropout(dropout, name="embedding_dropout")(x)
    all_weights = []
    for i in range(num_layers):
        x, w = TransformerEncoder(num_heads, intermediate_dim, dropout=dropout, normalizer=attention_normalizer,
                                  name="encoder_block_%d" % i)(
            x, return_attention_scores=True
        )
        all_weights.append(w)
    pooled = layers.GlobalAveragePooling1D(name="pooling")(x)
    pooled = layers.Dropout(classifier_dropout, name="dropout")(pooled)
    probs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="classifier")(pooled)
    attention = layers.Activation("linear", dtype="float32", name="attention")(ops.stack(all_weights, axis=1))
    return keras.Model(token_ids, {"probabilities": probs, "attention": attention}, name=name)


def num_blocks(model):
    return sum(1 for l in model.layers if l.name.startswith("encoder_block_"))


def forward(model, token_ids, attention_override=None, training=False, return_attention=True):
    """The model's forward pass, optionally with attention replaced.

    Args:
      model: a model from `transformer`.
      token_ids: int [B, T].
      attention_override: None, or a list with one entry per block, each None
        or a [B, H, T, T] distribution used instead of that block's weights.
      return_attention: False: no attention is computed or returned (the
        blocks take the fused `keras.ops.dot_product_attention` path; the
        `predict` serving signature uses this). Same probabilities.
    Returns:
      dict with "probabilities" and "attention" ([B, L, H, T, T]); only
      "probabilities" when return_attention is False.
    """
    emb = model.get_layer("embedding")
    x = emb(token_ids)
    mask = emb.compute_mask(token_ids)
    x = model.get_layer("embedding_dropout")(x, training=training)
    return encode_and_classify(model, x, mask, attention_override=attention_override, training=training,
                               return_attention=return_attention)


def encode_and_classify(model, x, mask, attention_override=None, training=False, return_attention=True,
                        hold_attention=False):
    """The blocks and head shared by attn-tf's encoder classifiers (transformer, minilm).

    `x` [B, T, D] (the embedded tokens) -> encoder_block_<i> -> pooling ->
    dropout -> classifier. `attention_override`: None or one entry per block
    (None or [B, H, T, T]); `hold_attention`: each block's own attention used
    through `stop_gradient` (Jain & Wallace's gradient "with attention held");
    `return_attention=False` computes no weights (the fused attention path).
    Returns the dict of `forward`.
    """
    n = num_blocks(model)
    overrides = attention_override if attention_override is not None else [None] * n
    if len(overrides) != n:
        raise ValueError("attention_override needs %d entries (one per block), got %d" % (n, len(overrides)))
    weights = []
    for i in range(n):
        block = model.get_layer("encoder_block_%d" % i)
        override = overrides[i]
        if not return_attention and override is None and not hold_attention:
            x = block(x, padding_mask=mask, training=training)
            continue
        if hold_attention and override is None:
            _, w = block(x, padding_mask=mask, return_attention_scores=True, training=training)
            override = ops.stop_gradient(w)
        x, w = block(x, padding_mask=mask, return_attention_scores=True, attention_override=override,
                     training=training)
        weights.append(w)
    pooled = model.get_layer("pooling")(x, mask=mask)
    pooled = model.get_layer("dropout")(pooled, training=training)
    probs = model.get_layer("classifier")(pooled)
    if not return_attention:
        return {"probabilities": probs}
    return {"probabilities": probs, "attention": ops.stack(weights, axis=1)}
