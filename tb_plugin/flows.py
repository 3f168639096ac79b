"""Attention rollout and attention flow (Abnar & Zuidema, ACL 2020).

Pure NumPy/SciPy functions; no TensorBoard imports. Conventions:

* A layer is an array ``[H, T, T]``; rows are queries (attending from),
  columns are keys (attended to). All layers of a model share one token set
  (square self/causal attention). Layers are given bottom (closest to the
  input) first.
* The residual connection is modelled as in the paper: per layer the heads are
  fused (``mean``, ``max`` or ``min``), then ``A' = 0.5 * fused + 0.5 * I`` and
  every row is renormalised to sum to 1 (keepdims, so each row is divided by
  its own sum; vit-explain#16 is the bug this avoids).
* Rollout: ``R_1 = A'_1``, ``R_l = A'_l @ R_{l-1}``. Row i of ``R_L`` is the
  importance of every input token for position i at the top layer.
* Flow: the layered graph with nodes (layer l, token i), l = 0..L, and an edge
  (l-1, j) -> (l, i) of capacity ``A'_l[i, j]``. The flow of input token j for
  output position p is the maximum flow from node (0, j) to node (L, p).
  SciPy's max-flow needs integer capacities, so they are ``round(A' * scale)``.

``exclude_first`` (attention sinks: BOS/CLS tokens that collect most of the
attention) is applied to the *result*, not inside the layers: the
contributions of input token 0 are set to 0 and each row (rollout) or the
vector (flow) is renormalised over the remaining tokens. The paths through
token 0 at intermediate layers are kept; the answer reads "of the importance
that does not end at token 0, which share goes to each other token". A row
with no mass left (e.g. position 0 of a causal model, which sees only token 0)
stays all zeros.
"""

import os

import numpy as np

HEAD_FUSIONS = ("mean", "max", "min")

# Limits of `attention_flow`. One flow request solves T max-flow problems on a
# graph of ~L*T^2 edges, so its cost grows ~L*T^3: both the product
# layers*tokens (the contract's cap) and the token count are limited.
# Measured on the 2-core development box (SciPy Dinic, 8 heads, float16
# weights, one whole `attention_flow` call for one position), idle box:
#   L=12, T=128 (1536): 0.25-1.1 s  (causal fastest, random/softmax slowest)
#   L=6,  T=256 (1536): 0.9-2.6 s   (refused: over FLOW_MAX_TOKENS)
#   L=4, T=384: 6.2 s; L=3, T=512: 10 s; L=2, T=768: 12 s
# and with the box loaded (load average ~7.5 on 2 cores): 12x128 1.6-4.5 s,
# 8x192 3.8-4.4 s, 6x256 2.9-5.3 s. 8x192 costs ~1.5x 12x128, so the worst
# allowed request stays near 1.7 s on an idle box.
FLOW_CAP = 1536
FLOW_MAX_TOKENS = 192

# Beyond the exact caps and up to these, `flow` solves the max-flow exactly on
# a *sparsified* graph (`sparse_attention_flow`): the middle layers keep only
# the entries among the `top_k` largest of their row or column, `top_k`
# chosen so the graph holds about SPARSE_EDGE_BUDGET edges. Dropping edges
# can only lower a max-flow, and the trivial cuts bound it from above; where
# they meet (on dense softmax attention: nearly always) the value is proven
# exact. Checked against the exact solver in tests/tb_plugin/
# test_plugin_flows.py. 12 x 512 is BERT-base at 512 tokens.
SPARSE_FLOW_CAP = 12 * 512
SPARSE_FLOW_MAX_TOKENS = 512
SPARSE_EDGE_BUDGET = 96 * 1024
SPARSE_MIN_TOP_K = 4
# Threads solving the per-token max-flows of one sparse flow request.
FLOW_THREADS = max(1, min(4, os.cpu_count() or 1))

DEFAULT_SCALE = 1e6


