"""Mask and softmax helpers shared by the attn_tf attention layers.

Conventions used everywhere in `attn_tf.layers`:

* Masks are boolean (or 0/1) tensors; `True` means "may attend / is a real
  token", `False` means "padding / not allowed".
* An attention mask has shape broadcastable to `[B, T, S]` (rows are query
  positions, columns are key positions).
* Masked positions get exactly `0.0` weight. A row whose positions are all
  masked gets an all-zero row (never NaN, never a uniform distribution).
* The softmax always runs in (at least) float32, also under mixed precision.

All functions use `keras.ops` only, so they run on any Keras backend.
"""

from keras import backend
from keras import ops

try:  # Keras 3 keeps the mask accessors private; keras is pinned.
    from keras.src.backend import get_keras_mask
    from keras.src.backend import set_keras_mask
except ImportError:  # pragma: no cover

    def get_keras_mask(x):
        """The Keras mask attached to `x`, or None."""
        return getattr(x, "_keras_mask", None)

    def set_keras_mask(x, mask):
        """Attaches `mask` to `x` as its Keras mask (None detaches)."""
        try:
            x._keras_mask = mask
        except AttributeError:
            pass

_LARGE_NEGATIVE = -1e9


def _softmax_dtype(dtype):
    """float32 for half precision inputs, the input dtype otherwise."""
    dtype = backend.standardize_dtype(dtype)
    if dtype in ("float16", "bfloat16"):
        return "float32"
    return dtype


def masked_softmax(scores, mask=None, axis=-1):
    """Softmax over `axis` that gives masked positions exactly zero weight.

    The softmax is computed in float32 (half precision scores are cast up) and
    the result is cast back to the dtype of `scores`. Positions where `mask` is
    `False` get weight `0.0`; a slice along `axis` that is fully masked gives
    all zeros (not NaN, not a uniform distribution).

    Args:
        scores: float tensor of unnormalised attention scores.
        mask: optional boolean (or 0/1) tensor broadcastable to `scores` (with
            numpy broadcasting rules, i.e. aligned on the trailing axes).
            `True` keeps a position, `False` masks it.
        axis: the axis to normalise over. Defaults to `-1`.

    Returns:
        A tensor with the shape and dtype of `scores`.

    Example:

    >>> w = masked_softmax(np.zeros((1, 3), "float32"), np.array([[True, True, False]]))
    >>> np.asarray(w)
    array([[0.5, 0.5, 0. ]], dtype=float32)
    """
    scores = ops.convert_to_tensor(scores)
    out_dtype = scores.dtype
    x = ops.cast(scores, _softmax_dtype(out_dtype))
    if mask is None:
        return ops.cast(ops.softmax(x, axis=axis), out_dtype)
    mask = ops.cast(mask, "bool")
    x = ops.where(mask, x, ops.cast(_LARGE_NEGATIVE, x.dtype))
    weights = ops.softmax(x, axis=axis)
    # Exactly zero for masked positions; also turns the uniform distribution
    # of a fully masked slice into zeros.
    weights = ops.where(mask, weights, ops.cast(0.0, weights.dtype))
    return ops.cast(weights, out_dtype)


NORMALIZERS = ("softmax", "sparsemax", "entmax15")

# Scores are shifted so the largest valid one is 0. Sparsemax gives zero to
# every score below max - 1, entmax-1.5 to every score below max - 2, so valid
# scores can be clipped at -_SPARSE_FLOOR and masked ones set below it without
# changing any weight or gradient. (A -1e9 fill would make the squared scores
# of entmax-1.5 lose all float32 precision in its cumulative sums.)
_SPARSE_FLOOR = 100.0


def check_normalizer(normalizer):
    """Returns `normalizer` if it is a known name; ValueError naming the choices otherwise."""
    if normalizer not in NORMALIZERS:
        raise ValueError(
            f"`normalizer` must be one of {', '.join(map(repr, NORMALIZERS))}. "
            f"Received: normalizer={normalizer!r}"
        )
    return normalizer


