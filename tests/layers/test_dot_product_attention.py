import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from attn_tf.layers import DotProductAttention
from layers_np_reference import attention_mask
from layers_np_reference import np_
from layers_np_reference import softmax
from layers_roundtrip import assert_config_roundtrip
from layers_roundtrip import assert_saved_model_identical

B, T, S, D, DV = 2, 3, 5, 4, 6


def reference(layer, query, value, key=None, mask=None, override=None):
    key = value if key is None else key
    q, k = np_(query), np_(key)
    if layer.score == "general":
        scores = q @ np_(layer.kernel) @ k.transpose(0, 2, 1)
    elif layer.score == "scaled":
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(k.shape[-1])
    else:
        scores = q @ k.transpose(0, 2, 1)
    if override is None:
        weights = softmax(scores, mask)
    else:
        weights = override if mask is None else np.where(mask, override, 0.0)
    return weights @ np_(value), weights


@pytest.fixture
def data(rng):
    q = rng.normal(size=(B, T, D)).astype("float32")
    k = rng.normal(size=(B, S, D)).astype("float32")
    v = rng.normal(size=(B, S, DV)).astype("float32")
    return q, k, v


@pytest.mark.parametrize("score", ["dot", "general", "scaled"])
def test_matches_numpy_reference_with_masks(data, score):
    q, k, v = data
    layer = DotProductAttention(score)
    qm = np.array([[1, 1, 1], [1, 0, 0]], bool)
    vm = np.array([[1, 1, 0, 0, 1], [1, 1, 1, 1, 1]], bool)
    out, w = layer(q, v, key=k, query_mask=qm, value_mask=vm, return_attention_scores=True)
    ref_out, ref_w = reference(layer, q, v, k, attention_mask(T, S, qm, vm, batch=B))
    np.testing.assert_allclose(np.asarray(w), ref_w, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out), ref_out, atol=1e-5)
    w = np.asarray(w)
    assert np.all(w[0][:, 2:4] == 0.0)
    np.testing.assert_array_equal(w[1, 1:], 0.0)
    np.testing.assert_array_equal(np.asarray(out)[1, 1:], 0.0)


def test_general_allows_different_query_and_key_widths(rng):
    q = rng.normal(size=(B, T, 3)).astype("float32")
    k = rng.normal(size=(B, S, 7)).astype("float32")
    v = rng.normal(size=(B, S, DV)).astype("float32")
    layer = DotProductAttention("general")
    out, w = layer(q, v, key=k, return_attention_scores=True)
    assert layer.kernel.shape == (3, 7)
    ref_out, ref_w = reference(layer, q, v, k)
    np.testing.assert_allclose(np.asarray(out), ref_out, atol=1e-5)
    np.testing.assert_allclose(np.asarray(w), ref_w, atol=1e-5)


def test_unknown_score_and_mismatched_widths_raise(rng):
    with pytest.raises(ValueError, match="'dot', 'general', 'scaled'"):
        DotProductAttention("cosine")
    q = rng.normal(size=(B, T, 3)).astype("float32")
    v = rng.normal(size=(B, S, 4)).astype("float32")
    with pytest.raises(ValueError, match="general"):
        DotProductAttention("dot")(q, v)


def test_fully_masked_row_and_causal(rng):
    x = rng.normal(size=(B, 4, D)).astype("float32")
    vm = np.array([[0, 0, 0, 0], [1, 1, 1, 1]], bool)
    out, w = DotProductAttention("scaled")(x, x, value_mask=vm, return_attention_scores=True)
    assert np.all(np.isfinite(np.asarray(w))) and np.all(np.isfinite(np.asarray(out)))
    np.testing.assert_array_equal(np.asarray(w)[0], 0.0)
    np.testing.assert_array_equal(np.asarray(out)[0], 0.0)

    _, w = DotProductAttention()(x, x, use_causal_mask=True, return_attention_scores=True)
    w = np.asarray(w)
    iu = np.triu_indices(4, 1)
    assert np.all(w[:, iu[0], iu[1]] == 0.0)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(w[:, 0, 0], 1.0)


