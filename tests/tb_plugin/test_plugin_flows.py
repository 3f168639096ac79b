"""Rollout and attention flow on hand-worked cases."""

import numpy as np
import pytest

from tb_plugin import flows


def _rows(m):
    m = np.asarray(m, dtype=np.float64)
    return m / m.sum(axis=-1, keepdims=True)


def _random_layers(num_layers, heads, tokens, seed=0, causal=False):
    rng = np.random.default_rng(seed)
    x = np.exp(rng.normal(size=(num_layers, heads, tokens, tokens)) * 2)
    if causal:
        x = x * np.tril(np.ones((tokens, tokens)))
    return list(x / x.sum(-1, keepdims=True))


def test_fuse_heads():
    a = np.array([[[0.2, 0.8]], [[0.6, 0.4]]])  # [H=2, Q=1, K=2]
    np.testing.assert_allclose(flows.fuse_heads(a, "mean"), [[0.4, 0.6]])
    np.testing.assert_allclose(flows.fuse_heads(a, "max"), [[0.6, 0.8]])
    np.testing.assert_allclose(flows.fuse_heads(a, "min"), [[0.2, 0.4]])
    with pytest.raises(ValueError, match="head_fusion must be one of mean, max, min"):
        flows.fuse_heads(a, "median")


def test_identity_attention_gives_identity_rollout():
    layers = [np.stack([np.eye(4)] * 3)] * 3
    for fusion in flows.HEAD_FUSIONS:
        np.testing.assert_allclose(flows.rollout(layers, fusion), np.eye(4), atol=1e-12)


def test_rollout_hand_worked():
    # A = [[.5, .5], [0, 1]] -> A' = .5A + .5I = [[.75, .25], [0, 1]] (rows sum to 1)
    a = np.array([[[0.5, 0.5], [0.0, 1.0]]])
    np.testing.assert_allclose(flows.rollout([a]), [[0.75, 0.25], [0.0, 1.0]])
    # two layers: A'@A' = [[.5625, .4375], [0, 1]]
    np.testing.assert_allclose(flows.rollout([a, a]), [[0.5625, 0.4375], [0.0, 1.0]])


def test_rollout_renormalises_rows_not_columns():
    # Rows of the fused matrix do not sum to 1 (max fusion); A' rows must.
    a = np.array([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]]])
    fused = flows.fuse_heads(a, "max")  # [[1, 1], [.5, .5]]
    expected = np.array([[1.0, 0.5], [0.25, 0.75]])
    expected = expected / expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(flows.residual_attention(fused), expected)
    np.testing.assert_allclose(flows.rollout([a], "max"), expected)


@pytest.mark.parametrize("fusion", flows.HEAD_FUSIONS)
@pytest.mark.parametrize("causal", [False, True])
def test_rollout_rows_sum_to_one(fusion, causal):
    layers = _random_layers(4, 3, 7, causal=causal)
    r = flows.rollout(layers, fusion)
    assert r.shape == (7, 7)
    np.testing.assert_allclose(r.sum(axis=1), 1.0, atol=1e-12)
    assert (r >= 0).all()
    if causal:
        np.testing.assert_allclose(np.triu(r, 1), 0.0)


def test_rollout_exclude_first():
    layers = _random_layers(3, 2, 5)
    r = flows.rollout(layers, exclude_first=True)
    np.testing.assert_allclose(r[:, 0], 0.0)
    np.testing.assert_allclose(r.sum(axis=1), 1.0, atol=1e-12)
    full = flows.rollout(layers)
    np.testing.assert_allclose(r[:, 1:], full[:, 1:] / full[:, 1:].sum(axis=1, keepdims=True))
    # Causal: position 0 sees only token 0, so nothing is left: a row of zeros.
    causal = flows.rollout(_random_layers(2, 1, 4, causal=True), exclude_first=True)
    np.testing.assert_allclose(causal[0], 0.0)
    np.testing.assert_allclose(causal[1:].sum(axis=1), 1.0, atol=1e-12)


