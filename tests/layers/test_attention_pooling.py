import keras
import numpy as np
import pytest
import tensorflow as tf

from attn_tf.layers import AttentionPooling
from layers_np_reference import np_
from layers_np_reference import softmax
from layers_roundtrip import assert_config_roundtrip
from layers_roundtrip import assert_saved_model_identical

B, T, D, U = 3, 6, 5, 7


def reference(layer, x, mask=None, override=None):
    w, b = np_(layer.projection.kernel), np_(layer.projection.bias)
    scores = np.tanh(np_(x) @ w + b) @ np_(layer.v)
    if override is None:
        weights = softmax(scores, mask)
    else:
        weights = override if mask is None else np.where(mask, override, 0.0)
    return np.einsum("bt,btd->bd", weights, np_(x)), weights


@pytest.fixture
def x(rng):
    return rng.normal(size=(B, T, D)).astype("float32")


MASK = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]], bool)


def test_matches_numpy_reference_with_padding(x):
    layer = AttentionPooling(U)
    out, w = layer(x, mask=MASK, return_attention_scores=True)
    assert out.shape == (B, D) and w.shape == (B, T)
    ref_out, ref_w = reference(layer, x, MASK)
    np.testing.assert_allclose(np.asarray(w), ref_w, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out), ref_out, atol=1e-5)
    w = np.asarray(w)
    assert np.all(w[0, 4:] == 0.0)
    np.testing.assert_allclose(w[:2].sum(-1), 1.0, atol=1e-6)
    # Fully padded sequence: zeros, no NaN.
    np.testing.assert_array_equal(w[2], 0.0)
    np.testing.assert_array_equal(np.asarray(out)[2], 0.0)


def test_units_default_to_input_width(x):
    layer = AttentionPooling()
    out = layer(x)
    assert layer.projection.kernel.shape == (D, D) and layer.v.shape == (D,)
    np.testing.assert_allclose(np.asarray(out), reference(layer, x)[0], atol=1e-5)


def test_mask_from_embedding_in_functional_model():
    ids = keras.Input((T,), dtype="int32")
    h = keras.layers.Embedding(50, D, mask_zero=True)(ids)
    h = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True))(h)
    pooled, w = AttentionPooling(U, name="pool")(h, return_attention_scores=True)
    assert pooled.shape == (None, 8) and w.shape == (None, T)
    assert getattr(pooled, "_keras_mask", None) is None
    model = keras.Model(ids, [keras.layers.Dense(2)(pooled), w])
    data = np.array([[3, 4, 5, 0, 0, 0], [1, 2, 3, 4, 5, 6], [7, 0, 0, 0, 0, 0]])
    _, w = model(data)
    w = np.asarray(w)
    np.testing.assert_array_equal(w[data == 0], 0.0)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(w[2, 0], 1.0, atol=1e-6)


def test_compute_mask_is_none(x):
    layer = AttentionPooling(U)
    assert layer.compute_mask(x, MASK) is None
    emb = keras.layers.Embedding(10, D, mask_zero=True)(np.array([[1, 2, 0]]))
    out = layer(emb)
    assert getattr(out, "_keras_mask", None) is None


def test_attention_override_and_gradients(x, rng):
    layer = AttentionPooling(U)
    override = tf.Variable(rng.random((B, T)).astype("float32"))
    with tf.GradientTape() as tape:
        out, w = layer(x, mask=MASK, attention_override=override, return_attention_scores=True)
        loss = tf.reduce_sum(out)
    ref_out, ref_w = reference(layer, x, MASK, override.numpy())
    np.testing.assert_allclose(np.asarray(w), ref_w, atol=1e-6)
    np.testing.assert_allclose(np.asarray(out), ref_out, atol=1e-5)
    grad = np.asarray(tape.gradient(loss, override))
    np.testing.assert_allclose(grad, np.where(MASK, x.sum(-1), 0.0), atol=1e-5)
    # Override with a mask only picked up from the Keras mask.
    emb = keras.layers.Embedding(10, D, mask_zero=True)
    h = emb(np.array([[1, 2, 0, 0, 0, 0]]))
    _, w = layer(h, attention_override=np.ones((1, T), "float32"), return_attention_scores=True)
    np.testing.assert_array_equal(np.asarray(w), [[1, 1, 0, 0, 0, 0]])


def test_override_as_functional_input_keeps_keras_mask():
    ids, ov = keras.Input((T,), dtype="int32"), keras.Input((T,))
    h = keras.layers.Embedding(10, D, mask_zero=True)(ids)
    pooled, w = AttentionPooling(U)(h, attention_override=ov, return_attention_scores=True)
    model = keras.Model([ids, ov], [pooled, w])
    _, w = model([np.array([[1, 2, 3, 0, 0, 0]]), np.full((1, T), 0.5, "float32")])
    np.testing.assert_array_equal(np.asarray(w), [[0.5, 0.5, 0.5, 0, 0, 0]])


def test_dropout_training_only(x):
    layer = AttentionPooling(U, dropout=0.5)
    o1, w1 = layer(x, return_attention_scores=True, training=True)
    o0, w0 = layer(x, return_attention_scores=True, training=False)
    np.testing.assert_allclose(np.asarray(w1), np.asarray(w0), atol=1e-6)
    assert not np.allclose(np.asarray(o1), np.asarray(o0))


def test_config_and_keras_save_load(x, tmp_path):
    clone = assert_config_roundtrip(AttentionPooling(None, dropout=0.3))
    assert clone.units is None and clone.dropout == 0.3
    inputs = keras.Input((T, D))
    pooled, w = AttentionPooling(U)(inputs, return_attention_scores=True)
    model = keras.Model(inputs, {"pooled": pooled, "weights": w})
    assert_saved_model_identical(model, x, tmp_path)


def test_mixed_precision(x, mixed_float16):
    layer = AttentionPooling(U)
    out, w = layer(x * 10, mask=MASK, return_attention_scores=True)
    assert out.dtype == tf.float16 and w.dtype == tf.float16
    w = np.asarray(w, "float32")
    np.testing.assert_allclose(w[:2].sum(-1), 1.0, atol=1e-3)
    np.testing.assert_array_equal(w[2], 0.0)
