"""Divergences, overlaps and the stability statistics."""

import math

import numpy as np

from attn_tf.evaluation import metrics, stability


def test_jsd_bounds_and_known_values():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(7) * 0.3, size=2000)
    q = rng.dirichlet(np.ones(7) * 0.3, size=2000)
    j = metrics.jsd(p, q)
    assert np.all(j >= 0) and np.all(j <= math.log(2) + 1e-12)
    np.testing.assert_allclose(j, metrics.jsd(q, p))
    np.testing.assert_allclose(metrics.jsd(p, p), 0.0, atol=1e-12)
    assert abs(metrics.jsd([1, 0, 0], [0, 0.5, 0.5]) - math.log(2)) < 1e-9  # disjoint supports
    assert metrics.tvd([1, 0], [0, 1]) == 1.0 and metrics.tvd([0.5, 0.5], [0.5, 0.5]) == 0.0


def test_topk_kendall_summary():
    assert metrics.topk_overlap([3, 2, 1], [3, 1, 2], 1) == 1.0
    assert metrics.topk_overlap([3, 2, 1, 0], [0, 1, 2, 3], 2) == 0.0
    tau, p = metrics.kendall([1, 2, 3, 4], [1, 2, 3, 4])
    assert tau == 1.0 and p < 0.1
    assert math.isnan(metrics.kendall([1, 1, 1], [1, 2, 3])[0])
    s = metrics.tau_summary([0.5, np.nan, 0.1], [0.01, np.nan, 0.5])
    assert s["n"] == 2 and s["undefined"] == 1 and s["frac_p_le_0.05"] == 0.5


def test_stability_identity_and_alignment():
    att = np.array([[0.1, 0.6, 0.3, 0.0], [0.5, 0.5, 0.0, 0.0]])
    probs = np.array([[0.2, 0.8], [0.6, 0.4]])
    per = stability.compare(att, att, probs, probs, [np.arange(3), np.arange(2)], [3, 2], [3, 2])
    np.testing.assert_allclose(per["jsd"], 0, atol=1e-12)
    assert per["top1"].tolist() == [1.0, 1.0] and not per["flipped"].any()
    # a dropped token: clean attention restricted to the kept tokens and renormalised
    a, b = stability.aligned(np.array([0.2, 0.2, 0.6]), np.array([0.25, 0.75]), np.array([0, 2]))
    np.testing.assert_allclose(a, [0.25, 0.75])
    np.testing.assert_allclose(b, [0.25, 0.75])
    s = stability.summarize(per)
    assert s["all"]["n"] == 2 and s["flipped"]["n"] == 0