def test_rollout_rejects_bad_shapes():
    with pytest.raises(ValueError):
        flows.rollout([np.ones((1, 2, 3))])
    with pytest.raises(ValueError):
        flows.rollout([np.ones((1, 2, 2)), np.ones((1, 3, 3))])
    with pytest.raises(ValueError):
        flows.rollout([])


def test_max_flow_single_path_equals_smallest_capacity():
    # Path (0,0) -> (1,1) -> (2,2) -> (3,0) with capacities .3, .7, .5.
    caps = [np.zeros((3, 3)) for _ in range(3)]
    caps[0][1, 0] = 0.3
    caps[1][2, 1] = 0.7
    caps[2][0, 2] = 0.5
    values = flows.max_flow_values(caps, position=0)
    np.testing.assert_allclose(values, [0.3, 0.0, 0.0], atol=1e-6)
    # The smallest capacity in the middle instead.
    caps[1][2, 1] = 0.1
    np.testing.assert_allclose(flows.max_flow_values(caps, position=0), [0.1, 0.0, 0.0], atol=1e-6)


def test_max_flow_parallel_paths_add_up():
    # Two disjoint paths from input 0 to output 0: .2 (via token 0) + .3 (via token 1).
    c1 = np.array([[0.2, 0.0], [0.9, 0.0]])   # (0,0)->(1,0): .2, (0,0)->(1,1): .9
    c2 = np.array([[0.4, 0.3], [0.0, 0.0]])   # (1,0)->(2,0): .4, (1,1)->(2,0): .3
    np.testing.assert_allclose(flows.max_flow_values([c1, c2], position=0), [0.5, 0.0], atol=1e-6)


def test_flow_of_one_layer_is_the_residual_attention_row():
    layers = _random_layers(1, 2, 6)
    a = flows.residual_attention(flows.fuse_heads(layers[0]))
    for position in range(6):
        np.testing.assert_allclose(
            flows.attention_flow(layers, position), a[position], atol=1e-5
        )


def test_flow_sums_to_one_and_matches_identity():
    layers = _random_layers(3, 2, 6, seed=3)
    for position in (0, 5):
        f = flows.attention_flow(layers, position, head_fusion="max")
        assert f.shape == (6,)
        assert abs(f.sum() - 1.0) < 1e-9
        assert (f >= 0).all()
    ident = [np.stack([np.eye(4)])] * 3
    np.testing.assert_allclose(flows.attention_flow(ident, 2), [0, 0, 1, 0], atol=1e-12)


def test_flow_causal_and_exclude_first():
    layers = _random_layers(3, 2, 5, causal=True)
    f = flows.attention_flow(layers, 2)
    np.testing.assert_allclose(f[3:], 0.0)  # the future gets no flow
    g = flows.attention_flow(layers, 2, exclude_first=True)
    assert g[0] == 0.0
    np.testing.assert_allclose(g.sum(), 1.0)
    np.testing.assert_allclose(flows.attention_flow(layers, 0, exclude_first=True), 0.0)


def test_flow_cap_and_position_errors():
    with pytest.raises(ValueError, match="layers\\*tokens <= %d" % flows.FLOW_CAP):
        flows.attention_flow([np.zeros((1, 128, 128))] * 13, 0)
    big = flows.FLOW_MAX_TOKENS + 1
    with pytest.raises(ValueError, match="tokens <= %d" % flows.FLOW_MAX_TOKENS):
        flows.attention_flow([np.zeros((1, big, big))], 0)
    with pytest.raises(ValueError, match="position"):
        flows.attention_flow([np.stack([np.eye(3)])], 3)
    with pytest.raises(ValueError, match="position"):
        flows.attention_flow([np.stack([np.eye(3)])], -1)
    # A custom cap
    with pytest.raises(ValueError, match="<= 5"):
        flows.attention_flow([np.stack([np.eye(3)])] * 2, 0, cap=5)


# -- attention flow above the exact caps: exact on a sparsified graph ---------------


