import keras
import numpy as np
import pytest
import tensorflow as tf

from attn_tf.layers import TransformerEncoder
from layers_np_reference import attention_mask
from layers_np_reference import layer_norm
from layers_np_reference import mha
from layers_np_reference import np_
from layers_roundtrip import assert_config_roundtrip
from layers_roundtrip import assert_saved_model_identical

B, T, D, H, FF = 2, 5, 8, 2, 16
PAD = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)


def reference(layer, x, mask=None, override=None):
    def norm(ln, h):
        return layer_norm(h, np_(ln.gamma), np_(ln.beta), layer.layer_norm_epsilon)

    def ffn(h):
        a = layer.feedforward_intermediate_dense
        o = layer.feedforward_output_dense
        h = np.maximum(h @ np_(a.kernel) + np_(a.bias), 0.0)
        return h @ np_(o.kernel) + np_(o.bias)

    x = np_(x)
    pre = layer.normalize_first
    h = norm(layer.self_attention_layer_norm, x) if pre else x
    a, w = mha(layer.self_attention, h, h, mask=mask, override=override)
    x = x + a
    if not pre:
        x = norm(layer.self_attention_layer_norm, x)
    h = norm(layer.feedforward_layer_norm, x) if pre else x
    x = x + ffn(h)
    if not pre:
        x = norm(layer.feedforward_layer_norm, x)
    return x, w


def randomize(layer, rng):
    for w in layer.weights:
        w.assign(w.numpy() + rng.normal(scale=0.3, size=w.shape).astype("float32"))


@pytest.fixture
def x(rng):
    return rng.normal(size=(B, T, D)).astype("float32")


@pytest.mark.parametrize("normalize_first", [False, True])
def test_matches_numpy_reference(x, rng, normalize_first):
    layer = TransformerEncoder(H, FF, normalize_first=normalize_first)
    layer(x)
    randomize(layer, rng)
    assert layer.self_attention.key_dim == D // H
    out, w = layer(x, padding_mask=PAD, return_attention_scores=True)
    assert out.shape == (B, T, D) and w.shape == (B, H, T, T)
    ref_out, ref_w = reference(layer, x, attention_mask(T, T, PAD, PAD, batch=B))
    np.testing.assert_allclose(np.asarray(w), ref_w, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out), ref_out, atol=1e-5)
    w = np.asarray(w)
    assert np.all(w[0][..., 3:] == 0.0)
    np.testing.assert_array_equal(w[0, :, 3:], 0.0)
    assert np.all(np.isfinite(np.asarray(out)))


def test_keras_mask_equals_explicit_padding_mask_and_is_propagated():
    ids = np.array([[4, 5, 6, 0, 0], [1, 2, 3, 4, 5]])
    emb = keras.layers.Embedding(10, D, mask_zero=True)
    layer = TransformerEncoder(H, FF)
    h = emb(ids)
    o1, w1 = layer(h, return_attention_scores=True)
    o2, w2 = layer(h, padding_mask=ids != 0, return_attention_scores=True)
    np.testing.assert_array_equal(np.asarray(w1), np.asarray(w2))
    np.testing.assert_array_equal(np.asarray(o1), np.asarray(o2))
    np.testing.assert_array_equal(np.asarray(o1._keras_mask), ids != 0)

    inp = keras.Input((T,), dtype="int32")
    y, w = TransformerEncoder(H, FF)(emb(inp), return_attention_scores=True)
    y2 = TransformerEncoder(H, FF)(y)  # the mask flows to the next block
    assert y2.shape == (None, T, D) and w.shape == (None, H, T, T)
    model = keras.Model(inp, [keras.layers.GlobalAveragePooling1D()(y2), w])
    _, mw = model(ids)
    assert np.all(np.asarray(mw)[0][..., 3:] == 0.0)


