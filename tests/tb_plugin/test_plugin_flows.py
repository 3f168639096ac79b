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
