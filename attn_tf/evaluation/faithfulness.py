"""Does the attention agree with, and matter for, the prediction?

* `agreement`: per-instance Kendall tau between attention, gradient, LOO (and
  IG) importances; mean, std, fraction with p <= 0.05 (J&W section 1-3).
* `permutation`: median over random permutations of the attention (hidden
  states fixed) of mean_c |delta p_c|, with max attention (J&W section 4).
* `adversarial_attention`: the most different attention (JSD) that keeps the
  output within eps (J&W section 5): Adam (amsgrad) on attention logits,
  lr 0.01, 500 steps, 5 restarts initialised at log-uniform + N(0, 3^2) noise,
  loss -JSD + 500 * relu(|dp| - 0.01); candidates with |dp| > 0.05 are
  discarded. J&W's code also adds a diversity term between restarts; it is
  left out here.
* `uniform_gap`: accuracy with the attention replaced by 1/T at test time
  (W&P, test-time variant; no retraining).

The interventions need a model with pooling attention (BiLSTM); inputs are
NumPy ids [N, T] and the model's clean outputs.
"""

import numpy as np
import tensorflow as tf

from attn_tf.data import PAD_ID
from attn_tf.evaluation import metrics
from attn_tf.evaluation.adapter import length_batches, real_lengths, trim


def agreement(attention, grad, loo, ids, ig=None):
    """J&W's Kendall tau statistics. Returns (summary dict, per-instance taus dict)."""
    lengths = real_lengths(ids)
    pairs = {"attn_grad": (attention, grad), "attn_loo": (attention, loo), "grad_loo": (grad, loo)}
    if ig is not None:
        pairs["attn_ig"] = (attention, ig)
        pairs["ig_loo"] = (ig, loo)
    per, summary = {}, {}
    for name, (a, b) in pairs.items():
        taus = np.full(len(ids), np.nan)
        ps = np.full(len(ids), np.nan)
        for i, n in enumerate(lengths):
            taus[i], ps[i] = metrics.kendall(a[i, :n], b[i, :n])
        per[name] = taus
        summary[name] = metrics.tau_summary(taus, ps)
    return summary, per


def _random_permutations(mask, num, rng):
    """[B, num, T] index arrays permuting the real positions of each row (padding stays put)."""
    b, t = mask.shape
    keys = rng.random((b, num, t))
    keys = np.where(mask[:, None, :], keys, 2.0 + np.arange(t)[None, None, :])
    return np.argsort(keys, axis=-1)


def permutation(adapter, ids, probs, attention, num_permutations=100, seed=0, token_budget=262144):
    """Median over permutations of mean_c |delta p_c| per instance, and max attention.

    Returns dict with "median_delta" [N], "max_attention" [N].
    """
    rng = np.random.default_rng(seed)
    ids = np.asarray(ids, np.int32)
    med = np.zeros(len(ids))
    # rows x tokens per call bounded, so long inputs (e.g. 256 tokens) stay within memory
    batch = max(1, token_budget // (num_permutations * ids.shape[1]))
    for idx in length_batches(real_lengths(ids), batch):
        sub = trim(ids[idx])
        t = sub.shape[1]
        mask = sub != PAD_ID
        hidden = adapter.hidden(sub)
        perms = _random_permutations(mask, num_permutations, rng)
        att = attention[idx, :t]
        permuted = np.take_along_axis(np.repeat(att[:, None, :], num_permutations, 1), perms, -1)
        b = len(idx)
        h = tf.repeat(hidden, num_permutations, axis=0)
        m = np.repeat(mask, num_permutations, axis=0)
        p_new = adapter.head(h, m, permuted.reshape(b * num_permutations, t)).numpy()
        p_new = p_new.reshape(b, num_permutations, -1)
        delta = np.abs(p_new - probs[idx][:, None, :]).mean(-1)
        med[idx] = np.median(delta, axis=1)
    return {"median_delta": med, "max_attention": attention.max(axis=1)}


def permutation_summary(result, bins=(0.0, 0.25, 0.5, 0.75, 1.0001)):
    med, mx = result["median_delta"], result["max_attention"]
    out = {"median_delta": metrics.summarize(med), "by_max_attention": []}
    for lo, hi in zip(bins[:-1], bins[1:]):
        sel = (mx >= lo) & (mx < hi)
        out["by_max_attention"].append({"max_attention": [lo, min(hi, 1.0)], "n": int(sel.sum()),
                                        "median_delta_mean": float(med[sel].mean()) if sel.any() else None})
    out["frac_median_delta_lt_0.01"] = float(np.mean(med < 0.01)) if len(med) else None
    return out


def _adversary_fn(adapter, steps, lr, penalty, tolerance):
    def js(p, q):
        m = 0.5 * (p + q)
        def _kl(a, b):
            return tf.reduce_sum(tf.where(a > 0, a * (tf.math.log(tf.maximum(a, 1e-12))
                                                   - tf.math.log(tf.maximum(b, 1e-12))), 0.0), -1)
        return 0.5 * _kl(p, m) + 0.5 * _kl(q, m)

    def fn(hidden, mask, attention, probs, init_logits):
        maskb = tf.cast(mask, tf.bool)
        logits = init_logits
        m_t = tf.zeros_like(logits)
        v_t = tf.zeros_like(logits)
        vmax = tf.zeros_like(logits)
        b1, b2, eps = 0.9, 0.999, 1e-8

        def softmax(lg):
            lg = tf.where(maskb, lg, -1e9)
            return tf.nn.softmax(lg, -1) * tf.cast(maskb, tf.float32)

        def body(i, lg, m_t, v_t, vmax):
            with tf.GradientTape() as tape:
                tape.watch(lg)
                a = softmax(lg)
                p = adapter._head_impl(hidden, mask, a)
                dp = tf.reduce_mean(tf.abs(p - probs), -1)
                loss = tf.reduce_sum(-js(a, attention) + penalty * tf.nn.relu(dp - tolerance))
            g = tape.gradient(loss, lg)
            m_t = b1 * m_t + (1 - b1) * g
            v_t = b2 * v_t + (1 - b2) * g * g
            vmax = tf.maximum(vmax, v_t)
            step = tf.cast(i + 1, tf.float32)
            lr_t = lr * tf.sqrt(1 - b2 ** step) / (1 - b1 ** step)
            lg = lg - lr_t * m_t / (tf.sqrt(vmax) + eps)
            return i + 1, lg, m_t, v_t, vmax

        _, logits, _, _, _ = tf.while_loop(lambda i, *_: i < steps, body,
                                           (tf.constant(0), logits, m_t, v_t, vmax))
        a = softmax(logits)
        p = adapter._head_impl(hidden, mask, a)
        return a, p, js(a, attention), tf.reduce_mean(tf.abs(p - probs), -1)

    sig = [tf.TensorSpec([None, None, None], tf.float32), tf.TensorSpec([None, None], tf.float32),
           tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None, None], tf.float32),
           tf.TensorSpec([None, None], tf.float32)]
    return tf.function(fn, input_signature=sig, reduce_retracing=True)