def _sparse_prepare(scores, mask, axis):
    """float32 scores moved to the last axis, shifted and clipped (see _SPARSE_FLOOR)."""
    scores = ops.convert_to_tensor(scores)
    x = ops.cast(scores, _softmax_dtype(scores.dtype))
    if mask is None:
        mask = ops.ones_like(x, dtype="bool")
    else:
        mask = ops.broadcast_to(ops.cast(mask, "bool"), ops.shape(x))
    if axis not in (-1, len(x.shape) - 1):
        x = ops.moveaxis(x, axis, -1)
        mask = ops.moveaxis(mask, axis, -1)
    neg_inf = ops.cast(float("-inf"), x.dtype)
    row_max = ops.max(ops.where(mask, x, neg_inf), axis=-1, keepdims=True)
    # A fully masked row has no valid maximum; its weights are zeroed at the end.
    row_max = ops.where(ops.isfinite(row_max), row_max, ops.zeros_like(row_max))
    z = ops.maximum(x - ops.stop_gradient(row_max), -_SPARSE_FLOOR)
    z = ops.where(mask, z, ops.cast(-2.0 * _SPARSE_FLOOR, x.dtype))
    return scores.dtype, z, mask


def _sparse_finish(p, mask, axis, out_dtype):
    p = ops.where(mask, p, ops.zeros_like(p))
    if axis not in (-1, len(p.shape) - 1):
        p = ops.moveaxis(p, -1, axis)
    return ops.cast(p, out_dtype)


def _support(z, cond_fn):
    """Boolean support of a sort-based threshold; no gradient flows through it.

    `cond_fn(z_sorted, rho)` says, for each k, whether the k-th largest score
    is in the support of the k-sized candidate; the support size is the
    number of True entries (the condition is monotone in k). Returns the
    boolean support in the original order.
    """
    zs = ops.stop_gradient(z)
    z_sorted = ops.flip(ops.sort(zs, axis=-1), axis=-1)
    n = ops.shape(z)[-1]
    rho = ops.cast(ops.arange(1, n + 1), z.dtype)
    k = ops.sum(ops.cast(cond_fn(z_sorted, rho), "int32"), axis=-1, keepdims=True)
    k = ops.maximum(k, 1)
    kth = ops.take_along_axis(z_sorted, k - 1, axis=-1)
    return ops.greater_equal(zs, kth)


def masked_sparsemax(scores, mask=None, axis=-1):
    """Sparsemax over `axis` (Martins & Astudillo, 2016), masked positions exactly zero.

    The Euclidean projection of the scores onto the probability simplex,
    `p = max(z - tau, 0)` with `tau` such that `sum(p) = 1`, computed exactly
    (sort-based). Low scores get exactly zero weight. The support is found
    without gradient; `tau` is then recomputed from the support, so autodiff
    gives the exact Jacobian `diag(s) - s s^T / |s|` (`s` the support
    indicator). Runs in float32; a fully masked slice gives all zeros.

    Args:
        scores: float tensor of unnormalised scores.
        mask: optional boolean (or 0/1) tensor broadcastable to `scores`;
            `True` keeps a position.
        axis: the axis to normalise over. Defaults to `-1`.

    Returns:
        A tensor with the shape and dtype of `scores`.

    Example:

    >>> np.asarray(masked_sparsemax(np.array([[2.0, 1.5, 0.0]], "float32")))
    array([[0.75, 0.25, 0.  ]], dtype=float32)
    """
    out_dtype, z, mask = _sparse_prepare(scores, mask, axis)

    def cond(z_sorted, rho):
        return 1.0 + rho * z_sorted > ops.cumsum(z_sorted, axis=-1)

    support = ops.cast(_support(z, cond), z.dtype)
    k = ops.sum(support, axis=-1, keepdims=True)
    tau = (ops.sum(z * support, axis=-1, keepdims=True) - 1.0) / k
    return _sparse_finish(ops.relu(z - tau), mask, axis, out_dtype)