def fuse_heads(attention, mode="mean"):
    """Fuses the heads of one layer: ``[H, Q, K] -> [Q, K]``.

    Args:
      attention: array ``[H, Q, K]``.
      mode: ``"mean"``, ``"max"`` or ``"min"`` over the heads.
    """
    from tb_plugin.thumbnails import as_float32

    # Stored weights are float16: cast through a table (NumPy's own cast is
    # slow on subnormals; the values are the same), reduce in float64.
    a = np.asarray(attention)
    a = as_float32(a) if a.dtype == np.float16 else a.astype(np.float64, copy=False)
    if a.ndim != 3:
        raise ValueError("attention must be [heads, queries, keys], got shape %s" % (a.shape,))
    if mode == "mean":
        return a.mean(axis=0, dtype=np.float64)
    if mode == "max":
        return a.max(axis=0).astype(np.float64)
    if mode == "min":
        return a.min(axis=0).astype(np.float64)
    raise ValueError("head_fusion must be one of %s, got %r" % (", ".join(HEAD_FUSIONS), mode))


def _normalise_rows(m):
    sums = m.sum(axis=-1, keepdims=True)
    return np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)


def residual_attention(fused):
    """``A' = 0.5 * fused + 0.5 * I`` with rows renormalised to sum to 1."""
    fused = np.asarray(fused, dtype=np.float64)
    if fused.ndim != 2 or fused.shape[0] != fused.shape[1]:
        raise ValueError("residual attention needs a square [T, T] matrix, got %s" % (fused.shape,))
    fused = np.where(np.isfinite(fused), fused, 0.0)
    fused = np.clip(fused, 0.0, None)
    return _normalise_rows(0.5 * fused + 0.5 * np.eye(fused.shape[0]))


def _check_layers(layers):
    if len(layers) == 0:
        raise ValueError("at least one layer is needed")
    t = None
    for i, layer in enumerate(layers):
        shape = np.shape(layer)
        if len(shape) != 3 or shape[1] != shape[2]:
            raise ValueError("layer %d: expected [H, T, T], got shape %s" % (i, shape))
        if t is None:
            t = shape[1]
        elif shape[1] != t:
            raise ValueError("layer %d has %d tokens, layer 0 has %d" % (i, shape[1], t))
    return t


def _residual_layers(layers, head_fusion):
    _check_layers(layers)
    return [residual_attention(fuse_heads(layer, head_fusion)) for layer in layers]


def _exclude_first(m):
    m = np.array(m, dtype=np.float64, copy=True)
    m[..., 0] = 0.0
    if m.ndim == 1:
        total = m.sum()
        return m / total if total > 0 else m
    return _normalise_rows(m)


def rollout(layers, head_fusion="mean", exclude_first=False):
    """Attention rollout: ``[T, T]``, row i = importance of inputs for position i.

    Args:
      layers: list of ``[H, T, T]`` arrays, bottom layer first.
      head_fusion: ``"mean"``, ``"max"`` or ``"min"``.
      exclude_first: drop input token 0 from the result (see module doc).
    Returns:
      float64 ``[T, T]``; every row sums to 1 (except rows left with no mass
      by ``exclude_first``, which are all zeros).
    """
    result = None
    for a in _residual_layers(layers, head_fusion):
        result = a if result is None else a @ result
    if exclude_first:
        result = _exclude_first(result)
    return result


def check_flow_size(num_layers, num_tokens, cap=None, max_tokens=None):
    """Raises ValueError if ``num_layers * num_tokens`` exceeds the cap.

    The message names the caps (the plugin shows it to the user).
    """
    cap = FLOW_CAP if cap is None else cap
    max_tokens = FLOW_MAX_TOKENS if max_tokens is None else max_tokens
    if num_layers * num_tokens > cap or num_tokens > max_tokens:
        raise ValueError(
            "attention flow is limited to layers*tokens <= %d and tokens <= %d "
            "(got %d layers * %d tokens = %d); use rollout instead"
            % (cap, max_tokens, num_layers, num_tokens, num_layers * num_tokens)
        )


def _flow_graph(capacities, position, scale):
    """CSR graph of the layered network, and the sink node id.

    Node (l, i) has id ``l * T + i``. The top layer keeps only the node
    `position` (the others cannot reach the sink).
    """
    from scipy import sparse

    num_layers = len(capacities)
    t = capacities[0].shape[0]
    rows, cols, caps = [], [], []
    for l, a in enumerate(capacities, start=1):
        c = np.rint(np.asarray(a, dtype=np.float64) * scale)
        if l == num_layers:
            c = c[position:position + 1]
            q_index = np.array([position])
        else:
            q_index = np.arange(t)
        qi, kj = np.nonzero(c > 0)
        rows.append((l - 1) * t + kj)       # from key j at layer l-1
        cols.append(l * t + q_index[qi])    # to query i at layer l
        caps.append(c[qi, kj])
    n = (num_layers + 1) * t
    rows = np.concatenate(rows)
    cols = np.concatenate(cols)
    caps = np.concatenate(caps)
    if caps.size and caps.max() >= 2**31:
        raise ValueError("scale %g makes capacities overflow int32" % scale)
    graph = sparse.csr_array(
        (caps.astype(np.int32), (rows.astype(np.int32), cols.astype(np.int32))), shape=(n, n)
    )
    graph.sum_duplicates()
    return graph, num_layers * t + position


