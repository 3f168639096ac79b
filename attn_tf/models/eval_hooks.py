"""Evaluation hooks of the classifiers: their embeddings, encoder and head as functions of the model.

The faithfulness and robustness measures (attn_tf.evaluation) run a trained
model from its token embeddings (for gradients and integrated gradients) and,
for pooling attention, with the encoder fixed and the attention replaced.
Only the model's own module knows its layer names; these hooks are the one
place the evaluation reaches into them. A model's registry entry
(`ModelSpec.evaluation`) names its hooks object.

A hooks object provides
  attention         "pooling" ([B, T] weights over tokens) or "self" ([B, L, H, T, T])
  embedding_matrix(model)                      -> the token embedding variable [V, D]
  embed(model, ids)                            -> token embeddings [B, T, D] (no positions)
  from_embeddings(model, emb, ids, hold_attention=False, attention_override=None)
                                               -> (probabilities [B, C], attention)
  encode(model, ids) -> hidden [B, T, D]       (pooling only: the states below the attention)
  head(model, hidden, mask, attention) -> probabilities   (pooling only)

`hold_attention`: the attention is computed, then used through
`tf.stop_gradient` (Jain & Wallace's gradient "with attention held constant").
"""

import tensorflow as tf

from attn_tf.data import PAD_ID


def _mask(ids):
    return tf.not_equal(ids, PAD_ID)


class PoolingHooks:
    """bilstm_attention: embedding -> embedding_dropout -> encoder -> attention_pooling -> classifier."""

    attention = "pooling"

    @staticmethod
    def embedding_matrix(model):
        return model.get_layer("embedding").embeddings

    @classmethod
    def embed(cls, model, ids):
        return tf.gather(cls.embedding_matrix(model), ids)

    @staticmethod
    def encode_embeddings(model, emb, ids):
        x = model.get_layer("embedding_dropout")(emb, training=False)
        return model.get_layer("encoder")(x, mask=_mask(ids), training=False)

    @classmethod
    def encode(cls, model, ids):
        return cls.encode_embeddings(model, cls.embed(model, ids), ids)

    @staticmethod
    def head(model, hidden, mask, attention):
        pooled, _ = model.get_layer("attention_pooling")(
            hidden, mask=tf.cast(mask, tf.bool), return_attention_scores=True, attention_override=attention)
        return model.get_layer("classifier")(pooled)

    @classmethod
    def from_embeddings(cls, model, emb, ids, hold_attention=False, attention_override=None):
        mask = _mask(ids)
        h = cls.encode_embeddings(model, emb, ids)
        pool = model.get_layer("attention_pooling")
        if hold_attention and attention_override is None:
            _, a = pool(h, mask=mask, return_attention_scores=True)
            attention_override = tf.stop_gradient(a)
        pooled, a = pool(h, mask=mask, return_attention_scores=True, attention_override=attention_override)
        return model.get_layer("classifier")(pooled), a


class TransformerHooks:
    """transformer: embedding (token + position) -> encoder_block_<i> -> pooling -> classifier."""

    attention = "self"
    encode = None
    head = None

    @staticmethod
    def embedding_matrix(model):
        return model.get_layer("embedding").token_embedding.embeddings

    @classmethod
    def embed(cls, model, ids):
        return tf.gather(cls.embedding_matrix(model), ids)

    @staticmethod
    def num_blocks(model):
        from attn_tf.models.transformer import num_blocks

        return num_blocks(model)

    @classmethod
    def from_embeddings(cls, model, emb, ids, hold_attention=False, attention_override=None):
        mask = _mask(ids)
        t = tf.shape(ids)[1]
        x = emb + tf.expand_dims(model.get_layer("embedding").position_embedding(tf.range(t)), 0)
        x = model.get_layer("embedding_dropout")(x, training=False)
        weights = []
        for i in range(cls.num_blocks(model)):
            block = model.get_layer("encoder_block_%d" % i)
            override = None if attention_override is None else attention_override[i]
            if hold_attention and override is None:
                _, w = block(x, padding_mask=mask, return_attention_scores=True)
                override = tf.stop_gradient(w)
            x, w = block(x, padding_mask=mask, return_attention_scores=True, attention_override=override)
            weights.append(w)
        pooled = model.get_layer("pooling")(x, mask=mask)
        return model.get_layer("classifier")(pooled), tf.stack(weights, axis=1)


POOLING = PoolingHooks()
TRANSFORMER = TransformerHooks()
