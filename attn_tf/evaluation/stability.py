"""Attention stability: clean vs perturbed inputs, seeds, embedding noise.

For a clean input x and a perturbed x' whose tokens are aligned to x (each
perturbed token knows its clean index; inserted tokens are left out), the
attention of the aligned tokens is renormalised on both sides and compared:
JSD(alpha, alpha') (nats, <= ln 2), top-k overlap |top_k n top_k'| / k and
Kendall tau(alpha, alpha'); the predictions by TVD(p, p'). Reported separately
for flipped and unflipped predictions, beside the seed-variance floor (the
same statistics between two training runs on clean inputs) when a second run
is given.

`sensitivity_max` is Captum's embedding-noise version: max over draws of
delta ~ U(-r, r) of ||alpha(e + delta) - alpha(e)|| / ||alpha(e)||.
"""

import numpy as np
import tensorflow as tf

from attn_tf.evaluation import metrics
from attn_tf.evaluation.adapter import length_batches, real_lengths, trim

TOPK = (1, 3)


def _renorm(v):
    s = v.sum()
    return v / s if s > 0 else v


def aligned(att_clean, att_pert, align):
    """Attention of the aligned tokens, both renormalised: (clean part, perturbed part)."""
    align = np.asarray(align, int)
    n_p = min(len(align), len(att_pert))
    j = np.arange(n_p)
    ok = (align[:n_p] >= 0) & (align[:n_p] < len(att_clean))
    return _renorm(np.asarray(att_clean, np.float64)[align[:n_p][ok]]), _renorm(
        np.asarray(att_pert, np.float64)[j[ok]])


def compare(att_clean, att_pert, probs_clean, probs_pert, aligns, lengths_clean, lengths_pert):
    """Per-instance stability statistics (dict of arrays [N])."""
    n = len(aligns)
    out = {"jsd": np.full(n, np.nan), "tau": np.full(n, np.nan), "tvd": metrics.tvd(probs_clean, probs_pert)}
    for k in TOPK:
        out["top%d" % k] = np.full(n, np.nan)
    for i in range(n):
        a, b = aligned(att_clean[i, :lengths_clean[i]], att_pert[i, :lengths_pert[i]], aligns[i])
        if len(a) == 0:
            continue
        out["jsd"][i] = metrics.jsd(a, b)
        out["tau"][i] = metrics.kendall(a, b)[0]
        for k in TOPK:
            out["top%d" % k][i] = metrics.topk_overlap(a, b, k) if len(a) >= k else np.nan
    out["flipped"] = probs_clean.argmax(-1) != probs_pert.argmax(-1)
    return out


def summarize(per, subset=None):
    """Means of the per-instance statistics, overall and split by flipped/unflipped."""
    n = len(per["tvd"])
    subset = np.ones(n, bool) if subset is None else np.asarray(subset, bool)
    groups = {"all": subset, "flipped": subset & per["flipped"], "unflipped": subset & ~per["flipped"]}
    out = {}
    for g, sel in groups.items():
        out[g] = {"n": int(sel.sum())}
        for key in ["jsd", "tvd", "tau"] + ["top%d" % k for k in TOPK]:
            out[g][key] = metrics.summarize(per[key][sel])["mean"]
    return out


def seed_floor(adapter_a, ids_a, adapter_b, ids_b, tokens_a=None, tokens_b=None):
    """JSD of attention and TVD of predictions between two models on the same clean inputs.

    Rows whose token lists differ (different vectorizer settings) are skipped.
    """
    p_a, att_a = adapter_a.predict(ids_a)
    p_b, att_b = adapter_b.predict(ids_b)
    la, lb = real_lengths(ids_a), real_lengths(ids_b)
    same = la == lb
    if tokens_a is not None and tokens_b is not None:
        same &= np.array([ta == tb for ta, tb in zip(tokens_a, tokens_b)])
    aligns = [np.arange(n) for n in la]
    per = compare(att_a, att_b, p_a, p_b, aligns, la, lb)
    for key in ("jsd", "tau", "top1", "top3"):
        per[key] = np.where(same, per[key], np.nan)
    return {
        "n": int(same.sum()),
        "jsd": metrics.summarize(per["jsd"]),
        "tvd": metrics.summarize(per["tvd"][same]),
        "tau": metrics.summarize(per["tau"]),
        "top1": metrics.summarize(per["top1"]),
        "top3": metrics.summarize(per["top3"]),
        "prediction_agreement": float(np.mean(p_a.argmax(-1)[same] == p_b.argmax(-1)[same])) if same.any()
        else None,
    }


def _sensitivity_fn(adapter, draws, radius):
    def fn(ids, seed):
        emb = tf.cast(adapter.token_embeddings(ids), tf.float32)
        _, a0 = adapter.from_embeddings(emb, ids)
        b = tf.shape(ids)[0]
        noise = tf.random.stateless_uniform(tf.concat([[draws], tf.shape(emb)], 0), seed=seed,
                                            minval=-radius, maxval=radius)
        noisy = tf.reshape(emb[None] + noise, tf.concat([[draws * b], tf.shape(emb)[1:]], 0))
        _, a1 = adapter.from_embeddings(noisy, tf.tile(ids, [draws, 1]))
        return tf.cast(a0, tf.float32), tf.cast(a1, tf.float32)

    return tf.function(fn, input_signature=[tf.TensorSpec([None, None], tf.int32),
                                            tf.TensorSpec([2], tf.int32)], reduce_retracing=True)


def sensitivity_max(adapter, ids, draws=10, radius=0.02, seed=0, batch_size=64):
    """Captum-style sensitivity_max of the attention vector [N]."""
    cache = adapter.__dict__.setdefault("_eval_fns", {})
    key = ("sens", draws, radius)
    if key not in cache:
        cache[key] = _sensitivity_fn(adapter, draws, radius)
    fn = cache[key]
    ids = np.asarray(ids, np.int32)
    out = np.zeros(len(ids))
    for k, idx in enumerate(length_batches(real_lengths(ids), batch_size)):
        sub = trim(ids[idx])
        a0, a1 = fn(tf.constant(sub), tf.constant([seed, k], tf.int32))
        v0 = adapter.attention_vector(a0.numpy(), sub)
        v1 = adapter.attention_vector(a1.numpy(), np.tile(sub, (draws, 1))).reshape(draws, len(idx), -1)
        num = np.linalg.norm(v1 - v0[None], axis=-1).max(0)
        out[idx] = num / np.maximum(np.linalg.norm(v0, axis=-1), 1e-12)
    return out