def masked_entmax15(scores, mask=None, axis=-1):
    """Entmax with alpha = 1.5 (Peters, Niculae & Martins, 2019), masked positions exactly zero.

    `p = max(z / 2 - tau, 0) ** 2` with `tau` such that `sum(p) = 1`: between
    softmax (alpha = 1) and sparsemax (alpha = 2), sparse but smoother than
    sparsemax. Exact sort-based threshold (Algorithm 2 of the paper, as in the
    `entmax` package's `entmax15`); the support is found without gradient and
    `tau` recomputed from it in closed form, so autodiff gives the exact
    gradient. Runs in float32; a fully masked slice gives all zeros.

    Args and Returns: as for `masked_sparsemax`.

    Example:

    >>> np.round(np.asarray(masked_entmax15(np.array([[2.0, 1.0, -2.0]], "float32"))), 4)
    array([[0.8307, 0.1693, 0.    ]], dtype=float32)
    """
    out_dtype, z, mask = _sparse_prepare(scores, mask, axis)
    z = z / 2.0

    def cond(z_sorted, rho):
        mean = ops.cumsum(z_sorted, axis=-1) / rho
        mean_sq = ops.cumsum(z_sorted * z_sorted, axis=-1) / rho
        ss = rho * (mean_sq - mean * mean)
        delta = ops.maximum((1.0 - ss) / rho, 0.0)
        tau = mean - ops.sqrt(delta)
        return tau <= z_sorted

    support = ops.cast(_support(z, cond), z.dtype)
    k = ops.sum(support, axis=-1, keepdims=True)
    mean = ops.sum(z * support, axis=-1, keepdims=True) / k
    ss = ops.sum(support * ops.square(z - mean), axis=-1, keepdims=True)
    # On the true support 1 - ss > 0; the floor only guards the sqrt's gradient.
    tau = mean - ops.sqrt(ops.maximum((1.0 - ss) / k, 1e-12))
    return _sparse_finish(ops.square(ops.relu(z - tau)), mask, axis, out_dtype)


def masked_normalize(scores, mask=None, axis=-1, normalizer="softmax"):
    """Attention distribution by `normalizer`: "softmax", "sparsemax" or "entmax15".

    All three give masked positions exactly zero and a fully masked slice all
    zeros, and run in float32. See `masked_softmax`, `masked_sparsemax`,
    `masked_entmax15`.
    """
    check_normalizer(normalizer)
    if normalizer == "sparsemax":
        return masked_sparsemax(scores, mask, axis)
    if normalizer == "entmax15":
        return masked_entmax15(scores, mask, axis)
    return masked_softmax(scores, mask, axis)


def causal_mask(q_len, k_len=None):
    """Lower triangular boolean mask of shape `[q_len, k_len]`.

    Entry `[i, j]` is `True` when key position `j <= i` (query `i` may attend
    to key `j`). When `q_len != k_len` the triangle is aligned top-left, as in
    `keras.layers.MultiHeadAttention`.

    Args:
        q_len: number of query positions (int or scalar tensor).
        k_len: number of key positions. Defaults to `q_len`.

    Returns:
        A boolean tensor of shape `[q_len, k_len]`.

    Example:

    >>> np.asarray(causal_mask(2, 3))
    array([[ True, False, False],
           [ True,  True, False]])
    """
    if k_len is None:
        k_len = q_len
    rows = ops.expand_dims(ops.arange(q_len, dtype="int32"), -1)
    cols = ops.expand_dims(ops.arange(k_len, dtype="int32"), 0)
    return ops.greater_equal(rows, cols)


