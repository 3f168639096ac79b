"""Server-side downsampling of attention matrices for the tab's grid (pure NumPy).

At 12 layers x 12 heads x 512 tokens a step holds 38 M weights (150 MB as the
float32 `/layer` route sends them); the grid draws each matrix in ~50-110 CSS
pixels. `/grid` therefore sends, per layer, every head (and the mean/max over
heads) pooled to at most `size` x `size` cells, 8-bit, normalised per matrix:
~13 x 64 x 64 bytes instead of 12 x 512 x 512 x 4.

* Pooling is the block **maximum** (bins of near-equal width,
  ``np.linspace`` edges), so a single strong weight stays visible in the
  thumbnail (a block mean would fade it by the block area). The enlarged
  matrix is always drawn from full-resolution data.
* Each matrix is sent as ``round(255 * pooled / max)`` with its full-resolution
  ``max``; the client recovers ``value ~= q / 255 * max`` (for the fixed 0-1
  colour scale) and draws the "0 - max of each matrix" scale directly.
* A matrix no larger than `size` in a dimension is not pooled in it.
"""

import numpy as np

DEFAULT_SIZE = 64
MIN_SIZE = 4
MAX_SIZE = 512
AGGREGATES = ("mean", "max", "none")


_HALF_TO_FLOAT = None


def as_float32(array):
    """`array` as float32; float16 through a 64 Ki-entry table.

    NumPy's float16 -> float32 cast takes a slow path for subnormal halves,
    and softmax attention is full of them (weights below 6e-5): 40-80 ms for
    one 12 x 512 x 512 layer here, against ~6 ms for the table lookup (the
    table is the cast itself, so the result is identical).
    """
    global _HALF_TO_FLOAT
    a = np.asarray(array)
    if a.dtype != np.float16:
        return a.astype(np.float32, copy=False)
    if _HALF_TO_FLOAT is None:
        _HALF_TO_FLOAT = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
    return np.take(_HALF_TO_FLOAT, np.ascontiguousarray(a).view(np.uint16))


def _edges(n, size):
    """Start indices of `min(n, size)` near-equal bins over ``range(n)``."""
    bins = min(n, size)
    return np.linspace(0, n, bins + 1).astype(np.int64)[:-1]