def test_keras_masks_from_embedding_in_functional_model():
    ids = keras.Input((4,), dtype="int32")
    x = keras.layers.Embedding(20, D, mask_zero=True)(ids)
    out, w = DotProductAttention("scaled")(x, x, return_attention_scores=True)
    assert out.shape == (None, 4, D) and w.shape == (None, 4, 4)
    model = keras.Model(ids, [out, w])
    data = np.array([[5, 6, 0, 0], [1, 2, 3, 4]])
    _, w = model(data)
    w = np.asarray(w)
    assert np.all(w[0][:, 2:] == 0.0)
    np.testing.assert_array_equal(w[0, 2:], 0.0)
    np.testing.assert_allclose(w[1].sum(-1), 1.0, atol=1e-6)


def test_attention_override_output_and_gradients(data):
    q, k, v = data
    override = tf.Variable(np.random.default_rng(2).random((B, T, S)).astype("float32"))
    layer = DotProductAttention("general")
    with tf.GradientTape() as tape:
        out, w = layer(q, v, key=k, attention_override=override, return_attention_scores=True)
        loss = tf.reduce_sum(out ** 2)
    np.testing.assert_allclose(np.asarray(w), override.numpy(), atol=1e-6)
    np.testing.assert_allclose(np.asarray(out), override.numpy() @ v, atol=1e-5)
    grad = tape.gradient(loss, override)
    np.testing.assert_allclose(
        np.asarray(grad), 2 * (override.numpy() @ v) @ v.transpose(0, 2, 1), atol=1e-4
    )
    # Causal masking still zeroes the override.
    x = q
    ov = np.ones((B, T, T), "float32")
    _, w = DotProductAttention()(x, x, use_causal_mask=True, attention_override=ov,
                                 return_attention_scores=True)
    np.testing.assert_array_equal(np.asarray(w), np.broadcast_to(np.tril(np.ones((T, T))), (B, T, T)))


def test_symbolic_and_eager_shapes_cross():
    q, v = keras.Input((T, D)), keras.Input((S, DV))
    k = keras.Input((S, D))
    out, w = DotProductAttention("scaled")(q, v, key=k, return_attention_scores=True)
    assert out.shape == (None, T, DV) and w.shape == (None, T, S)
    model = keras.Model([q, v, k], [out, w])
    eo, ew = model([np.ones((B, T, D)), np.ones((B, S, DV)), np.ones((B, S, D))])
    assert eo.shape == (B, T, DV) and ew.shape == (B, T, S)


def test_dropout_training_only(data):
    q, k, v = data
    layer = DotProductAttention("dot", dropout=0.5)
    o1, w1 = layer(q, v, key=k, return_attention_scores=True, training=True)
    o0, w0 = layer(q, v, key=k, return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(w1), np.asarray(w0), atol=1e-6)
    assert not np.allclose(np.asarray(o1), np.asarray(o0))


@pytest.mark.parametrize("score", ["dot", "general"])
def test_config_and_keras_save_load(data, tmp_path, score):
    q, k, v = data
    clone = assert_config_roundtrip(DotProductAttention(score, dropout=0.2))
    assert clone.score == score and clone.dropout == 0.2
    iq, iv, ik = keras.Input((T, D)), keras.Input((S, DV)), keras.Input((S, D))
    out, w = DotProductAttention(score)(iq, iv, key=ik, return_attention_scores=True)
    model = keras.Model([iq, iv, ik], [out, w])
    assert_saved_model_identical(model, [q, v, k], tmp_path)


def test_mixed_precision(data, mixed_float16):
    q, k, v = data
    out, w = DotProductAttention("general")(q * 30, v, key=k, return_attention_scores=True)
    assert out.dtype == tf.float16 and w.dtype == tf.float16
    w = np.asarray(w, "float32")
    assert np.all(np.isfinite(w))
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-3)
