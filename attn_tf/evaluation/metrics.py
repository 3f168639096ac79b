"""Vectorised divergences and per-instance rank correlations.

Distributions are compared row-wise: arrays [..., K]. Natural logarithms, so
the Jensen-Shannon divergence lies in [0, ln 2].
"""

import math

import numpy as np
from scipy import stats

from attn_tf.metrics.attention_faithfulness import kendall  # noqa: F401  (one owner: the training curve uses it)

LN2 = math.log(2.0)
_EPS = 1e-12


def _normalise(p):
    p = np.clip(np.asarray(p, np.float64), 0.0, None)
    s = p.sum(axis=-1, keepdims=True)
    return np.divide(p, s, out=np.zeros_like(p), where=s > 0)


def kl(p, q):
    """KL(p || q) in nats, row-wise, with 0 log 0 = 0 (q clipped at 1e-12)."""
    p, q = _normalise(p), _normalise(q)
    return np.sum(np.where(p > 0, p * (np.log(np.maximum(p, _EPS)) - np.log(np.maximum(q, _EPS))), 0.0),
                  axis=-1)


def jsd(p, q):
    """Jensen-Shannon divergence in nats, row-wise, clipped to [0, ln 2]."""
    p, q = _normalise(p), _normalise(q)
    m = 0.5 * (p + q)
    return np.clip(0.5 * kl(p, m) + 0.5 * kl(q, m), 0.0, LN2)


def tvd(p, q):
    """Total variation distance 0.5 * sum |p - q|, row-wise (inputs used as given)."""
    return 0.5 * np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64)).sum(axis=-1)


def mean_abs_diff(p, q):
    """mean_c |p_c - q_c| (J&W's output difference), row-wise."""
    return np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64)).mean(axis=-1)


def topk_overlap(a, b, k):
    """|top_k(a) n top_k(b)| / k for two score vectors over the same positions."""
    a, b = np.asarray(a), np.asarray(b)
    k = int(min(k, len(a)))
    if k <= 0:
        return float("nan")
    ta = set(np.argsort(-a, kind="stable")[:k].tolist())
    tb = set(np.argsort(-b, kind="stable")[:k].tolist())
    return len(ta & tb) / k


def spearman(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def summarize(values):
    """mean, std, median, n over the finite values (NaN-safe)."""
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": None, "std": None, "median": None, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "median": float(np.median(v)), "n": int(v.size)}


def tau_summary(taus, pvalues):
    """J&W's statistics of per-instance Kendall taus: mean, std, fraction with p <= 0.05."""
    taus, pvalues = np.asarray(taus, np.float64), np.asarray(pvalues, np.float64)
    ok = np.isfinite(taus)
    out = summarize(taus)
    out["frac_p_le_0.05"] = float(np.mean(pvalues[ok] <= 0.05)) if ok.any() else None
    out["undefined"] = int((~ok).sum())
    return out
