"""Faithfulness of attention as a few scalars: cheap enough to log during training.

The definitions are those of the evaluation (notes/interpretability.md), on a
small fixed sample; `attn_tf.evaluation` uses the same variant builders, so
the training curve and the report measure the same thing:

* tau(attention, gradient), tau(attention, leave-one-out): mean over examples
  of the per-example Kendall tau-b over the real tokens (Jain & Wallace 2019;
  gradient = sum_c |dp_c/de_t . e_t| with the attention held constant,
  LOO_t = mean_c |p_c(x without t) - p_c(x)|, the token deleted);
* ERASER AOPC comprehensiveness and sufficiency (DeYoung et al. 2020) of the
  attention ranking and of a random ranking: mean over bins k in
  {1, 5, 10, 20, 50}% of p_c(x) - p_c(x without the top-k%) and of
  p_c(x) - p_c(only the top-k%), c the predicted class;
* entropy ratio: H(attention) / log(number of real tokens), averaged
  (1 = uniform; sparse or peaked attention is lower).

Everything here takes callables, not a model, so it sits below models,
training and evaluation: `predict(ids) -> (probabilities [N, C], attention
[N, T])` and `gradient(ids) -> [N, T]` importances, on NumPy int32 ids that are
right-padded with 0. `gradient_importance_fn` builds the gradient callable from
a model's embedding and forward-from-embeddings functions.
"""

import numpy as np

from attn_tf.data import PAD_ID as PAD
from attn_tf.data import UNK_ID as UNK

ERASER_BINS = (1, 5, 10, 20, 50)
SCALARS = (
    "tau_attention_gradient",
    "tau_attention_loo",
    "aopc_comprehensiveness_attention",
    "aopc_comprehensiveness_random",
    "aopc_sufficiency_attention",
    "aopc_sufficiency_random",
    "entropy_ratio",
)


def real_lengths(ids):
    return np.asarray(np.asarray(ids) != PAD).sum(axis=1).astype(np.int64)


def kendall(a, b):
    """(tau-b, p-value) of two score vectors; NaNs for fewer than 2 items or a constant vector."""
    from scipy import stats

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan"), float("nan")
    res = stats.kendalltau(a, b)
    return float(res.statistic), float(res.pvalue)


def mean_row_tau(a, b, ids):
    """Mean over rows (NaN rows left out) of Kendall tau-b over each row's real tokens."""
    taus = [kendall(a[i, :n], b[i, :n])[0] for i, n in enumerate(real_lengths(ids))]
    taus = np.asarray(taus, np.float64)
    return float(np.nanmean(taus)) if np.isfinite(taus).any() else float("nan")


def loo_variants(ids, mode="delete"):
    """All single-token variants of every row: (variants [R, T], row index [R], position [R]).

    mode "delete": the token is removed and the rest shifts left; "unk": it is
    replaced by [UNK] (blank-out).
    """
    ids = np.asarray(ids, np.int32)
    n, t = ids.shape
    lengths = real_lengths(ids)
    rows, pos = np.nonzero(np.arange(t)[None, :] < lengths[:, None])
    if mode == "delete":
        j = np.arange(t)[None, :]
        src = j + (j >= pos[:, None])  # skip the deleted position
        padded = np.concatenate([ids, np.zeros((n, 1), np.int32)], axis=1)
        variants = padded[rows[:, None], src]
    elif mode == "unk":
        variants = ids[rows].copy()
        variants[np.arange(len(rows)), pos] = UNK
    else:
        raise ValueError("mode must be 'delete' or 'unk', got %r" % mode)
    return variants.astype(np.int32), rows, pos


def topk_count(lengths, pct):
    """Tokens in the top-k%: ceil(k/100 * n), at least one."""
    return np.maximum(1, np.ceil(np.asarray(lengths) * pct / 100.0 - 1e-9)).astype(int)


def eraser_variants(ids, scores, bins=ERASER_BINS, rng=None):
    """Comprehensiveness and sufficiency inputs: two arrays [N, len(bins), T] (ties broken at random)."""
    ids = np.asarray(ids, np.int32)
    n, t = ids.shape
    mask = ids != PAD
    lengths = mask.sum(1)
    tie = (rng or np.random.default_rng(0)).random((n, t)) * 1e-9
    s = np.where(mask, np.asarray(scores, np.float64) + tie, -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(t)[None, :].repeat(n, 0), axis=1)
    comp = np.zeros((n, len(bins), t), np.int32)
    suff = np.zeros((n, len(bins), t), np.int32)
    pos = np.arange(t)[None, :]
    for j, pct in enumerate(bins):
        k = topk_count(lengths, pct)[:, None]
        top = (rank < k) & mask
        rest = (~top) & mask
        for target, sel in ((comp, rest), (suff, top)):
            # stable compaction of the selected tokens to the left, order kept
            key = np.where(sel, pos, t + pos)
            o = np.argsort(key, axis=1, kind="stable")
            packed = np.take_along_axis(ids, o, axis=1)
            packed = np.where(np.take_along_axis(sel, o, axis=1), packed, PAD)
            target[:, j] = packed
    return comp, suff


