import keras
import numpy as np
import pytest
import tensorflow as tf

from attn_tf.layers import AdditiveAttention
from layers_np_reference import attention_mask
from layers_np_reference import np_
from layers_np_reference import softmax
from layers_roundtrip import assert_config_roundtrip
from layers_roundtrip import assert_saved_model_identical

B, T, S, DQ, DK, DV, U = 2, 3, 5, 4, 6, 7, 8


def reference(layer, query, value, key=None, mask=None, override=None):
    key = value if key is None else key
    w1 = np_(layer.query_dense.kernel)
    w2 = np_(layer.key_dense.kernel)
    b = 0.0 if layer.key_dense.bias is None else np_(layer.key_dense.bias)
    v = np_(layer.v)
    hidden = np.tanh((query @ w1)[:, :, None, :] + (key @ w2 + b)[:, None, :, :])
    scores = hidden @ v
    if override is None:
        weights = softmax(scores, mask)
    else:
        weights = np.where(mask, override, 0.0) if mask is not None else override
    return weights @ value, weights


@pytest.fixture
def data(rng):
    q = rng.normal(size=(B, T, DQ)).astype("float32")
    k = rng.normal(size=(B, S, DK)).astype("float32")
    v = rng.normal(size=(B, S, DV)).astype("float32")
    return q, k, v


def test_matches_numpy_reference_with_masks(data):
    q, k, v = data
    layer = AdditiveAttention(U)
    qm = np.array([[1, 1, 0], [1, 1, 1]], bool)
    vm = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    out, w = layer(
        q, v, key=k, query_mask=qm, value_mask=vm, return_attention_scores=True
    )
    ref_out, ref_w = reference(layer, q, v, k, attention_mask(T, S, qm, vm, batch=B))
    np.testing.assert_allclose(np.asarray(w), ref_w, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out), ref_out, atol=1e-5)
    assert out.shape == (B, T, DV) and w.shape == (B, T, S)
    # Padded keys get exactly zero, padded query rows are all zero.
    assert np.all(np.asarray(w)[0][:, 3:] == 0.0)
    assert np.all(np.asarray(w)[0, 2] == 0.0)
    assert np.all(np.asarray(out)[0, 2] == 0.0)


def test_key_defaults_to_value_and_no_bias(rng):
    layer = AdditiveAttention(U, use_bias=False)
    q = rng.normal(size=(B, T, DQ)).astype("float32")
    v = rng.normal(size=(B, S, DV)).astype("float32")
    out, w = layer(q, v, return_attention_scores=True)
    assert layer.key_dense.bias is None
    ref_out, ref_w = reference(layer, q, v)
    np.testing.assert_allclose(np.asarray(out), ref_out, atol=1e-5)
    np.testing.assert_allclose(np.asarray(w), ref_w, atol=1e-5)


def test_fully_masked_row_is_zero_not_nan(data):
    q, k, v = data
    vm = np.array([[0, 0, 0, 0, 0], [1, 1, 0, 0, 0]], bool)
    out, w = AdditiveAttention(U)(q, v, key=k, value_mask=vm, return_attention_scores=True)
    out, w = np.asarray(out), np.asarray(w)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(w))
    np.testing.assert_array_equal(w[0], 0.0)
    np.testing.assert_array_equal(out[0], 0.0)
    np.testing.assert_allclose(w[1].sum(-1), 1.0, atol=1e-6)


def test_causal_mask(rng):
    x = rng.normal(size=(B, 4, DQ)).astype("float32")
    _, w = AdditiveAttention(U)(x, x, use_causal_mask=True, return_attention_scores=True)
    w = np.asarray(w)
    assert np.all(w[:, np.triu_indices(4, 1)[0], np.triu_indices(4, 1)[1]] == 0.0)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)


def test_explicit_attention_mask(data):
    q, k, v = data
    am = np.ones((B, T, S), bool)
    am[:, 1, :2] = False
    _, w = AdditiveAttention(U)(q, v, key=k, attention_mask=am, return_attention_scores=True)
    assert np.all(np.asarray(w)[:, 1, :2] == 0.0)