def compute_attention_mask(
    query,
    value,
    query_mask=None,
    value_mask=None,
    key_mask=None,
    attention_mask=None,
    use_causal_mask=False,
):
    """Merges padding masks, an explicit mask and a causal mask into one.

    * `query_mask` `[B, T]` becomes `[B, T, 1]` (padded query rows are fully
      masked, so their weights are all zero);
    * `value_mask` and `key_mask` `[B, S]` become `[B, 1, S]`;
    * `attention_mask` `[B, T, S]` (or broadcastable) is used as given;
    * `use_causal_mask=True` adds `causal_mask(T, S)` as `[1, T, S]`.

    All given masks are combined with a logical AND.

    Args:
        query: query tensor `[B, T, ...]` (only its length is used).
        value: value tensor `[B, S, ...]` (only its length is used).
        query_mask: optional `[B, T]` boolean mask.
        value_mask: optional `[B, S]` boolean mask.
        key_mask: optional `[B, S]` boolean mask.
        attention_mask: optional boolean mask broadcastable to `[B, T, S]`.
        use_causal_mask: whether to add a causal mask.

    Returns:
        `None` when no mask applies, otherwise a rank 3 boolean tensor
        broadcastable to `[B, T, S]` (dimensions no mask constrains are 1).
    """
    merged = None

    def _and(a, b):
        return b if a is None else ops.logical_and(a, b)

    if query_mask is not None:
        merged = _and(merged, ops.expand_dims(ops.cast(query_mask, "bool"), -1))
    if value_mask is not None:
        merged = _and(merged, ops.expand_dims(ops.cast(value_mask, "bool"), -2))
    if key_mask is not None:
        merged = _and(merged, ops.expand_dims(ops.cast(key_mask, "bool"), -2))
    if use_causal_mask:
        causal = causal_mask(ops.shape(query)[1], ops.shape(value)[1])
        merged = _and(merged, ops.expand_dims(causal, 0))
    if attention_mask is not None:
        merged = _and(merged, ops.cast(attention_mask, "bool"))
    return merged


def attention_weights(
    scores_fn,
    mask=None,
    attention_override=None,
    dtype=None,
    shape=None,
    normalizer="softmax",
):
    """The attention distribution: masked softmax (or sparse normaliser) of scores, or an override.

    Args:
        scores_fn: zero-argument callable returning the raw scores. It is not
            called when `attention_override` is given.
        mask: optional boolean mask broadcastable to the weights.
        attention_override: optional tensor used instead of the softmax of the
            scores, as given (no renormalisation); masked positions are still
            set to zero.
        dtype: dtype of the override (the layer's compute dtype).
        shape: shape of the weights; a broadcastable override (e.g. one
            distribution for all heads) is broadcast to it.
        normalizer: "softmax" (default), "sparsemax" or "entmax15" (see
            `masked_normalize`).

    Returns:
        The weights tensor.
    """
    if attention_override is None:
        return masked_normalize(scores_fn(), mask, normalizer=normalizer)
    weights = ops.convert_to_tensor(attention_override)
    if dtype is not None:
        weights = ops.cast(weights, dtype)
    if shape is not None:
        weights = ops.broadcast_to(weights, shape)
    if mask is not None:
        weights = ops.where(
            ops.cast(mask, "bool"), weights, ops.cast(0.0, weights.dtype)
        )
    return weights


def pop_keras_masks(*tensors):
    """Detaches the Keras masks of `tensors`; returns them for `restore`.

    Sublayers that do not support masking (e.g. `EinsumDense`) warn when their
    input carries a Keras mask. The attention layers consume the masks
    themselves, so they detach them for the duration of the call and put them
    back afterwards with `restore_keras_masks` (the caller's tensors are left
    as they were).
    """
    saved = []
    for t in tensors:
        m = None if t is None else get_keras_mask(t)
        if m is not None:
            set_keras_mask(t, None)
        saved.append((t, m))
    return saved


def restore_keras_masks(saved):
    """Re-attaches masks detached by `pop_keras_masks`."""
    for t, m in saved:
        if t is not None and m is not None:
            set_keras_mask(t, m)
