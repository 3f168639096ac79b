"""Gradient, IG and leave-one-out on a model whose output depends only on one token."""

import numpy as np

from attn_tf.evaluation import importance as imp


def _first(scores, ids):
    return np.where(ids != 0, scores, -np.inf).argmax(1)


def test_key_model_output_depends_only_on_key(key_adapter, key_data, vectorizer):
    from attn_tf.data import vectorize_numpy

    _, ids, _ = key_data
    p, att = key_adapter.predict(ids)
    np.testing.assert_allclose(p[:, 1], p[0, 1], atol=1e-6)
    assert p[0, 1] > 0.7
    p0, _ = key_adapter.predict(vectorize_numpy(["the movie was its plot", "acting"], vectorizer))
    np.testing.assert_allclose(p0[:, 1], 1 - p[0, 1], atol=1e-6)
    np.testing.assert_allclose(att.sum(1), 1.0, atol=1e-5)


def test_gradient_ig_loo_rank_the_key_token_first(key_adapter, key_data):
    _, ids, key_pos = key_data
    probs, _ = key_adapter.predict(ids)
    g = imp.gradient_importance(key_adapter, ids)
    ig, delta = imp.integrated_gradients(key_adapter, ids)
    for mode in ("delete", "unk"):
        loo, nq = imp.leave_one_out(key_adapter, ids, probs, mode=mode)
        assert (_first(loo, ids) == key_pos).all(), mode
        assert nq == int((ids != 0).sum())
    assert (_first(g, ids) == key_pos).all()
    assert (_first(ig, ids) == key_pos).all()
    np.testing.assert_allclose(g.sum(1), 1.0, atol=1e-6)
    assert np.all(g[ids == 0] == 0) and np.all(ig[ids == 0] == 0)


def test_ig_completeness_within_5_percent(key_adapter, key_data, random_adapter):
    _, ids, _ = key_data
    for adapter in (key_adapter, random_adapter):
        ig, delta = imp.integrated_gradients(adapter, ids, steps=50)
        big = np.abs(delta) > 1e-3
        assert big.any()
        rel = np.abs(ig.sum(1) - delta)[big] / np.abs(delta[big])
        assert rel.max() <= 0.05, rel.max()


def test_loo_variants_delete_and_unk():
    ids = np.array([[5, 6, 7, 0], [8, 9, 0, 0]], np.int32)
    v, rows, pos = imp.loo_variants(ids, "delete")
    assert rows.tolist() == [0, 0, 0, 1, 1] and pos.tolist() == [0, 1, 2, 0, 1]
    assert v.tolist() == [[6, 7, 0, 0], [5, 7, 0, 0], [5, 6, 0, 0], [9, 0, 0, 0], [8, 0, 0, 0]]
    v, _, _ = imp.loo_variants(ids, "unk")
    assert v[1].tolist() == [5, 1, 7, 0]
