"""Per-head statistics of one attention matrix ``[H, Q, K]`` (pure NumPy).

Every statistic is a mean over the query rows *that have mass* (row sum > 0;
rows of padding or of fully masked queries are skipped), computed on rows
renormalised to sum to 1 (stored weights are float16, so rows sum to 1 only
approximately). A head with no row with mass gets ``nan``.

* entropy: ``-sum_k p log p`` in nats (0 log 0 = 0).
* max_weight: the row maximum.
* mean_distance: ``sum_k p_k |q - k|`` in token positions; only for square
  self/causal layers (queries and keys are the same tokens), else ``nan``.
* first_token_mass: ``p_0``, the weight on key 0 (attention sink on BOS/CLS).

Pooling layers are stored as ``[1, 1, K]``: one head, one row.
"""

import numpy as np

STATISTICS = ("entropy", "max_weight", "mean_distance", "first_token_mass")


def head_statistics(attention, square=None):
    """Statistics of each head of one layer.

    Args:
      attention: array ``[H, Q, K]``.
      square: whether rows and columns index the same tokens (self/causal);
        default: ``Q == K``. `mean_distance` is ``nan`` when False.
    Returns:
      dict statistic name -> float64 array ``[H]`` (``nan`` where undefined).
    """
    a = np.asarray(attention, dtype=np.float64)
    if a.ndim != 3:
        raise ValueError("attention must be [heads, queries, keys], got shape %s" % (a.shape,))
    h, q, k = a.shape
    if square is None:
        square = q == k
    a = np.where(np.isfinite(a), a, 0.0)
    a = np.clip(a, 0.0, None)
    sums = a.sum(axis=-1, keepdims=True)                     # [H, Q, 1]
    has_mass = sums[..., 0] > 0                              # [H, Q]
    p = np.divide(a, sums, out=np.zeros_like(a), where=sums > 0)
    n_rows = has_mass.sum(axis=-1)                           # [H]

    def row_mean(values):                                    # values [H, Q]
        total = np.where(has_mass, values, 0.0).sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n_rows > 0, total / np.maximum(n_rows, 1), np.nan)

    plogp = np.zeros_like(p)
    np.multiply(p, np.log(p, out=np.zeros_like(p), where=p > 0), out=plogp, where=p > 0)
    result = {
        "entropy": row_mean(-plogp.sum(axis=-1)),
        "max_weight": row_mean(p.max(axis=-1) if k else np.zeros((h, q))),
        "first_token_mass": row_mean(p[..., 0] if k else np.zeros((h, q))),
    }
    if square and q == k:
        distance = np.abs(np.arange(q)[:, None] - np.arange(k)[None, :])   # [Q, K]
        result["mean_distance"] = row_mean((p * distance).sum(axis=-1))
    else:
        result["mean_distance"] = np.full(h, np.nan)
    return result


def layer_statistics(attention, kind):
    """`head_statistics` for a layer of the given header kind ("self", ...)."""
    return head_statistics(attention, square=kind in ("self", "causal"))
