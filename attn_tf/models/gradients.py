"""Loss gradients with respect to the token embeddings of a classifier.

    loss_gradients(adapter, ids, target, batch_size=128) -> (dL/de [N, T, D], e [N, T, D])

for L = -log p_target, batched by length. Used by the evaluation (HotFlip
attack) and by training (--adversarial-training), so it lives below both
(moved from attn_tf.evaluation.attacks, which re-exports it). `adapter` is an
`attn_tf.models.adapter.ClassifierAdapter`.
"""

import numpy as np
import tensorflow as tf

from attn_tf.models.adapter import length_batches, real_lengths, trim


def _loss_grad_fn(adapter):
    def fn(ids, target):
        emb = tf.cast(adapter.token_embeddings(ids), tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(emb)
            probs, _ = adapter.from_embeddings(emb, ids)
            p = tf.reduce_sum(tf.cast(probs, tf.float32) * tf.one_hot(target, adapter.num_classes), -1)
            loss = -tf.reduce_sum(tf.math.log(tf.maximum(p, 1e-12)))
        return tape.gradient(loss, emb), emb

    return tf.function(fn, input_signature=[tf.TensorSpec([None, None], tf.int32),
                                            tf.TensorSpec([None], tf.int32)], reduce_retracing=True)


def loss_gradients(adapter, ids, target, batch_size=128):
    """dL/de [N, T, D] and e for L = -log p_target (batched by length)."""
    cache = adapter.__dict__.setdefault("_eval_fns", {})
    if "loss_grad" not in cache:
        cache["loss_grad"] = _loss_grad_fn(adapter)
    fn = cache["loss_grad"]
    ids = np.asarray(ids, np.int32)
    d = int(adapter.embedding_matrix.shape[1])
    grads = np.zeros(ids.shape + (d,), np.float32)
    embs = np.zeros(ids.shape + (d,), np.float32)
    for idx in length_batches(real_lengths(ids), batch_size):
        sub = trim(ids[idx])
        g, e = fn(tf.constant(sub), tf.constant(np.asarray(target)[idx], tf.int32))
        grads[idx, :sub.shape[1]] = g.numpy()
        embs[idx, :sub.shape[1]] = e.numpy()
    return grads, embs
