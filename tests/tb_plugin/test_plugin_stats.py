"""Per-head statistics on hand-worked matrices."""

import math

import numpy as np

from tb_plugin import stats


def test_uniform_head():
    s = stats.head_statistics(np.full((1, 4, 4), 0.25))
    np.testing.assert_allclose(s["entropy"], [math.log(4)])
    np.testing.assert_allclose(s["max_weight"], [0.25])
    np.testing.assert_allclose(s["first_token_mass"], [0.25])
    # rows: (0+1+2+3)/4, (1+0+1+2)/4, (2+1+0+1)/4, (3+2+1+0)/4 -> mean 1.25
    np.testing.assert_allclose(s["mean_distance"], [1.25])


def test_identity_and_per_head():
    a = np.stack([np.eye(3), np.full((3, 3), 1 / 3)])
    s = stats.head_statistics(a)
    np.testing.assert_allclose(s["entropy"], [0.0, math.log(3)], atol=1e-12)
    np.testing.assert_allclose(s["max_weight"], [1.0, 1 / 3])
    np.testing.assert_allclose(s["first_token_mass"], [1 / 3, 1 / 3])
    np.testing.assert_allclose(s["mean_distance"], [0.0, (1 + 2 / 3 + 1) / 3 * 1.0])


def test_rows_without_mass_are_skipped_and_rows_renormalised():
    a = np.array([[[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 2.0]]])  # row 0 has no mass
    s = stats.head_statistics(a)
    np.testing.assert_allclose(s["entropy"], [(math.log(2) + 0.0) / 2])
    np.testing.assert_allclose(s["max_weight"], [(0.5 + 1.0) / 2])
    np.testing.assert_allclose(s["first_token_mass"], [(0.5 + 0.0) / 2])
    np.testing.assert_allclose(s["mean_distance"], [(0.5 * 1 + 0.5 * 0 + 0.0) / 2])
    empty = stats.head_statistics(np.zeros((2, 2, 2)))
    assert np.isnan(empty["entropy"]).all()


def test_pooling_and_cross():
    pooled = stats.layer_statistics(np.array([[[0.5, 0.25, 0.25]]]), "pooling")
    np.testing.assert_allclose(pooled["entropy"], [-(0.5 * math.log(0.5) + 0.5 * math.log(0.25))])
    np.testing.assert_allclose(pooled["max_weight"], [0.5])
    np.testing.assert_allclose(pooled["first_token_mass"], [0.5])
    assert np.isnan(pooled["mean_distance"]).all()
    cross = stats.layer_statistics(np.full((2, 3, 3), 1 / 3), "cross")  # square but not self
    assert np.isnan(cross["mean_distance"]).all()
    assert not np.isnan(cross["entropy"]).any()
    assert set(stats.STATISTICS) == set(cross)
