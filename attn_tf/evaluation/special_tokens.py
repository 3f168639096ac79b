"""A classifier seen as a function of its content tokens only ([CLS] and [SEP] added inside).

A BERT-style model (`--model minilm`) reads `[CLS] w_1 .. w_n [SEP]`. The
evaluation's measures rank, delete and perturb tokens; the special tokens are
not words of the text and must take no part in that (no importance, never
deleted, not in the top-k%). `SpecialTokensAdapter` wraps a
`ClassifierAdapter` so that every measure works on content ids
`w_1 .. w_n` (right-padded) unchanged: each forward pass puts `[CLS]` in
front and `[SEP]` after the last real token (in NumPy for ids, in TensorFlow
for embeddings, so gradients and integrated gradients flow to the content
embeddings only) and the model sees exactly the input it was trained on.

The attention vector of a content row is the wrapped model's attention
vector (attention received in the last block, mean over heads and over all
real query rows, [CLS]/[SEP] rows included since the model mean-pools them)
restricted to the content columns and renormalised to sum to 1 over them.
`predict_full` returns the raw attention of the wrapped input
([B, L, H, T+2, T+2]); `specials` = (1, 1) says how many special positions
precede and follow the content (`transformer_attribution` reads it).
"""

import numpy as np
import tensorflow as tf

from attn_tf.data import PAD_ID
from attn_tf.evaluation.adapter import real_lengths


def content_ids(ids, cls_id, sep_id):
    """Model ids `[CLS] w.. [SEP] pad..` [N, T] -> content ids [N, T - 2] (right-padded)."""
    ids = np.asarray(ids, np.int32)
    out = np.zeros((len(ids), max(ids.shape[1] - 2, 1)), np.int32)
    for i, row in enumerate(ids):
        real = row[row != PAD_ID]
        real = real[(real != cls_id) & (real != sep_id)]
        out[i, :len(real)] = real[:out.shape[1]]
    return out


def content_tokens(token_lists, specials=("[CLS]", "[SEP]")):
    """Token lists without the special pieces."""
    return [[t for t in tokens if t not in specials] for tokens in token_lists]


def wrap_ids(ids, cls_id, sep_id):
    """Content ids [N, T] -> model ids [N, T + 2]: [CLS] content [SEP], right-padded."""
    ids = np.asarray(ids, np.int32)
    n, t = ids.shape
    lengths = real_lengths(ids)
    out = np.zeros((n, t + 2), np.int32)
    out[:, 0] = cls_id
    out[:, 1:t + 1] = ids
    out[np.arange(n), lengths + 1] = sep_id
    return out


class SpecialTokensAdapter:
    """`ClassifierAdapter` interface over content ids; [CLS]/[SEP] added for every forward pass.

    Args:
      inner: a `ClassifierAdapter` of a model with self-attention.
      cls_id, sep_id: ids of the special tokens (the run's WordPiece vectorizer).
    """

    specials = (1, 1)

    def __init__(self, inner, cls_id, sep_id):
        if inner.has_pooling_attention:
            raise ValueError("SpecialTokensAdapter wraps self-attention models only")
        self.inner = inner
        self.cls_id, self.sep_id = int(cls_id), int(sep_id)
        self.kind = inner.kind
        self.model = inner.model
        self.hooks = inner.hooks
        self.num_classes = inner.num_classes
        self.num_layers = inner.num_layers
        self.embedding_matrix = inner.embedding_matrix
        self.max_length = None if inner.max_length is None else inner.max_length - 2
        self.has_pooling_attention = False

    def token_embeddings(self, ids):
        return self.inner.token_embeddings(ids)

    def _wrap_embeddings(self, emb, ids):
        ids = tf.cast(ids, tf.int32)
        b, t = tf.shape(ids)[0], tf.shape(ids)[1]
        n = tf.reduce_sum(tf.cast(tf.not_equal(ids, PAD_ID), tf.int32), axis=1)
        at_sep = tf.equal(tf.range(t + 2)[None, :], (n + 1)[:, None])  # [B, T + 2]
        cls = tf.fill([b, 1], self.cls_id)
        full_ids = tf.concat([cls, ids, tf.zeros([b, 1], tf.int32)], axis=1)
        full_ids = tf.where(at_sep, self.sep_id, full_ids)
        emb = tf.cast(emb, tf.float32)
        cls_emb = tf.cast(self.inner.token_embeddings(cls), tf.float32)
        sep_emb = tf.cast(self.inner.token_embeddings(tf.fill([b, 1], self.sep_id)), tf.float32)
        full = tf.concat([cls_emb, emb, tf.zeros_like(cls_emb)], axis=1)
        full = tf.where(at_sep[:, :, None], sep_emb, full)
        return full, full_ids

    def from_embeddings(self, emb, ids, hold_attention=False, attention_override=None):
        """Forward pass from content embeddings; returns (probabilities, attention of the wrapped input)."""
        full, full_ids = self._wrap_embeddings(emb, ids)
        return self.inner.from_embeddings(full, full_ids, hold_attention=hold_attention,
                                          attention_override=attention_override)

    @staticmethod
    def _content(full, ids):
        """Wrapped-input attention vectors [B, T + 2] -> the content columns [B, T], renormalised."""
        t = ids.shape[1]
        v = np.where(ids != PAD_ID, full[:, 1:t + 1], 0.0)
        s = v.sum(1, keepdims=True)
        return np.divide(v, s, out=np.zeros_like(v), where=s > 0).astype(np.float32)

    def attention_vector(self, attention, ids):
        """Wrapped-input attention + content ids [B, T] -> [B, T] over the content tokens (sums to 1)."""
        ids = np.asarray(ids, np.int32)
        return self._content(self.inner.attention_vector(attention, wrap_ids(ids, self.cls_id, self.sep_id)), ids)

    def predict(self, ids, batch_size=256):
        """(probabilities [N, C], content attention vectors [N, T])."""
        ids = np.asarray(ids, np.int32)
        probs, att = self.inner.predict(wrap_ids(ids, self.cls_id, self.sep_id), batch_size=batch_size)
        return probs, self._content(att, ids)

    def predict_full(self, ids):
        """(probabilities, raw attention [B, L, H, T+2, T+2] of the wrapped input) of one batch."""
        return self.inner.predict_full(wrap_ids(ids, self.cls_id, self.sep_id))

    def hidden(self, ids):
        return self.inner.hidden(ids)

    def head(self, hidden, mask, attention):
        return self.inner.head(hidden, mask, attention)