def max_flow_values(capacities, position, scale=DEFAULT_SCALE):
    """Raw max-flow from every input node (0, j) to the output node (L, position).

    Args:
      capacities: list of L ``[T, T]`` arrays of edge capacities; entry [i, j]
        of layer l is the capacity of the edge (l-1, j) -> (l, i).
      position: output token index at the top layer.
      scale: capacities are rounded to integers after multiplying by this.
    Returns:
      float64 ``[T]``: the max-flow value of each input token in the units of
      `capacities` (integer flow / scale), not normalised.
    """
    from scipy.sparse.csgraph import maximum_flow

    if len(capacities) == 0:
        raise ValueError("at least one layer is needed")
    capacities = [np.asarray(c, dtype=np.float64) for c in capacities]
    t = capacities[0].shape[0]
    for i, c in enumerate(capacities):
        if c.shape != (t, t):
            raise ValueError("capacity layer %d: expected [%d, %d], got %s" % (i, t, t, c.shape))
    position = int(position)
    if not 0 <= position < t:
        raise ValueError("position must be in [0, %d], got %d" % (t - 1, position))
    graph, sink = _flow_graph(capacities, position, scale)
    values = np.zeros(t, dtype=np.float64)
    for j in range(t):
        if graph.indptr[j] == graph.indptr[j + 1]:
            continue  # no outgoing edge: no flow
        values[j] = maximum_flow(graph, j, sink).flow_value / scale
    return values


def attention_flow(layers, position, head_fusion="mean", exclude_first=False, scale=DEFAULT_SCALE,
                   cap=None, max_tokens=None):
    """Attention flow of every input token to output `position` at the top layer.

    Args:
      layers: list of ``[H, T, T]`` arrays, bottom layer first.
      position: output (query) token index, 0-based.
      head_fusion: ``"mean"``, ``"max"`` or ``"min"``.
      exclude_first: drop input token 0 from the result (see module doc).
      scale: integer scaling of the capacities for SciPy's max-flow.
      cap, max_tokens: override `FLOW_CAP` and `FLOW_MAX_TOKENS`.
    Returns:
      float64 ``[T]`` summing to 1 (all zeros if no flow reaches `position`).
    Raises:
      ValueError: bad shapes, position out of range, or layers*tokens > cap.
    """
    t = _check_layers(layers)
    position = int(position)
    if not 0 <= position < t:
        raise ValueError("position must be in [0, %d], got %d" % (t - 1, position))
    check_flow_size(len(layers), t, cap, max_tokens)
    values = max_flow_values(_residual_layers(layers, head_fusion), position, scale)
    if exclude_first:
        values[0] = 0.0
    total = values.sum()
    return values / total if total > 0 else values


def flow_method(num_layers, num_tokens):
    """"exact" within the exact caps, "sparse" within the sparse ones; else ValueError.

    The message names both caps (the plugin shows it to the user).
    """
    try:
        check_flow_size(num_layers, num_tokens)
        return "exact"
    except ValueError:
        pass
    if num_layers * num_tokens > SPARSE_FLOW_CAP or num_tokens > SPARSE_FLOW_MAX_TOKENS:
        raise ValueError(
            "attention flow is limited to layers*tokens <= %d and tokens <= %d (exact up to "
            "layers*tokens <= %d and tokens <= %d, on a sparsified graph above; got %d layers * "
            "%d tokens = %d); use rollout instead"
            % (SPARSE_FLOW_CAP, SPARSE_FLOW_MAX_TOKENS, FLOW_CAP, FLOW_MAX_TOKENS,
               num_layers, num_tokens, num_layers * num_tokens)
        )
    return "sparse"


def sparse_top_k(num_layers, num_tokens, edge_budget=None):
    """Entries kept per row (and per column) of the middle layers: ~`edge_budget` edges."""
    budget = SPARSE_EDGE_BUDGET if edge_budget is None else edge_budget
    k = budget // max(1, 2 * num_layers * num_tokens)
    return int(max(SPARSE_MIN_TOP_K, min(num_tokens, k)))


