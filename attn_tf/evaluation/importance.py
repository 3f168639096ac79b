"""Reference token importances: gradient, integrated gradients, leave-one-out.

Definitions (notes/interpretability.md, Jain & Wallace 2019):

* gradient: g_t = sum_c | sum_d dp_c/de_{t,d} * e_{t,d} |, normalised to sum
  to 1 over the real tokens, with the attention held constant (stop-gradient),
  as in J&W's code. With more than `max_classes` classes only the predicted
  class is used (one backward pass instead of C).
* integrated gradients on the token embeddings towards the predicted class:
  IG_t = sum_d (e - e')_{t,d} * mean_{k=1..m} dp_c(e' + k/m (e - e'))/de_{t,d},
  baseline e' = 0 (the padding embedding's role), m = 50; completeness
  sum_t IG_t ~ p_c(e) - p_c(e') is returned with it. Signed.
* leave-one-out: LOO_t = mean_c |p_c(x without t) - p_c(x)| ("delete": the
  token is removed and the rest shifts left; "unk": it is replaced by [UNK],
  the blank-out variant).

Every function takes ids [N, T] (NumPy, right-padded) and returns [N, T]
float arrays with zeros on padding. Work is batched by length.
"""

import numpy as np
import tensorflow as tf

from attn_tf.data import PAD_ID
from attn_tf.evaluation.adapter import length_batches, real_lengths, trim
# One owner of the variant builders: the training-curve scalars use them too.
from attn_tf.metrics.attention_faithfulness import gradient_importance_fn
from attn_tf.metrics.attention_faithfulness import loo_variants  # noqa: F401

_IDS = tf.TensorSpec([None, None], tf.int32)


def _compiled(adapter, key, build):
    cache = adapter.__dict__.setdefault("_eval_fns", {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


def _gradient_fn(adapter, hold_attention, max_classes):
    # The definition is owned by attn_tf.metrics.attention_faithfulness (the training curve uses it too).
    return gradient_importance_fn(
        adapter.token_embeddings,
        lambda emb, ids: adapter.from_embeddings(emb, ids, hold_attention=hold_attention),
        adapter.num_classes, max_classes=max_classes)


def _normalise_rows(x, ids):
    x = np.where(ids != PAD_ID, x, 0.0)
    s = x.sum(axis=1, keepdims=True)
    return np.divide(x, s, out=np.zeros_like(x), where=s > 0)


def gradient_importance(adapter, ids, batch_size=64, hold_attention=True, max_classes=10,
                        normalise=True):
    """J&W gradient importance [N, T] (rows sum to 1 over real tokens)."""
    ids = np.asarray(ids, np.int32)
    fn = _compiled(adapter, ("grad", hold_attention, max_classes),
                   lambda: _gradient_fn(adapter, hold_attention, max_classes))
    out = np.zeros(ids.shape, np.float64)
    for idx in length_batches(real_lengths(ids), batch_size):
        sub = trim(ids[idx])
        out[idx, :sub.shape[1]] = fn(tf.constant(sub)).numpy()
    return _normalise_rows(out, ids) if normalise else np.where(ids != PAD_ID, out, 0.0)


def _ig_fn(adapter, steps):
    def fn(ids, target):
        emb = tf.cast(adapter.token_embeddings(ids), tf.float32)
        base = tf.zeros_like(emb)
        b = tf.shape(ids)[0]
        alphas = tf.range(1, steps + 1, dtype=tf.float32) / float(steps)
        interp = base[None] + alphas[:, None, None, None] * (emb - base)[None]
        shape = tf.shape(interp)
        interp = tf.reshape(interp, [shape[0] * shape[1], shape[2], shape[3]])
        ids_rep = tf.tile(ids, [steps, 1])
        onehot = tf.one_hot(target, adapter.num_classes)
        onehot_rep = tf.tile(onehot, [steps, 1])
        with tf.GradientTape() as tape:
            tape.watch(interp)
            probs, _ = adapter.from_embeddings(interp, ids_rep)
            out = tf.reduce_sum(tf.cast(probs, tf.float32) * onehot_rep)
        grads = tf.reshape(tf.cast(tape.gradient(out, interp), tf.float32), shape)
        ig = tf.reduce_sum((emb - base) * tf.reduce_mean(grads, axis=0), axis=-1)
        p_x, _ = adapter.from_embeddings(emb, ids)
        p_b, _ = adapter.from_embeddings(base, ids)
        delta = tf.reduce_sum((tf.cast(p_x, tf.float32) - tf.cast(p_b, tf.float32)) * onehot, -1)
        del b
        return ig, delta

    return tf.function(fn, input_signature=[_IDS, tf.TensorSpec([None], tf.int32)], reduce_retracing=True)


def integrated_gradients(adapter, ids, target=None, steps=50, token_budget=65536):
    """Integrated gradients [N, T] towards `target` (default: the predicted class).

    Returns (ig, completeness) where completeness = p_c(e) - p_c(e') per
    instance: sum_t ig_t approximates it (right Riemann sum with `steps`).
    """
    ids = np.asarray(ids, np.int32)
    if target is None:
        target = adapter.predict(ids)[0].argmax(-1)
    target = np.asarray(target, np.int32)
    fn = _compiled(adapter, ("ig", steps), lambda: _ig_fn(adapter, steps))
    batch = max(1, token_budget // (steps * ids.shape[1]))
    ig = np.zeros(ids.shape, np.float64)
    delta = np.zeros(len(ids), np.float64)
    for idx in length_batches(real_lengths(ids), batch):
        sub = trim(ids[idx])
        g, d = fn(tf.constant(sub), tf.constant(target[idx]))
        ig[idx, :sub.shape[1]] = g.numpy()
        delta[idx] = d.numpy()
    return np.where(ids != PAD_ID, ig, 0.0), delta


def leave_one_out(adapter, ids, probs=None, mode="delete", target=None, batch_size=512):
    """LOO importance [N, T]: mean_c |p_c(x without t) - p_c(x)|.

    With `target` (class per row), the signed drop p_c(x) - p_c(x without t)
    of that class is returned instead (used by the attacks' word ranking).
    Also returns the number of model evaluations made.
    """
    ids = np.asarray(ids, np.int32)
    if probs is None:
        probs = adapter.predict(ids)[0]
    variants, rows, pos = loo_variants(ids, mode)
    out = np.zeros(ids.shape, np.float64)
    if len(rows):
        p_var, _ = adapter.predict(variants, batch_size=batch_size)
        if target is None:
            vals = np.abs(p_var - probs[rows]).mean(axis=-1)
        else:
            target = np.asarray(target)
            vals = probs[rows, target[rows]] - p_var[np.arange(len(rows)), target[rows]]
        out[rows, pos] = vals
    return out, len(rows)