def entropy_ratio(attention, ids):
    """Mean over rows with >= 2 real tokens of H(attention) / log(n)."""
    att = np.asarray(attention, np.float64)
    n = real_lengths(ids)
    h = -np.sum(np.where(att > 0, att * np.log(np.maximum(att, 1e-300)), 0.0), axis=1)
    keep = n >= 2
    if not keep.any():
        return float("nan")
    return float(np.mean(h[keep] / np.log(n[keep])))


def faithfulness_scalars(predict, gradient, ids, bins=ERASER_BINS, seed=0):
    """The `SCALARS` of one sample: a dict name -> float.

    Costs one gradient pass over `ids` and one forward pass over
    sum(lengths) LOO variants plus 4 * len(bins) * N ERASER variants.
    """
    ids = np.asarray(ids, np.int32)
    n = len(ids)
    probs, att = predict(ids)
    pred = probs.argmax(-1)
    grad = np.asarray(gradient(ids), np.float64)
    rng = np.random.default_rng(seed)
    random_scores = rng.random(ids.shape)

    variants, rows, pos = loo_variants(ids)
    comp_a, suff_a = eraser_variants(ids, att, bins, rng)
    comp_r, suff_r = eraser_variants(ids, random_scores, bins, rng)
    t = ids.shape[1]
    er = np.concatenate([v.reshape(-1, t) for v in (comp_a, suff_a, comp_r, suff_r)])
    p_all, _ = predict(np.concatenate([variants, er]) if len(variants) else er)
    p_loo, p_er = p_all[:len(variants)], p_all[len(variants):]

    loo = np.zeros(ids.shape, np.float64)
    loo[rows, pos] = np.abs(p_loo - probs[rows]).mean(axis=-1)
    kk = len(bins)
    p_c = probs[np.arange(n), pred]
    target = np.tile(np.repeat(pred, kk), 4)
    drop = (np.repeat(p_c, kk)[None, :].repeat(4, 0).reshape(-1) - p_er[np.arange(len(er)), target]).reshape(4, n, kk)
    return {
        "tau_attention_gradient": mean_row_tau(att, grad, ids),
        "tau_attention_loo": mean_row_tau(att, loo, ids),
        "aopc_comprehensiveness_attention": float(drop[0].mean()),
        "aopc_sufficiency_attention": float(drop[1].mean()),
        "aopc_comprehensiveness_random": float(drop[2].mean()),
        "aopc_sufficiency_random": float(drop[3].mean()),
        "entropy_ratio": entropy_ratio(att, ids),
    }


def gradient_importance_fn(embed, from_embeddings, num_classes, max_classes=10):
    """A compiled `ids [B, T] -> [B, T]` J&W gradient importance (rows not normalised).

    embed(ids) -> token embeddings [B, T, D]; from_embeddings(emb, ids) ->
    (probabilities, attention), the attention held constant (stop-gradient)
    inside it. With more than `max_classes` classes only the predicted class
    is used (one backward pass instead of C).
    """
    import tensorflow as tf

    all_classes = num_classes <= max_classes

    def fn(ids):
        emb = tf.cast(embed(ids), tf.float32)
        if all_classes:
            # One backward pass for all classes: the batch is tiled C times and copy c contributes
            # p_c. The same numbers as C separate backward passes, and a graph half the size for
            # two classes (tracing the BiLSTM's backward loop is most of the first measurement's cost).
            c = num_classes
            b = tf.shape(ids)[0]
            tiled_ids = tf.tile(ids, [c, 1])
            tiled = tf.tile(emb, [c, 1, 1])
            with tf.GradientTape() as tape:
                tape.watch(tiled)
                probs = tf.cast(from_embeddings(tiled, tiled_ids)[0], tf.float32)  # [C*B, C]
                pick = tf.one_hot(tf.repeat(tf.range(c), b), c)
                out = tf.reduce_sum(probs * pick)
            g = tape.gradient(out, tiled)
            per = tf.abs(tf.reduce_sum(g * tiled, axis=-1))  # [C*B, T]
            return tf.reduce_sum(tf.reshape(per, [c, b, -1]), axis=0)
        with tf.GradientTape() as tape:
            tape.watch(emb)
            probs = tf.cast(from_embeddings(emb, ids)[0], tf.float32)
            pick = tf.one_hot(tf.argmax(probs, -1), num_classes)
            out = tf.reduce_sum(probs * tf.stop_gradient(pick))
        return tf.abs(tf.reduce_sum(tape.gradient(out, emb) * emb, axis=-1))

    return tf.function(fn, input_signature=[tf.TensorSpec([None, None], tf.int32)], reduce_retracing=True)