def block_max(matrices, size):
    """``[N, Q, K] -> [N, q, k]`` block maxima, ``q = min(Q, size)``, ``k = min(K, size)``."""
    a = np.asarray(matrices)
    if a.ndim != 3:
        raise ValueError("expected [N, Q, K] matrices, got shape %s" % (a.shape,))
    n, q, k = a.shape
    if q == 0 or k == 0:
        return a[:, : min(q, size), : min(k, size)]
    if q > size:
        if q % size == 0:  # equal bins: a reshape is ~3x faster than reduceat
            a = a.reshape(n, size, q // size, a.shape[2]).max(axis=2)
        else:
            a = np.maximum.reduceat(a, _edges(q, size), axis=1)
    if k > size:
        if k % size == 0:
            a = a.reshape(n, a.shape[1], size, k // size).max(axis=3)
        else:
            a = np.maximum.reduceat(a, _edges(k, size), axis=2)
    return a


def aggregate_heads(layer, mode):
    """``[H, Q, K] -> [Q, K]``: mean or max over heads (float32)."""
    a = np.asarray(layer, dtype=np.float32)
    if mode == "mean":
        return a.mean(axis=0) if a.shape[0] else np.zeros(a.shape[1:], np.float32)
    if mode == "max":
        return a.max(axis=0) if a.shape[0] else np.zeros(a.shape[1:], np.float32)
    raise ValueError("aggregate must be mean or max, got %r" % (mode,))


def select_head(layer, head):
    """One matrix ``[Q, K]`` of a layer: head index (int) or "mean"/"max" over heads."""
    if head in ("mean", "max"):
        return aggregate_heads(as_float32(layer), head)
    return np.asarray(layer)[int(head)]


def layer_thumbnails(layer, size=DEFAULT_SIZE, aggregate="mean"):
    """Thumbnails of every head of one layer (plus the aggregate unless "none").

    Args:
      layer: ``[H, Q, K]`` weights (any float dtype).
      size: the largest thumbnail side in cells.
      aggregate: "mean", "max" (appended as matrix H) or "none".
    Returns:
      (uint8 ``[N, q, k]``, float32 ``[N]`` full-resolution maxima), N = H or
      H + 1. Non-finite weights count as 0; a matrix whose max is <= 0 is all 0.
    """
    heads, agg = split_aggregate(layer, aggregate)
    pooled = block_max(heads, size)
    if agg is not None:
        # Pooled apart and joined small: no [H + 1, Q, K] copy of the layer.
        pooled = np.concatenate([pooled, block_max(agg[None], size)])
    if heads.shape[1] and heads.shape[2]:
        maxima = pooled.reshape(pooled.shape[0], -1).max(axis=1)  # = the full matrices' max
    else:
        maxima = np.zeros(pooled.shape[0], np.float32)
    safe = np.where(maxima > 0, maxima, 1.0).astype(np.float32)[:, None, None]
    q = np.rint(np.clip(pooled / safe, 0.0, 1.0) * 255.0).astype(np.uint8)
    return q, maxima.astype(np.float32)


def split_aggregate(layer, aggregate):
    """(float32 heads ``[H, Q, K]``, aggregate ``[Q, K]`` or None for "none").

    Non-finite weights (never written by attn-tf) become 0; checked with two
    reductions (NaN and +inf propagate through max, -inf shows in min) instead
    of a per-element mask, since this runs per /grid request.
    """
    a = as_float32(layer)
    if a.ndim != 3:
        raise ValueError("expected a [H, Q, K] layer, got shape %s" % (a.shape,))
    if aggregate not in AGGREGATES:
        raise ValueError("aggregate must be one of %s, got %r" % (", ".join(AGGREGATES), aggregate))
    if a.size and not (np.isfinite(a.max()) and np.isfinite(a.min())):
        a = np.where(np.isfinite(a), a, 0.0).astype(np.float32)
    agg = None if aggregate == "none" else aggregate_heads(a, aggregate)
    return a, agg


def with_aggregate(layer, aggregate):
    """float32 ``[H (+1), Q, K]``: the layer's heads, then the aggregate unless "none"."""
    heads, agg = split_aggregate(layer, aggregate)
    return heads if agg is None else np.concatenate([heads, agg[None]])


def relative_entropy(matrices, kind):
    """Per matrix: mean over rows with mass of ``H(row) / log(n)`` (1 = uniform, 0 = one key).

    ``n`` is the number of keys a row may attend to: K, or ``min(K, i + 1)``
    for row i of a causal layer; rows with ``n < 2`` or no mass are skipped.
    The same definition as the tab's `relativeEntropy` (views/heatmaps.js),
    computed here at full resolution because the grid only gets thumbnails.
    With S the row sum, ``H = sum(entr(a)) / S + log S`` (entr = -a log a):
    one pass of logarithms over the weights, no normalised copy.
    Returns float64 ``[N]``, ``nan`` where no row counts.
    """
    from scipy.special import entr

    a = as_float32(matrices)
    _, q, k = a.shape
    if a.size and (not np.isfinite(a.sum(dtype=np.float64)) or a.min() < 0):
        a = np.clip(np.where(np.isfinite(a), a, 0.0), 0.0, None).astype(np.float32)
    if kind == "causal":
        n = np.minimum(k, np.arange(q) + 1)
        a = a * (np.arange(k)[None, :] < n[:, None])
    else:
        n = np.full(q, k)
    sums = a.sum(axis=-1, dtype=np.float64)                           # [N, Q]
    plogp = entr(a).sum(axis=-1, dtype=np.float64)                    # sum -a log a
    with np.errstate(divide="ignore", invalid="ignore"):
        h = plogp / sums + np.log(sums)
        rel = h / np.log(n)[None, :]
    counts = (sums > 0) & (n >= 2)[None, :]
    total = np.where(counts, rel, 0.0).sum(axis=-1)
    rows = counts.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rows > 0, total / np.maximum(rows, 1), np.nan)
