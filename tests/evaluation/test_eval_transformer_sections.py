"""Transformer / MiniLM parts of the evaluation: [CLS]/[SEP] kept out of the rankings, rollout summaries."""

import numpy as np
import pytest

from attn_tf.evaluation import importance, transformer_attribution as ta
from attn_tf.evaluation.special_tokens import SpecialTokensAdapter, content_ids, content_tokens, wrap_ids

CLS, SEP, V = 2, 3, 20


@pytest.fixture(scope="module")
def adapters():
    import keras

    from attn_tf.evaluation.adapter import ClassifierAdapter
    from attn_tf.models.transformer import transformer

    keras.utils.set_random_seed(0)
    model = transformer(V, 2, max_length=12, hidden_dim=8, num_layers=2, num_heads=2, intermediate_dim=8,
                        dropout=0.0, classifier_dropout=0.0)
    inner = ClassifierAdapter(model, kind="transformer")
    return inner, SpecialTokensAdapter(inner, CLS, SEP)


def _content(seed=0):
    rng = np.random.default_rng(seed)
    ids = np.zeros((5, 10), np.int32)
    for i, n in enumerate([1, 3, 6, 10, 4]):
        ids[i, :n] = rng.integers(4, V, n)
    return ids


def test_wrapping_round_trip():
    c = _content()
    full = wrap_ids(c, CLS, SEP)
    n = (c > 0).sum(1)
    assert np.all(full[:, 0] == CLS) and np.all(full[np.arange(len(c)), n + 1] == SEP)
    np.testing.assert_array_equal(content_ids(full, CLS, SEP)[:, :c.shape[1]], c)
    assert content_tokens([["[CLS]", "a", "##b", "[SEP]"]]) == [["a", "##b"]]


def test_model_sees_cls_and_sep_measures_see_content(adapters):
    inner, wrapped = adapters
    c = _content()
    full = wrap_ids(c, CLS, SEP)
    p_w, a_w = wrapped.predict(c)
    p_i, a_i = inner.predict(full)
    np.testing.assert_allclose(p_w, p_i, atol=1e-6)
    n = (c > 0).sum(1)
    np.testing.assert_allclose(a_w.sum(1), 1.0, atol=1e-5)
    assert np.all(a_w[c == 0] == 0)
    for i in range(len(c)):  # the content columns of the model's vector, renormalised
        want = a_i[i, 1:n[i] + 1] / a_i[i, 1:n[i] + 1].sum()
        np.testing.assert_allclose(a_w[i, :n[i]], want, rtol=1e-5)


def test_gradients_reach_content_embeddings_only(adapters):
    """Gradient importance through the wrapper = the model's own at the content positions ([SEP] placed in-graph)."""
    inner, wrapped = adapters
    c = _content(1)
    g_w = importance.gradient_importance(wrapped, c, hold_attention=False, normalise=False)
    g_i = importance.gradient_importance(inner, wrap_ids(c, CLS, SEP), hold_attention=False, normalise=False)
    n = (c > 0).sum(1)
    for i in range(len(c)):
        np.testing.assert_allclose(g_w[i, :n[i]], g_i[i, 1:n[i] + 1], rtol=1e-4, atol=1e-8)
    assert np.all(g_w[c == 0] == 0)


def test_leave_one_out_never_deletes_specials(adapters):
    _, wrapped = adapters
    c = _content(2)
    loo, evaluations = importance.leave_one_out(wrapped, c)
    assert evaluations == int((c > 0).sum())  # one variant per content token, none for [CLS]/[SEP]
    assert loo.shape == c.shape and np.all(loo[c == 0] == 0)


def test_layer_importances_report_content_columns():
    """All queries attend to the second content token: raw and rollout put their maximum there."""
    n, m = 4, 6  # 4 content tokens + [CLS] + [SEP]
    att = np.zeros((2, 1, m, m))
    att[:, :, :, 2] = 1.0  # position 2 = content index 1
    imps = ta.layer_importances(att, n, specials=(1, 1))
    assert imps["raw"].shape == (2, n) and imps["rollout"].shape == (2, n)
    np.testing.assert_allclose(imps["raw"][:, 1], 1.0)
    assert np.all(imps["rollout"].argmax(1) == 1)


def test_rollout_vector_is_a_distribution_over_content(adapters):
    inner, wrapped = adapters
    c = _content(3)
    for adapter, ids in ((wrapped, c), (inner, wrap_ids(c, CLS, SEP))):
        r = ta.rollout_vector(adapter, ids)
        np.testing.assert_allclose(r.sum(1), 1.0, atol=1e-9)
        assert np.all(r[ids == 0] == 0)