@pytest.mark.parametrize("num_layers,tokens,seed", [(12, 48, 0), (6, 64, 1)])
def test_sparse_flow_equals_exact_on_dense_attention(num_layers, tokens, seed):
    layers = _random_layers(num_layers, 4, tokens, seed=seed)
    for position in (0, tokens // 2, tokens - 1):
        exact = flows.attention_flow(layers, position)
        got, info = flows.sparse_attention_flow(layers, position, top_k=4, return_info=True)
        # every value proven exact by the cut bound, hence equal to the exact solver's
        assert info["certified"] == tokens and info["max_gap"] == 0.0
        np.testing.assert_allclose(got, exact, atol=1e-12)


def test_sparse_flow_with_few_layers_is_close_and_says_so():
    # 3 peaky layers: the min cut is not a trivial one, so values are lower
    # bounds (solved again 4x denser), reported as not certified.
    layers = _random_layers(3, 4, 40, seed=2)
    for position in (0, 20, 39):
        exact = flows.attention_flow(layers, position)
        got, info = flows.sparse_attention_flow(layers, position, top_k=4, return_info=True)
        assert info["certified"] < 40 and info["max_gap"] > 0
        assert np.abs(got - exact).max() < 0.005
        assert np.corrcoef(got, exact)[0, 1] > 0.99


def test_sparse_flow_on_causal_attention_is_a_checked_lower_bound():
    layers = _random_layers(6, 4, 48, seed=3, causal=True)
    for position in (5, 30, 47):
        res = flows._residual_layers(layers, "mean")
        exact_raw = flows.max_flow_values(res, position)
        got, info = flows.sparse_attention_flow(layers, position, top_k=2, return_info=True)
        exact = flows.attention_flow(layers, position)
        # tokens after `position` cannot reach it: 0, and proven so
        assert np.all(got[position + 1:] == 0) and info["certified"] >= 48 - position - 1
        assert np.abs(got - exact).max() <= max(info["max_gap"], 1e-12) + 0.02
        # with every entry kept the sparse graph is the full one
        full = flows.sparse_attention_flow(layers, position, top_k=48)
        np.testing.assert_allclose(full, exact, atol=1e-12)
        assert exact_raw[position + 1:].sum() == 0


def test_sparse_flow_single_layer_and_exclude_first():
    layers = _random_layers(1, 2, 30, seed=4)
    for position in (0, 7):
        np.testing.assert_allclose(flows.sparse_attention_flow(layers, position), flows.attention_flow(layers, position), atol=1e-12)
    layers = _random_layers(4, 2, 30, seed=5)
    got = flows.sparse_attention_flow(layers, 3, exclude_first=True, top_k=30)
    assert got[0] == 0.0
    np.testing.assert_allclose(got, flows.attention_flow(layers, 3, exclude_first=True), atol=1e-12)


def test_sparsify_keeps_row_and_column_maxima():
    m = np.array([[5.0, 1.0, 0.0], [0.2, 0.1, 0.3], [4.0, 0.0, 9.0]])
    kept = flows.sparsify(m, 1)
    # row maxima 5, 0.3, 9 and column maxima 5, 1, 9
    np.testing.assert_array_equal(kept, [[5.0, 1.0, 0.0], [0.0, 0.0, 0.3], [0.0, 0.0, 9.0]])


def test_flow_method_and_caps():
    assert flows.flow_method(12, 128) == "exact"
    assert flows.flow_method(12, 512) == "sparse"
    assert flows.flow_method(1, 193) == "sparse"
    with pytest.raises(ValueError, match="layers\\*tokens <= %d and tokens <= %d" % (
            flows.SPARSE_FLOW_CAP, flows.SPARSE_FLOW_MAX_TOKENS)):
        flows.flow_method(13, 512)
    with pytest.raises(ValueError, match="tokens <= 512"):
        flows.flow_method(1, 513)
    layers = _random_layers(2, 2, 6, seed=6)
    values, info = flows.flow(layers, 2)
    assert info == {"method": "exact"}
    np.testing.assert_allclose(values, flows.attention_flow(layers, 2))


def test_sparse_flow_threads_give_the_same_values():
    layers = _random_layers(5, 2, 40, seed=8)
    res = flows._residual_layers(layers, "mean")
    graph = flows._SparseFlowGraph(res, 11, 4, flows.DEFAULT_SCALE)
    tokens = list(range(40))
    assert graph.max_flows(tokens, threads=3) == graph.max_flows(tokens, threads=1)