def adversarial_attention(adapter, ids, probs, attention, restarts=5, steps=500, lr=0.01, penalty=500.0,
                          tolerance=0.01, epsilon=0.05, seed=0, token_budget=65536):
    """J&W's adversarial attention search, batched over instances and restarts.

    Returns dict: "jsd" [N] (max JSD over the kept candidates; NaN if none
    kept), "delta" [N] (its mean_c |dp_c|), "attention" [N, T] (the chosen
    adversarial attention; zeros if none), "max_attention" [N].
    """
    cache = adapter.__dict__.setdefault("_eval_fns", {})
    key = ("adv", steps, lr, penalty, tolerance)
    if key not in cache:
        cache[key] = _adversary_fn(adapter, steps, lr, penalty, tolerance)
    fn = cache[key]
    rng = np.random.default_rng(seed)
    ids = np.asarray(ids, np.int32)
    n, t_full = ids.shape
    out_jsd = np.full(n, np.nan)
    out_delta = np.full(n, np.nan)
    out_att = np.zeros((n, t_full), np.float32)
    batch = max(1, token_budget // (restarts * t_full))
    for idx in length_batches(real_lengths(ids), batch):
        sub = trim(ids[idx])
        b, t = sub.shape
        mask = (sub != PAD_ID).astype(np.float32)
        hidden = tf.repeat(adapter.hidden(sub), restarts, axis=0)
        m = np.repeat(mask, restarts, 0)
        lengths = np.maximum(mask.sum(1), 1)
        init = np.log(1.0 / np.repeat(lengths, restarts))[:, None] + 3.0 * rng.standard_normal((b * restarts, t))
        a, p, j, d = fn(hidden, m, np.repeat(attention[idx, :t], restarts, 0).astype(np.float32),
                        np.repeat(probs[idx], restarts, 0).astype(np.float32), init.astype(np.float32))
        a, j, d = a.numpy().reshape(b, restarts, t), j.numpy().reshape(b, restarts), d.numpy().reshape(b, restarts)
        j_ok = np.where(d <= epsilon, j, -np.inf)
        best = j_ok.argmax(1)
        found = np.isfinite(j_ok.max(1))
        rows = np.arange(b)
        out_jsd[idx] = np.where(found, j[rows, best], np.nan)
        out_delta[idx] = np.where(found, d[rows, best], np.nan)
        out_att[idx, :t] = np.where(found[:, None], a[rows, best], 0.0)
    return {"jsd": out_jsd, "delta": out_delta, "attention": out_att, "max_attention": attention.max(1)}


def adversarial_summary(result, epsilon=0.05):
    j = result["jsd"]
    found = np.isfinite(j)
    return {
        "max_jsd": metrics.summarize(j),
        "frac_found": float(found.mean()) if len(j) else None,
        "frac_jsd_gt_0.5": float(np.mean(j[found] > 0.5)) if found.any() else None,
        "epsilon": epsilon,
        "max_possible_jsd": metrics.LN2,
    }


def uniform_gap(adapter, ids, probs, labels, batch_size=256):
    """Accuracy with the model's attention vs uniform attention over the real tokens (test time)."""
    ids = np.asarray(ids, np.int32)
    p_uni = np.zeros_like(probs)
    for idx in length_batches(real_lengths(ids), batch_size):
        sub = trim(ids[idx])
        mask = (sub != PAD_ID).astype(np.float32)
        uni = mask / np.maximum(mask.sum(1, keepdims=True), 1)
        p_uni[idx] = adapter.head(adapter.hidden(sub), mask, uni).numpy()
    acc = float(np.mean(probs.argmax(-1) == labels))
    acc_u = float(np.mean(p_uni.argmax(-1) == labels))
    return {
        "accuracy": acc,
        "accuracy_uniform": acc_u,
        "gap": acc - acc_u,
        "decision_changed": float(np.mean(p_uni.argmax(-1) != probs.argmax(-1))),
        "mean_abs_delta_p": float(metrics.mean_abs_diff(p_uni, probs).mean()),
    }