def sparsify(matrix, top_k):
    """`matrix` keeping each entry that is among the `top_k` largest of its row or of its column."""
    m = np.asarray(matrix, dtype=np.float64)
    t = min(m.shape)
    if top_k >= t:
        return m.copy()
    keep = np.zeros(m.shape, dtype=bool)
    rows = np.argpartition(-m, top_k - 1, axis=1)[:, :top_k]
    np.put_along_axis(keep, rows, True, axis=1)
    cols = np.argpartition(-m, top_k - 1, axis=0)[:top_k, :]
    np.put_along_axis(keep, cols, True, axis=0)
    return np.where(keep, m, 0.0)


def _integer(a, scale):
    return np.rint(np.asarray(a, dtype=np.float64) * scale)


class _SparseFlowGraph:
    """One graph for every source of the layered network, middle layers sparsified.

    For one source (0, j) only its own out-edges (column j of A'_1) matter
    (no flow ever enters another input node) and, for the sink (L, p), only
    row p of A'_L: both are kept *whole*; layers 2..L-1 keep
    `sparsify(A'_l, top_k)`. Node 0 is the source; its T out-edges (to every
    (1, i)) get column j's capacities before each solve, so the CSR graph is
    built once. Other ids: 1 + (l-1)*T + i = (l, i) for l = 1..L-1; the sink
    last.
    """

    def __init__(self, residual, position, top_k, scale):
        from scipy import sparse

        self.t = t = residual[0].shape[0]
        self.num_layers = num_layers = len(residual)
        self.first = _integer(residual[0], scale)                # [T(query i), T(key j)]
        self.last_row = _integer(residual[-1][position], scale)  # [T]
        self.position = position
        self.sink = 1 + (num_layers - 1) * t
        if num_layers == 1:
            return
        rows = [np.zeros(t, np.int64)]
        cols = [1 + np.arange(t)]
        caps = [np.ones(t)]
        for l in range(2, num_layers):                           # edges (l-1, j) -> (l, i)
            c = _integer(sparsify(residual[l - 1], top_k), scale)
            qi, kj = np.nonzero(c > 0)
            rows.append(1 + (l - 2) * t + kj)
            cols.append(1 + (l - 1) * t + qi)
            caps.append(c[qi, kj])
        kj = np.nonzero(self.last_row > 0)[0]                    # (L-1, i) -> sink
        rows.append(1 + (num_layers - 2) * t + kj)
        cols.append(np.full(kj.shape, self.sink))
        caps.append(self.last_row[kj])
        caps = np.concatenate(caps)
        if max(caps.max(), self.first.max()) >= 2**31:
            raise ValueError("scale %g makes capacities overflow int32" % scale)
        n = self.sink + 1
        self.graph = sparse.csr_array(
            (caps.astype(np.int32),
             (np.concatenate(rows).astype(np.int32), np.concatenate(cols).astype(np.int32))),
            shape=(n, n),
        )
        self.graph.sort_indices()
        # Row 0 holds exactly the source edges, in node order.
        assert self.graph.indptr[1] == t and (self.graph.indices[:t] == 1 + np.arange(t)).all()

    def upper_bound(self, j):
        """Integer capacity of the cheaper trivial cut: all out of the source, or all into the sink."""
        if self.num_layers == 1:
            return self.first[self.position, j]
        return min(self.first[:, j].sum(), self.last_row.sum())

    def max_flow(self, j, graph=None):
        """Integer max-flow from input token j on this graph (a lower bound of the full graph's).

        `graph`: a private copy of `self.graph` (threads each use their own:
        the source edges are rewritten per call).
        """
        from scipy.sparse.csgraph import maximum_flow

        if self.num_layers == 1:
            return self.first[self.position, j]
        graph = self.graph if graph is None else graph
        graph.data[: self.t] = self.first[:, j].astype(np.int32)
        return float(maximum_flow(graph, 0, self.sink).flow_value)

    def max_flows(self, tokens, threads=None):
        """`max_flow` of each token in `tokens`, on up to `threads` threads.

        SciPy's max-flow runs without the GIL, so threads overlap (measured
        2.3x with 2 threads on the 2-core box).
        """
        import concurrent.futures

        tokens = [int(j) for j in tokens]
        threads = FLOW_THREADS if threads is None else threads
        if self.num_layers == 1 or threads <= 1 or len(tokens) < 2 * threads:
            return [self.max_flow(j) for j in tokens]
        chunks = [tokens[k::threads] for k in range(threads)]

        def solve(chunk):
            graph = self.graph.copy()
            return [self.max_flow(j, graph) for j in chunk]

        with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
            results = list(pool.map(solve, chunks))
        values = {}
        for chunk, got in zip(chunks, results):
            values.update(zip(chunk, got))
        return [values[j] for j in tokens]


