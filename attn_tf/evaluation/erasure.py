"""Erasure: at the attention layer (Serrano & Smith 2019) and at the input (ERASER).

Attention layer (hidden states fixed, BiLSTM): a set S of weights is zeroed
and the rest renormalised, alpha * 1[t not in S] / sum_{t not in S} alpha_t.

* `single_weight`: delta JS = JS(p, p without the top weight) - JS(p, p
  without a random other weight), and the decision-flip rates of both.
* `many_weights`: weights are removed in the order of attention, random,
  gradient dp_c/dalpha and alpha * dp_c/dalpha until the decision flips; the
  fraction of tokens removed (instances that flip) and the fraction that
  never flip (at least one weight is always kept).

Input level (DeYoung et al. 2020), for any ranking s of the tokens:
comprehensiveness(k) = p_c(x) - p_c(x without the top-k% tokens),
sufficiency(k) = p_c(x) - p_c(only the top-k% tokens, in their order),
k in {1, 5, 10, 20, 50}%, top-k% = ceil(k/100 * n) tokens (at least one).
AOPC = mean over the 5 bins (the scorer's |B| convention); the paper's
|B|+1 convention (k = 0 adds a 0 term) is reported as `aopc_b_plus_1`.
"""

import numpy as np
import tensorflow as tf

from attn_tf.data import PAD_ID
from attn_tf.evaluation import metrics
from attn_tf.evaluation.adapter import length_batches, real_lengths, trim
# One owner of the ERASER bins and variants: the training-curve scalars use them too.
from attn_tf.metrics.attention_faithfulness import ERASER_BINS
from attn_tf.metrics.attention_faithfulness import eraser_variants

_ORDERS = ("attention", "random", "gradient", "attention_x_gradient")


def _renormalised(attention, keep):
    a = attention * keep
    s = a.sum(-1, keepdims=True)
    return np.divide(a, s, out=np.zeros_like(a), where=s > 0)


