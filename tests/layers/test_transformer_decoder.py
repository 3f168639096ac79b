import keras
import numpy as np
import pytest
import tensorflow as tf

from attn_tf.layers import TransformerDecoder
from layers_np_reference import attention_mask
from layers_np_reference import layer_norm
from layers_np_reference import mha
from layers_np_reference import np_
from layers_roundtrip import assert_config_roundtrip
from layers_roundtrip import assert_saved_model_identical

B, T, S, D, DE, H, FF = 2, 4, 6, 8, 10, 2, 16
DEC_PAD = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
ENC_PAD = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], bool)


def reference(layer, dec, enc, dec_pad, enc_pad, self_override=None, cross_override=None):
    def norm(ln, h):
        return layer_norm(h, np_(ln.gamma), np_(ln.beta), layer.layer_norm_epsilon)

    a, o = layer.feedforward_intermediate_dense, layer.feedforward_output_dense
    x = np_(dec)
    s, sw = mha(layer.self_attention, x, x,
                mask=attention_mask(T, T, dec_pad, dec_pad, causal=True, batch=B),
                override=self_override)
    x = norm(layer.self_attention_layer_norm, x + s)
    c, cw = mha(layer.cross_attention, x, np_(enc),
                mask=attention_mask(T, S, dec_pad, enc_pad, batch=B), override=cross_override)
    x = norm(layer.cross_attention_layer_norm, x + c)
    f = np.maximum(x @ np_(a.kernel) + np_(a.bias), 0) @ np_(o.kernel) + np_(o.bias)
    return norm(layer.feedforward_layer_norm, x + f), sw, cw


@pytest.fixture
def data(rng):
    dec = rng.normal(size=(B, T, D)).astype("float32")
    enc = rng.normal(size=(B, S, DE)).astype("float32")
    return dec, enc


def test_matches_numpy_reference_causal_and_padding(data, rng):
    dec, enc = data
    layer = TransformerDecoder(H, FF)
    layer(dec, enc)
    for w in layer.weights:
        w.assign(w.numpy() + rng.normal(scale=0.3, size=w.shape).astype("float32"))
    out, sw, cw = layer(dec, enc, decoder_padding_mask=DEC_PAD, encoder_padding_mask=ENC_PAD,
                        return_attention_scores=True)
    assert out.shape == (B, T, D) and sw.shape == (B, H, T, T) and cw.shape == (B, H, T, S)
    ref_out, ref_sw, ref_cw = reference(layer, dec, enc, DEC_PAD, ENC_PAD)
    np.testing.assert_allclose(np.asarray(sw), ref_sw, atol=1e-5)
    np.testing.assert_allclose(np.asarray(cw), ref_cw, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out), ref_out, atol=1e-5)
    sw, cw = np.asarray(sw), np.asarray(cw)
    iu = np.triu_indices(T, 1)
    assert np.all(sw[:, :, iu[0], iu[1]] == 0.0)
    assert np.all(cw[0][..., 4:] == 0.0)
    np.testing.assert_array_equal(cw[0, :, 3], 0.0)


def test_masks_from_embeddings_and_symbolic_shapes():
    src = keras.Input((S,), dtype="int32")
    tgt = keras.Input((T,), dtype="int32")
    enc = keras.layers.Embedding(20, DE, mask_zero=True)(src)
    dec = keras.layers.Embedding(20, D, mask_zero=True)(tgt)
    out, sw, cw = TransformerDecoder(H, FF)(dec, enc, return_attention_scores=True)
    assert out.shape == (None, T, D)
    assert sw.shape == (None, H, T, T) and cw.shape == (None, H, T, S)
    model = keras.Model([tgt, src], [out, sw, cw])
    s_ids = np.array([[1, 2, 3, 4, 0, 0], [1, 2, 3, 4, 5, 6]])
    t_ids = np.array([[1, 2, 3, 0], [1, 2, 3, 4]])
    o, sw, cw = model([t_ids, s_ids])
    assert o.shape == (B, T, D)
    cw = np.asarray(cw)
    assert np.all(cw[0][..., 4:] == 0.0)
    np.testing.assert_array_equal(cw[0, :, 3], 0.0)
    np.testing.assert_allclose(cw[1].sum(-1), 1.0, atol=1e-6)


def test_overrides_and_gradients(data, rng):
    dec, enc = data
    layer = TransformerDecoder(H, FF)
    so = tf.Variable(rng.random((B, H, T, T)).astype("float32"))
    co = tf.Variable(rng.random((B, H, T, S)).astype("float32"))
    with tf.GradientTape() as tape:
        out, sw, cw = layer(dec, enc, encoder_padding_mask=ENC_PAD, return_attention_scores=True,
                            self_attention_override=so, cross_attention_override=co)
        loss = tf.reduce_sum(out ** 2)
    ref_out, ref_sw, ref_cw = reference(layer, dec, enc, None, ENC_PAD, so.numpy(), co.numpy())
    np.testing.assert_allclose(np.asarray(sw), ref_sw, atol=1e-6)
    np.testing.assert_allclose(np.asarray(cw), ref_cw, atol=1e-6)
    np.testing.assert_allclose(np.asarray(out), ref_out, atol=1e-5)
    g_self, g_cross = tape.gradient(loss, [so, co])
    iu = np.triu_indices(T, 1)
    assert np.all(np.asarray(g_self)[:, :, iu[0], iu[1]] == 0.0)  # future stays masked
    assert np.all(np.asarray(g_cross)[0][..., 4:] == 0.0)
    assert np.any(np.asarray(g_cross) != 0.0) and np.any(np.asarray(g_self) != 0.0)


def test_config_and_keras_save_load(data, tmp_path):
    dec, enc = data
    clone = assert_config_roundtrip(TransformerDecoder(H, FF, dropout=0.0, normalize_first=True))
    assert clone.normalize_first and clone.dropout == 0.0
    d_in, e_in = keras.Input((T, D)), keras.Input((S, DE))
    out, sw, cw = TransformerDecoder(H, FF)(d_in, e_in, return_attention_scores=True)
    model = keras.Model([d_in, e_in], [out, sw, cw])
    assert_saved_model_identical(model, [dec, enc], tmp_path)


def test_mixed_precision(data, mixed_float16):
    dec, enc = data
    out, sw, cw = TransformerDecoder(H, FF, normalize_first=True)(
        dec, enc, encoder_padding_mask=ENC_PAD, return_attention_scores=True)
    assert out.dtype == tf.float16
    np.testing.assert_allclose(np.asarray(sw, "float32").sum(-1), 1.0, atol=1e-3)
    np.testing.assert_allclose(np.asarray(cw, "float32").sum(-1), 1.0, atol=1e-3)