def _reaches(residual, position):
    """Input tokens with a path of nonzero capacity to `position` in the full graph."""
    reach = np.zeros(residual[0].shape[0], dtype=bool)
    reach[position] = True
    for a in reversed(residual):
        reach = (a[reach] > 0).any(axis=0)
    return reach


def sparse_attention_flow(layers, position, head_fusion="mean", exclude_first=False, top_k=None,
                          scale=DEFAULT_SCALE, return_info=False):
    """Attention flow solved exactly on a sparsified graph, with a certificate per token.

    The source's out-edges (column j of A'_1) and the sink's in-edges (row
    `position` of A'_L) are kept whole; the middle layers keep the entries
    among the `top_k` largest of their row or column (`sparsify`). Removing
    edges never raises a max-flow, so each token's value is a lower bound of
    the exact one; the capacity of the trivial cuts (everything out of the
    source, or everything into the sink) is an upper bound. Where the two
    meet, the value *is* the exact max-flow of the full graph ("certified").
    Tokens left uncertified are solved again with 4x `top_k` once. With
    ``top_k >= T`` the graph is the full one and the result equals
    `attention_flow` (up to the integer rounding both share).

    Args:
      layers, position, head_fusion, exclude_first, scale: as `attention_flow`.
      top_k: entries kept per row/column of the middle layers; default
        `sparse_top_k` (about SPARSE_EDGE_BUDGET edges).
      return_info: also return ``{"top_k", "certified", "tokens",
        "max_gap"}``: how many of the T values are proven exact and the
        largest (upper - lower bound) of the others, in the units of the
        normalised result.
    Returns:
      float64 ``[T]`` summing to 1 (and the info dict with `return_info`).
    """
    t = _check_layers(layers)
    position = int(position)
    if not 0 <= position < t:
        raise ValueError("position must be in [0, %d], got %d" % (t - 1, position))
    if top_k is None:
        top_k = sparse_top_k(len(layers), t)
    top_k = int(max(1, min(t, top_k)))
    residual = _residual_layers(layers, head_fusion)
    graph = _SparseFlowGraph(residual, position, top_k, scale)
    values = np.zeros(t, dtype=np.float64)
    # Tokens without any path to `position` (e.g. later tokens of a causal
    # model) have flow 0, proven without a solve.
    upper = np.array([graph.upper_bound(j) for j in range(t)]) * _reaches(residual, position)
    todo = np.nonzero(upper > 0)[0]
    values[todo] = graph.max_flows(todo)
    open_ = np.nonzero(values < upper)[0]
    if open_.size and top_k < t:
        denser = _SparseFlowGraph(residual, position, min(t, 4 * top_k), scale)
        values[open_] = np.maximum(values[open_], denser.max_flows(open_))
    gap = upper - values
    values = values / scale
    if exclude_first:
        values[0] = 0.0
        gap[0] = 0.0
    total = values.sum()
    result = values / total if total > 0 else values
    if return_info:
        info = {
            "top_k": top_k,
            "certified": int((gap <= 0).sum()),
            "tokens": t,
            "max_gap": float(gap.max() / scale / total) if total > 0 and t else 0.0,
        }
        return result, info
    return result


def flow(layers, position, head_fusion="mean", exclude_first=False):
    """The flow the tab shows: exact within the caps, sparsified beyond (see `flow_method`).

    Returns:
      (float64 ``[T]``, info dict): info has ``method`` ("exact" or "sparse")
      and, for "sparse", the keys of `sparse_attention_flow`'s info.
    Raises:
      ValueError: bad shapes or position, or a size over the sparse caps.
    """
    t = _check_layers(layers)
    method = flow_method(len(layers), t)
    if method == "exact":
        return attention_flow(layers, position, head_fusion, exclude_first), {"method": "exact"}
    values, info = sparse_attention_flow(layers, position, head_fusion, exclude_first, return_info=True)
    info["method"] = "sparse"
    return values, info