def test_keras_masks_are_picked_up_from_embeddings():
    ids_q = np.array([[3, 4, 0], [5, 0, 0]])
    ids_v = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 1]])
    emb = keras.layers.Embedding(10, DQ, mask_zero=True)
    layer = AdditiveAttention(U)
    q, v = emb(ids_q), emb(ids_v)
    out, w = layer(q, v, return_attention_scores=True)
    w = np.asarray(w)
    assert np.all(w[0][:, 3:] == 0.0)
    np.testing.assert_array_equal(w[0, 2], 0.0)
    np.testing.assert_array_equal(w[1, 1:], 0.0)
    np.testing.assert_array_equal(np.asarray(out._keras_mask), ids_q != 0)

    # The same inside a functional model.
    iq = keras.Input((3,), dtype="int32")
    iv = keras.Input((5,), dtype="int32")
    fo, fw = AdditiveAttention(U)(emb(iq), emb(iv), return_attention_scores=True)
    pooled = keras.layers.GlobalAveragePooling1D()(fo)  # consumes the mask
    model = keras.Model([iq, iv], [pooled, fw])
    _, mw = model([ids_q, ids_v])
    assert np.all(np.asarray(mw)[0][:, 3:] == 0.0)


def test_attention_override_is_used_and_gets_gradients(data):
    q, k, v = data
    layer = AdditiveAttention(U)
    vm = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], bool)
    override = tf.Variable(np.random.default_rng(1).random((B, T, S)).astype("float32"))
    with tf.GradientTape() as tape:
        out, w = layer(q, v, key=k, value_mask=vm, attention_override=override,
                       return_attention_scores=True)
        loss = tf.reduce_sum(out)
    expected_w = np.where(attention_mask(T, S, None, vm, batch=B), override.numpy(), 0.0)
    np.testing.assert_allclose(np.asarray(w), expected_w, atol=1e-6)
    np.testing.assert_allclose(np.asarray(out), expected_w @ v, atol=1e-5)
    grad = tape.gradient(loss, override)
    assert grad is not None
    grad = np.asarray(grad)
    # d(sum out)/d(w[b,t,s]) = sum_d v[b,s,d] for unmasked positions, 0 for masked.
    want = np.where(vm[:, None, :], v.sum(-1)[:, None, :], 0.0)
    np.testing.assert_allclose(grad, np.broadcast_to(want, grad.shape), atol=1e-5)


def test_dropout_only_in_training_and_weights_pre_dropout(data):
    q, k, v = data
    layer = AdditiveAttention(U, dropout=0.5)
    out_inf, w_inf = layer(q, v, key=k, return_attention_scores=True, training=False)
    out_tr, w_tr = layer(q, v, key=k, return_attention_scores=True, training=True)
    np.testing.assert_allclose(np.asarray(w_tr), np.asarray(w_inf), atol=1e-6)
    assert not np.allclose(np.asarray(out_tr), np.asarray(out_inf))
    out_inf2 = layer(q, v, key=k, training=False)
    np.testing.assert_array_equal(np.asarray(out_inf2), np.asarray(out_inf))


def test_symbolic_shapes_cross_attention():
    q = keras.Input((T, DQ))
    v = keras.Input((S, DV))
    k = keras.Input((S, DK))
    layer = AdditiveAttention(U)
    out, w = layer(q, v, key=k, return_attention_scores=True)
    assert out.shape == (None, T, DV)
    assert w.shape == (None, T, S)
    assert layer(q, v).shape == (None, T, DV)
    model = keras.Model([q, v, k], [out, w])
    eo, ew = model([np.zeros((B, T, DQ)), np.zeros((B, S, DV)), np.zeros((B, S, DK))])
    assert eo.shape == (B, T, DV) and ew.shape == (B, T, S)


def test_get_config_and_keras_save_load(data, tmp_path):
    q, k, v = data
    layer = AdditiveAttention(U, use_bias=False, dropout=0.25, name="bahdanau")
    clone = assert_config_roundtrip(layer)
    assert (clone.units, clone.use_bias, clone.dropout) == (U, False, 0.25)

    iq, iv = keras.Input((T, DQ)), keras.Input((S, DV))
    ik = keras.Input((S, DK))
    out, w = AdditiveAttention(U, dropout=0.1)(iq, iv, key=ik, return_attention_scores=True)
    model = keras.Model([iq, iv, ik], [out, w])
    assert_saved_model_identical(model, [q, v, k], tmp_path)


def test_mixed_precision_softmax_in_float32(data, mixed_float16):
    q, k, v = data
    layer = AdditiveAttention(U)
    out, w = layer(q, v, key=k, return_attention_scores=True)
    assert layer.compute_dtype == "float16"
    assert out.dtype == tf.float16 and w.dtype == tf.float16
    np.testing.assert_allclose(np.asarray(w, "float32").sum(-1), 1.0, atol=1e-3)
    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], bool)
    _, w = layer(q, v, key=k, value_mask=mask, return_attention_scores=True)
    assert np.all(np.asarray(w)[0][:, 2:] == 0.0)
    np.testing.assert_allclose(np.asarray(w, "float32").sum(-1), 1.0, atol=1e-3)


def test_invalid_units():
    with pytest.raises(ValueError, match="units"):
        AdditiveAttention(0)