def test_causal_and_attention_mask(x):
    layer = TransformerEncoder(H, FF)
    _, w = layer(x, use_causal_mask=True, return_attention_scores=True)
    w = np.asarray(w)
    iu = np.triu_indices(T, 1)
    assert np.all(w[:, :, iu[0], iu[1]] == 0.0)
    am = np.ones((B, T, T), bool)
    am[:, :, 1] = False
    _, w = layer(x, attention_mask=am, return_attention_scores=True)
    assert np.all(np.asarray(w)[..., 1] == 0.0)


def test_attention_override_changes_output_and_gets_gradients(x, rng):
    layer = TransformerEncoder(H, FF)
    base_out = layer(x, padding_mask=PAD)
    override = tf.Variable(rng.random((B, H, T, T)).astype("float32"))
    with tf.GradientTape() as tape:
        out, w = layer(x, padding_mask=PAD, attention_override=override,
                       return_attention_scores=True)
        loss = tf.reduce_sum(out ** 2)
    mask = attention_mask(T, T, PAD, PAD, batch=B)
    ref_out, ref_w = reference(layer, x, mask, override.numpy())
    np.testing.assert_allclose(np.asarray(w), ref_w, atol=1e-6)
    np.testing.assert_allclose(np.asarray(out), ref_out, atol=1e-5)
    assert not np.allclose(np.asarray(out), np.asarray(base_out))
    grad = np.asarray(tape.gradient(loss, override))
    assert np.all(grad[0][..., 3:] == 0.0) and np.any(grad != 0.0)


def test_dropout_training_only(x):
    layer = TransformerEncoder(H, FF, dropout=0.3)
    o0 = layer(x, training=False)
    np.testing.assert_array_equal(np.asarray(layer(x)), np.asarray(o0))
    _, w1 = layer(x, training=True, return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(w1).sum(-1), 1.0, atol=1e-5)
    assert not np.allclose(np.asarray(layer(x, training=True)), np.asarray(o0))


def test_symbolic_shapes_and_invalid_heads():
    inp = keras.Input((None, D))
    out, w = TransformerEncoder(H, FF)(inp, return_attention_scores=True)
    assert out.shape == (None, None, D) and w.shape == (None, H, None, None)
    model = keras.Model(inp, [out, w])
    eo, ew = model(np.zeros((B, 3, D), "float32"))
    assert eo.shape == (B, 3, D) and ew.shape == (B, H, 3, 3)
    with pytest.raises(ValueError, match="divisible"):
        TransformerEncoder(3, FF)(np.zeros((1, 2, D), "float32"))


def test_config_and_keras_save_load(x, tmp_path):
    layer = TransformerEncoder(4, 32, dropout=0.2, activation="gelu",
                               layer_norm_epsilon=1e-6, normalize_first=True)
    clone = assert_config_roundtrip(layer)
    assert clone.normalize_first and clone.layer_norm_epsilon == 1e-6

    ids = keras.Input((T,), dtype="int32")
    h = keras.layers.Embedding(20, D, mask_zero=True)(ids)
    h, w = TransformerEncoder(H, FF, name="block")(h, return_attention_scores=True)
    model = keras.Model(ids, {"out": h, "attention": w})
    assert_saved_model_identical(model, np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]]), tmp_path)


def test_mixed_precision(x, mixed_float16):
    layer = TransformerEncoder(H, FF)
    out, w = layer(x, padding_mask=PAD, return_attention_scores=True)
    assert out.dtype == tf.float16 and w.dtype == tf.float16
    w = np.asarray(w, "float32")
    np.testing.assert_allclose(w[1].sum(-1), 1.0, atol=1e-3)
    assert np.all(w[0][..., 3:] == 0.0)
    assert np.all(np.isfinite(np.asarray(out, "float32")))


def test_trains_in_a_compiled_model():
    ids = keras.Input((T,), dtype="int32")
    h = keras.layers.Embedding(20, D, mask_zero=True)(ids)
    h = TransformerEncoder(H, FF)(h)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling1D()(h))
    model = keras.Model(ids, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    data = np.random.default_rng(0).integers(0, 20, size=(16, T))
    hist = model.fit(data, (data[:, 0] > 10).astype("int32"), epochs=2, batch_size=8, verbose=0)
    assert np.all(np.isfinite(hist.history["loss"]))
