"""attn_tf.metrics.attention_faithfulness: the scalars of the training curve, on a model whose truth is known."""

import numpy as np
import pytest

from attn_tf.metrics import attention_faithfulness as af

WEIGHTS = np.linspace(0.01, 0.6, 30)  # token id -> evidence for class 1 (ids 2..29 used), all for class 1


def _linear_model(attention_mode):
    """p(class 1) = sigmoid(sum of token evidences); attention = |evidence| (faithful) or uniform."""

    def predict(ids):
        ids = np.asarray(ids)
        mask = ids != 0
        logit = np.where(mask, WEIGHTS[ids], 0).sum(1)
        p1 = 1 / (1 + np.exp(-logit))
        if attention_mode == "faithful":
            s = np.where(mask, np.abs(WEIGHTS[ids]) + 1e-3, 0)
        else:
            s = mask.astype(float)
        att = s / np.maximum(s.sum(1, keepdims=True), 1e-12)
        return np.stack([1 - p1, p1], 1), att

    def gradient(ids):
        # |d p / d e . e| of a linear-in-evidence model is proportional to |evidence| * p(1-p).
        return np.where(ids != 0, np.abs(WEIGHTS[np.asarray(ids)]), 0.0)

    return predict, gradient


def _ids(rng, n=40, t=12):
    ids = np.zeros((n, t), np.int32)
    for i in range(n):
        k = rng.integers(3, t + 1)
        ids[i, :k] = rng.integers(2, 30, k)
    return ids


def test_faithful_attention_scores_high_and_uniform_attention_like_random():
    rng = np.random.default_rng(0)
    ids = _ids(rng)
    good = af.faithfulness_scalars(*_linear_model("faithful"), ids)
    flat = af.faithfulness_scalars(*_linear_model("uniform"), ids)
    assert set(good) == set(af.SCALARS)
    assert good["tau_attention_gradient"] > 0.95
    assert good["tau_attention_loo"] > 0.5
    assert good["aopc_comprehensiveness_attention"] > 1.5 * good["aopc_comprehensiveness_random"]
    # Sufficiency: keeping the most important words loses less than keeping random ones.
    assert good["aopc_sufficiency_attention"] < good["aopc_sufficiency_random"] - 0.03
    assert np.isnan(flat["tau_attention_gradient"])  # constant attention: tau undefined, not 0
    assert flat["entropy_ratio"] == pytest.approx(1.0)
    assert good["entropy_ratio"] < 1.0


def test_loo_and_eraser_variants_delete_the_right_tokens():
    ids = np.array([[5, 6, 7, 0], [8, 9, 0, 0]], np.int32)
    v, rows, pos = af.loo_variants(ids)
    assert rows.tolist() == [0, 0, 0, 1, 1] and pos.tolist() == [0, 1, 2, 0, 1]
    assert v.tolist()[1] == [5, 7, 0, 0]
    comp, suff = af.eraser_variants(ids, np.array([[0.1, 0.9, 0.5, 0], [0.2, 0.8, 0, 0]]), bins=(1, 50))
    assert comp[0, 0].tolist() == [5, 7, 0, 0]   # top 1 of 3 (token 6) removed
    assert suff[0, 1].tolist() == [6, 7, 0, 0]   # top ceil(1.5) = 2 kept, in order
    assert suff[1, 0].tolist() == [9, 0, 0, 0]


def test_entropy_ratio_bounds():
    ids = np.array([[3, 4, 5, 6], [3, 4, 0, 0]], np.int32)
    uniform = np.array([[0.25] * 4, [0.5, 0.5, 0, 0]])
    onehot = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    assert af.entropy_ratio(uniform, ids) == pytest.approx(1.0)
    assert af.entropy_ratio(onehot, ids) == pytest.approx(0.0)


def test_evaluation_uses_the_same_definitions():
    from attn_tf.evaluation import erasure, importance, metrics

    assert importance.loo_variants is af.loo_variants
    assert erasure.eraser_variants is af.eraser_variants
    assert erasure.ERASER_BINS == af.ERASER_BINS
    assert metrics.kendall is af.kendall