def _attention_gradient(adapter, hidden, mask, attention, target):
    """dp_c/dalpha [B, T] at the model's attention."""
    att = tf.convert_to_tensor(attention, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(att)
        p = adapter.head(hidden, mask, att)
        out = tf.reduce_sum(p * tf.one_hot(target, adapter.num_classes))
    return tape.gradient(out, att).numpy()


def single_weight(adapter, ids, probs, attention, seed=0, batch_size=256):
    rng = np.random.default_rng(seed)
    ids = np.asarray(ids, np.int32)
    n = len(ids)
    d_top, d_rand = np.full(n, np.nan), np.full(n, np.nan)
    flip_top, flip_rand = np.zeros(n, bool), np.zeros(n, bool)
    pred = probs.argmax(-1)
    for idx in length_batches(real_lengths(ids), batch_size):
        sub = trim(ids[idx])
        b, t = sub.shape
        mask = sub != PAD_ID
        lengths = mask.sum(1)
        ok = lengths >= 2
        att = attention[idx, :t]
        top = att.argmax(1)
        # a random real position other than the top one
        r = (top + 1 + np.floor(rng.random(b) * np.maximum(lengths - 1, 1)).astype(int)) % np.maximum(lengths, 1)
        keep_top, keep_rand = mask.astype(np.float64), mask.astype(np.float64)
        keep_top[np.arange(b), top] = 0
        keep_rand[np.arange(b), r] = 0
        hidden = adapter.hidden(sub)
        both = np.concatenate([_renormalised(att, keep_top), _renormalised(att, keep_rand)])
        p = adapter.head(tf.concat([hidden, hidden], 0), np.concatenate([mask, mask]), both).numpy()
        p_top, p_rand = p[:b], p[b:]
        base = probs[idx]
        d_top[idx] = np.where(ok, metrics.jsd(base, p_top), np.nan)
        d_rand[idx] = np.where(ok, metrics.jsd(base, p_rand), np.nan)
        flip_top[idx] = ok & (p_top.argmax(-1) != pred[idx])
        flip_rand[idx] = ok & (p_rand.argmax(-1) != pred[idx])
    delta = d_top - d_rand
    valid = np.isfinite(delta)
    return {
        "delta_js": delta,
        "summary": {
            "delta_js": metrics.summarize(delta),
            "frac_delta_js_positive": float(np.mean(delta[valid] > 0)) if valid.any() else None,
            "flip_rate_top": float(flip_top[valid].mean()) if valid.any() else None,
            "flip_rate_random": float(flip_rand[valid].mean()) if valid.any() else None,
        },
    }


def many_weights(adapter, ids, probs, attention, seed=0, token_budget=131072, orders=_ORDERS):
    """Fraction of tokens removed (at the attention layer) before the decision flips, per order."""
    rng = np.random.default_rng(seed)
    ids = np.asarray(ids, np.int32)
    n = len(ids)
    pred = probs.argmax(-1)
    frac = {o: np.full(n, np.nan) for o in orders}
    t_full = ids.shape[1]
    for idx in length_batches(real_lengths(ids), max(1, token_budget // (t_full * t_full))):
        sub = trim(ids[idx])
        b, t = sub.shape
        mask = sub != PAD_ID
        lengths = mask.sum(1)
        att = attention[idx, :t].astype(np.float64)
        hidden = adapter.hidden(sub)
        grad = _attention_gradient(adapter, hidden, mask.astype(np.float32), att, pred[idx])
        scores = {
            "attention": att,
            "random": rng.random((b, t)),
            "gradient": grad,
            "attention_x_gradient": att * grad,
        }
        h_rep = tf.repeat(hidden, t, axis=0)
        m_rep = np.repeat(mask, t, axis=0)
        for o in orders:
            s = np.where(mask, scores[o], -np.inf)
            order = np.argsort(-s, axis=1, kind="stable")
            rank = np.empty_like(order)
            np.put_along_axis(rank, order, np.arange(t)[None, :].repeat(b, 0), axis=1)
            # row (i, k): the top k+1 weights removed, k = 0..t-1
            keep = (rank[:, None, :] > np.arange(t)[None, :, None]) & mask[:, None, :]
            new = _renormalised(att[:, None, :], keep).reshape(b * t, t)
            p = adapter.head(h_rep, m_rep, new).numpy().reshape(b, t, -1)
            removed = np.arange(1, t + 1)[None, :]
            valid = removed < lengths[:, None]  # at least one weight kept
            flipped = (p.argmax(-1) != pred[idx][:, None]) & valid
            first = np.where(flipped.any(1), flipped.argmax(1) + 1, 0)
            frac[o][idx] = np.where(first > 0, first / np.maximum(lengths, 1), np.nan)
            frac[o][idx[lengths < 2]] = np.nan
    lengths_all = real_lengths(ids)
    eligible = lengths_all >= 2
    summary = {}
    for o in orders:
        f = frac[o][eligible]
        summary[o] = {
            "fraction_removed": metrics.summarize(f),
            "never_flip": float(np.mean(~np.isfinite(f))) if len(f) else None,
        }
    return {"fraction": frac, "summary": summary}


def eraser(adapter, ids, probs, rankings, bins=ERASER_BINS, seed=0, batch_size=512):
    """Comprehensiveness, sufficiency and AOPC for each ranking (dict name -> scores [N, T])."""
    ids = np.asarray(ids, np.int32)
    n, t = ids.shape
    pred = probs.argmax(-1)
    p_c = probs[np.arange(n), pred]
    rng = np.random.default_rng(seed)
    out = {}
    for name, scores in rankings.items():
        comp, suff = eraser_variants(ids, scores, bins, rng)
        allv = np.concatenate([comp.reshape(-1, t), suff.reshape(-1, t)])
        p, _ = adapter.predict(allv, batch_size=batch_size)
        kk = len(bins)
        pc_var = p[np.arange(len(allv)), np.tile(np.repeat(pred, kk), 2)]
        c = p_c[:, None] - pc_var[: n * kk].reshape(n, kk)
        s = p_c[:, None] - pc_var[n * kk:].reshape(n, kk)
        out[name] = {
            "comprehensiveness": {str(b): float(c[:, j].mean()) for j, b in enumerate(bins)},
            "sufficiency": {str(b): float(s[:, j].mean()) for j, b in enumerate(bins)},
            "aopc_comprehensiveness": float(c.mean()),
            "aopc_sufficiency": float(s.mean()),
            "aopc_comprehensiveness_b_plus_1": float(c.sum(1).mean() / (kk + 1)),
            "aopc_sufficiency_b_plus_1": float(s.sum(1).mean() / (kk + 1)),
            "per_instance_aopc_comprehensiveness": c.mean(1),
        }
    return out


def eraser_summary(result):
    return {name: {k: v for k, v in r.items() if not k.startswith("per_instance")} for name, r in result.items()}


def bins_note(bins=ERASER_BINS):
    return "top-k%% = ceil(k/100 * n) tokens, k in %s; AOPC divided by |B| = %d" % (
        ", ".join(map(str, bins)), len(bins))

