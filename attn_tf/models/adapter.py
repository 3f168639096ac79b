"""One interface over the classifiers for the evaluation code and the adversarial training.

(Here, below training and evaluation, since both use it; attn_tf.evaluation.adapter re-exports it.)

`ClassifierAdapter` wraps a model from `attn_tf.models` (BiLSTM + attention
pooling or Transformer encoder) and exposes what the faithfulness and
robustness measures need, every function batched and compiled once
(`tf.function` with `[None, None]` signatures, so the sequence length may be
trimmed to the longest real input of a batch):

  probabilities / attention of token ids,
  token embeddings and the forward pass from them (for gradients and IG; the
  attention may be held constant, as in Jain & Wallace's gradient),
  the hidden states below the pooling attention and the head above it (BiLSTM
  only: the attention-level interventions keep the encoder fixed).

`attention_vector` is the one attention distribution over tokens the
model-agnostic measures use: the pooling weights (BiLSTM), or for a
Transformer the attention received by each token in the last block (mean over
heads and over the real query rows).
"""

import numpy as np
import tensorflow as tf

from attn_tf.data import PAD_ID

def model_kind(model, name=None):
    """The registry name of a classifier covered by the evaluation (`name`, else the Keras model's name).

    ValueError (with the covered models) for anything else.
    """
    from attn_tf.models import registry

    kind = name or model.name
    covered = [n for n in registry.names(registry.CLASSIFIER) if registry.get(n).evaluation is not None]
    if kind not in covered:
        raise ValueError(
            "model %r is not a classifier the evaluation covers (%s); its registry entry "
            "(attn_tf.models.registry) needs evaluation hooks" % (kind, ", ".join(covered)))
    return kind


def real_lengths(ids):
    """Number of real (non-padding) tokens per row; ids are right-padded."""
    return np.asarray(ids != PAD_ID).sum(axis=1).astype(np.int64)


def length_batches(lengths, batch_size):
    """Index arrays grouping rows of similar length (sorted), so batches can be trimmed."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def trim(ids):
    """Drops the all-padding columns at the right end (at least one column kept)."""
    n = max(int(real_lengths(ids).max(initial=0)), 1)
    return np.ascontiguousarray(ids[:, :n])


def pad_rows(rows, width):
    """List of 1-D id arrays -> int32 [N, width] (right-padded, truncated to width)."""
    out = np.zeros((len(rows), width), np.int32)
    for i, r in enumerate(rows):
        r = np.asarray(r)[:width]
        out[i, :len(r)] = r
    return out


_IDS = tf.TensorSpec([None, None], tf.int32)
_EMB = tf.TensorSpec([None, None, None], tf.float32)
_ATT = tf.TensorSpec([None, None], tf.float32)


class ClassifierAdapter:
    """Batched, compiled access to a classifier's attention and gradients.

    The model-specific parts (embeddings, encoder, head) come from the
    evaluation hooks of the model's registry entry (attn_tf/models/eval_hooks.py).
    """

    def __init__(self, model, kind=None):
        from attn_tf.models import registry

        self.model = model
        self.kind = model_kind(model, kind)
        self.hooks = registry.get(self.kind).evaluation_hooks()
        self.num_classes = int(model.output["probabilities"].shape[-1])
        self.embedding_matrix = self.hooks.embedding_matrix(model)
        if not self.has_pooling_attention:
            self.num_layers = int(model.output["attention"].shape[1])
        self.max_length = int(model.input.shape[1]) if model.input.shape[1] else None
        self._predict = tf.function(self._predict_impl, input_signature=[_IDS], reduce_retracing=True)
        self._head = None
        self._hidden = None
        if self.has_pooling_attention:
            self._hidden = tf.function(self._hidden_impl, input_signature=[_IDS], reduce_retracing=True)
            self._head = tf.function(self._head_impl, input_signature=[_EMB, _ATT, _ATT],
                                     reduce_retracing=True)

    @property
    def has_pooling_attention(self):
        return self.hooks.attention == "pooling"

    # ---------------------------------------------------------------- pieces
    def mask(self, ids):
        return tf.not_equal(ids, PAD_ID)

    def token_embeddings(self, ids):
        """[B, T] ids -> [B, T, D] token embeddings (without positions)."""
        return self.hooks.embed(self.model, ids)

    def from_embeddings(self, emb, ids, hold_attention=False, attention_override=None):
        """Forward pass from token embeddings `emb` (mask from `ids`).

        hold_attention: the attention is computed, then used through
          `tf.stop_gradient` (J&W's gradient "with attention held constant").
        Returns (probabilities [B, C], attention) with the model's attention
        shape ([B, T] or [B, L, H, T, T]).
        """
        return self.hooks.from_embeddings(self.model, emb, ids, hold_attention=hold_attention,
                                          attention_override=attention_override)

    def _predict_impl(self, ids):
        probs, att = self.from_embeddings(self.token_embeddings(ids), ids)
        return tf.cast(probs, tf.float32), tf.cast(att, tf.float32)

    def _hidden_impl(self, ids):
        return tf.cast(self.hooks.encode(self.model, ids), tf.float32)

    def _head_impl(self, hidden, mask, attention):
        """Pooling attention: probabilities from hidden states and a given pooling attention."""
        return tf.cast(self.hooks.head(self.model, hidden, mask, attention), tf.float32)

    # ---------------------------------------------------------------- NumPy API
    def predict(self, ids, batch_size=256):
        """(probabilities [N, C], attention vectors [N, T]) as NumPy, batched and length-bucketed."""
        ids = np.asarray(ids, np.int32)
        n, t = ids.shape
        probs = np.zeros((n, self.num_classes), np.float32)
        att = np.zeros((n, t), np.float32)
        for idx in length_batches(real_lengths(ids), batch_size):
            sub = trim(ids[idx])
            p, a = self._predict(tf.constant(sub))
            probs[idx] = p.numpy()
            att[idx, :sub.shape[1]] = self.attention_vector(a.numpy(), sub)
        return probs, att

    def predict_full(self, ids):
        """(probabilities, the model's raw attention) of one batch (no bucketing)."""
        p, a = self._predict(tf.constant(np.asarray(ids, np.int32)))
        return p.numpy(), a.numpy()

    def attention_vector(self, attention, ids):
        """Model attention -> [B, T] distribution over tokens (see module doc)."""
        attention = np.asarray(attention, np.float32)
        if attention.ndim == 2:
            return attention
        last = attention[:, -1].mean(axis=1)  # [B, T, T], mean over heads
        qmask = (np.asarray(ids) != PAD_ID).astype(np.float32)
        received = (last * qmask[:, :, None]).sum(axis=1) / np.maximum(qmask.sum(1, keepdims=True), 1)
        return received

    def hidden(self, ids):
        if self._hidden is None:
            raise ValueError("hidden states below a pooling attention exist only for pooling-attention "
                             "models (%s is not one)" % self.kind)
        return self._hidden(tf.constant(np.asarray(ids, np.int32)))

    def head(self, hidden, mask, attention):
        """BiLSTM: probabilities [B, C] for hidden [B, T, D], mask [B, T] and attention [B, T]."""
        if self._head is None:
            raise ValueError("attention-layer interventions need a pooling-attention model (%s is not one)"
                             % self.kind)
        return self._head(tf.cast(hidden, tf.float32), tf.cast(mask, tf.float32),
                          tf.cast(attention, tf.float32))
