import keras
import numpy as np
import pytest
import tensorflow as tf

from attn_tf.layers import MultiHeadAttention
from layers_np_reference import attention_mask
from layers_np_reference import mha as reference
from layers_roundtrip import assert_config_roundtrip
from layers_roundtrip import assert_saved_model_identical

B, H, KD, T, S, D = 2, 3, 4, 5, 7, 6


@pytest.fixture
def data(rng):
    q = rng.normal(size=(B, T, D)).astype("float32")
    v = rng.normal(size=(B, S, D)).astype("float32")
    return q, v


def init_random(layer, rng):
    """Random non-zero biases so the reference checks them too."""
    for w in layer.weights:
        w.assign(rng.normal(scale=0.5, size=w.shape).astype("float32"))


def test_cross_attention_matches_numpy_reference(data, rng):
    q, v = data
    k = rng.normal(size=(B, S, 5)).astype("float32")
    layer = MultiHeadAttention(H, KD)
    layer(q, v, key=k)
    init_random(layer, rng)
    qm = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], bool)
    vm = np.array([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 1, 1, 1]], bool)
    out, w = layer(q, v, key=k, query_mask=qm, value_mask=vm, return_attention_scores=True)
    assert out.shape == (B, T, D) and w.shape == (B, H, T, S)
    mask = attention_mask(T, S, qm, vm, batch=B)
    ref_out, ref_w = reference(layer, q, v, k, mask=mask)
    np.testing.assert_allclose(np.asarray(w), ref_w, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out), ref_out, atol=1e-5)
    w = np.asarray(w)
    assert np.all(w[0][..., 5:] == 0.0) and np.all(w[1][..., 3] == 0.0)
    np.testing.assert_array_equal(w[0, :, 4], 0.0)  # padded query row


def test_same_numbers_as_keras_multi_head_attention(data, rng):
    q, v = data
    ours = MultiHeadAttention(H, KD, value_dim=5, output_shape=8)
    theirs = keras.layers.MultiHeadAttention(H, KD, value_dim=5, output_shape=8)
    ours(q, v)
    theirs(q, v)
    for a, b in [
        (ours.query_dense, theirs.query_dense),
        (ours.key_dense, theirs.key_dense),
        (ours.value_dense, theirs.value_dense),
        (ours.output_dense, theirs.output_dense),
    ]:
        for wa, wb in zip(a.weights, b.weights):
            value = rng.normal(size=wa.shape).astype("float32")
            wa.assign(value)
            wb.assign(value)
    am = rng.random((B, T, S)) > 0.3
    am[..., 0] = True
    o1, w1 = ours(q, v, attention_mask=am, return_attention_scores=True)
    o2, w2 = theirs(q, v, attention_mask=am, return_attention_scores=True)
    assert o1.shape == (B, T, 8)
    np.testing.assert_allclose(np.asarray(o1), np.asarray(o2), atol=1e-5)
    np.testing.assert_allclose(np.asarray(w1), np.asarray(w2), atol=1e-6)


def test_self_attention_causal_and_padding(rng):
    x = rng.normal(size=(B, T, D)).astype("float32")
    pad = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    layer = MultiHeadAttention(H, KD)
    out, w = layer(x, x, query_mask=pad, value_mask=pad, use_causal_mask=True,
                   return_attention_scores=True)
    w = np.asarray(w)
    iu = np.triu_indices(T, 1)
    assert np.all(w[:, :, iu[0], iu[1]] == 0.0)
    assert np.all(w[0][..., 3:] == 0.0)
    np.testing.assert_array_equal(w[0, :, 3:], 0.0)
    np.testing.assert_allclose(w[1].sum(-1), 1.0, atol=1e-6)
    ref_out, ref_w = reference(layer, x, x, mask=attention_mask(T, T, pad, pad, causal=True, batch=B))
    np.testing.assert_allclose(w, ref_w, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out), ref_out, atol=1e-5)


def test_fully_masked_rows_give_zero_weights_not_nan(data):
    q, v = data
    vm = np.zeros((B, S), bool)
    vm[1, :2] = True
    layer = MultiHeadAttention(H, KD)
    out, w = layer(q, v, value_mask=vm, return_attention_scores=True)
    w, out = np.asarray(w), np.asarray(out)
    assert np.all(np.isfinite(w)) and np.all(np.isfinite(out))
    np.testing.assert_array_equal(w[0], 0.0)
    # Zero context: the output is the output projection's bias.
    np.testing.assert_allclose(out[0], np.broadcast_to(np.asarray(layer.output_dense.bias), (T, D)), atol=1e-6)
    np.testing.assert_allclose(w[1].sum(-1), 1.0, atol=1e-6)


def test_four_dimensional_attention_mask(data):
    q, v = data
    am = np.ones((B, H, T, S), bool)
    am[:, 1, :, 0] = False
    _, w = MultiHeadAttention(H, KD)(q, v, attention_mask=am, return_attention_scores=True)
    w = np.asarray(w)
    assert np.all(w[:, 1, :, 0] == 0.0) and np.all(w[:, 0, :, 0] > 0.0)


def test_keras_masks_picked_up_and_output_mask_is_query_mask():
    emb = keras.layers.Embedding(30, D, mask_zero=True)
    ids_q = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]])
    ids_v = np.array([[1, 2, 3, 4, 5, 0, 0], [1, 2, 0, 0, 0, 0, 0]])
    q, v = emb(ids_q), emb(ids_v)
    out, w = MultiHeadAttention(H, KD)(q, v, return_attention_scores=True)
    w = np.asarray(w)
    assert np.all(w[0][..., 5:] == 0.0) and np.all(w[1][..., 2:] == 0.0)
    np.testing.assert_array_equal(w[0, :, 3:], 0.0)
    np.testing.assert_array_equal(np.asarray(out._keras_mask), ids_q != 0)
    # The inputs keep their masks.
    np.testing.assert_array_equal(np.asarray(q._keras_mask), ids_q != 0)

    iq = keras.Input((T,), dtype="int32")
    iv = keras.Input((S,), dtype="int32")
    fo, fw = MultiHeadAttention(H, KD)(emb(iq), emb(iv), return_attention_scores=True)
    assert fw.shape == (None, H, T, S)
    model = keras.Model([iq, iv], [keras.layers.GlobalAveragePooling1D()(fo), fw])
    _, mw = model([ids_q, ids_v])
    assert np.all(np.asarray(mw)[0][..., 5:] == 0.0)


def test_attention_override_replaces_distribution_and_gets_gradients(data, rng):
    q, v = data
    layer = MultiHeadAttention(H, KD)
    layer(q, v)
    init_random(layer, rng)
    vm = np.ones((B, S), bool)
    vm[0, -2:] = False
    override = tf.Variable(rng.random((B, H, T, S)).astype("float32"))
    with tf.GradientTape() as tape:
        out, w = layer(q, v, value_mask=vm, attention_override=override,
                       return_attention_scores=True)
        loss = tf.reduce_sum(out)
    mask = attention_mask(T, S, None, vm, batch=B)
    ref_out, ref_w = reference(layer, q, v, mask=mask, override=override.numpy())
    np.testing.assert_allclose(np.asarray(w), ref_w, atol=1e-6)
    np.testing.assert_allclose(np.asarray(out), ref_out, atol=1e-5)
    grad = np.asarray(tape.gradient(loss, override))
    assert np.all(grad[0][..., -2:] == 0.0) and np.any(grad[0][..., :-2] != 0.0)

    # A [B, 1, T, S] override is broadcast over the heads.
    uniform = np.full((B, 1, T, S), 1.0 / S, "float32")
    _, w = layer(q, v, attention_override=uniform, return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(w), np.full((B, H, T, S), 1.0 / S), atol=1e-7)


def test_override_as_functional_model_input(data):
    q, v = data
    iq, iv, io = keras.Input((T, D)), keras.Input((S, D)), keras.Input((H, T, S))
    out, w = MultiHeadAttention(H, KD)(iq, iv, attention_override=io,
                                       return_attention_scores=True)
    assert w.shape == (None, H, T, S)
    model = keras.Model([iq, iv, io], [out, w])
    override = np.random.default_rng(3).random((B, H, T, S)).astype("float32")
    _, w = model([q, v, override])
    np.testing.assert_allclose(np.asarray(w), override, atol=1e-7)


def test_dropout_training_only(data):
    q, v = data
    layer = MultiHeadAttention(H, KD, dropout=0.5)
    o1, w1 = layer(q, v, return_attention_scores=True, training=True)
    o0, w0 = layer(q, v, return_attention_scores=True, training=False)
    np.testing.assert_allclose(np.asarray(w1), np.asarray(w0), atol=1e-6)
    np.testing.assert_allclose(np.asarray(w1).sum(-1), 1.0, atol=1e-5)
    assert not np.allclose(np.asarray(o1), np.asarray(o0))


def test_symbolic_cross_shapes_t_ne_s():
    q, v = keras.Input((T, D)), keras.Input((S, 9))
    out, w = MultiHeadAttention(H, KD, value_dim=2)(q, v, return_attention_scores=True)
    assert out.shape == (None, T, D)
    assert w.shape == (None, H, T, S)  # keras.layers.MultiHeadAttention says (None, H, T, T)
    model = keras.Model([q, v], [out, w])
    eo, ew = model([np.zeros((B, T, D)), np.zeros((B, S, 9))])
    assert eo.shape == (B, T, D) and ew.shape == (B, H, T, S)
    out = MultiHeadAttention(H, KD, output_shape=11)(q, v)
    assert out.shape == (None, T, 11)


def test_config_and_keras_save_load(data, tmp_path):
    q, v = data
    layer = MultiHeadAttention(H, KD, value_dim=3, dropout=0.1, use_bias=False,
                               output_shape=(10,), kernel_initializer="he_normal")
    clone = assert_config_roundtrip(layer)
    assert (clone.num_heads, clone.key_dim, clone.value_dim) == (H, KD, 3)
    assert clone.get_config()["output_shape"] == 10

    iq, iv = keras.Input((T, D)), keras.Input((S, D))
    out, w = MultiHeadAttention(H, KD, dropout=0.1)(iq, iv, use_causal_mask=True,
                                                   return_attention_scores=True)
    model = keras.Model([iq, iv], [out, w])
    assert_saved_model_identical(model, [q, v], tmp_path)


def test_mixed_precision_float32_softmax(data, mixed_float16):
    q, v = data
    layer = MultiHeadAttention(H, KD)
    out, w = layer(q * 20, v, return_attention_scores=True)
    assert out.dtype == tf.float16 and w.dtype == tf.float16
    assert layer.query_dense.kernel.dtype == "float32"
    w = np.asarray(w, "float32")
    assert np.all(np.isfinite(w))
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-3)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="num_heads"):
        MultiHeadAttention(0, 4)
    with pytest.raises(ValueError, match="key_dim"):
        MultiHeadAttention(2, None)
    with pytest.raises(ValueError, match="rank 3"):
        MultiHeadAttention(2, 4)(np.zeros((1, 2, 3, 4)), np.zeros((1, 2, 3, 4)))


# --- fused path: keras.ops.dot_product_attention when the weights are not needed ---------------------------

def _spy_fused(monkeypatch):
    calls = []
    real = keras.ops.dot_product_attention

    def spy(*args, **kwargs):
        calls.append(kwargs.get("mask") is not None)
        return real(*args, **kwargs)

    monkeypatch.setattr(keras.ops, "dot_product_attention", spy)
    return calls


def _masks(case, rng):
    if case == "none":
        return {}
    if case == "value_mask_with_fully_masked_row":
        vm = np.ones((B, S), bool)
        vm[0, :] = False  # no key at all: zero context, as the explicit path gives
        vm[1, 4:] = False
        return {"value_mask": vm}
    if case == "query_and_value_masks":
        qm = np.ones((B, T), bool)
        qm[1, 3:] = False
        vm = np.ones((B, S), bool)
        vm[:, 5:] = False
        return {"query_mask": qm, "value_mask": vm}
    if case == "causal":
        return {"use_causal_mask": True}
    if case == "mask_4d":
        am = rng.random((B, H, T, S)) > 0.3
        am[0, 1, 2, :] = False
        return {"attention_mask": am}
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["none", "value_mask_with_fully_masked_row", "query_and_value_masks",
                                  "causal", "mask_4d"])
def test_fused_path_equals_explicit_path(data, rng, monkeypatch, case):
    q, v = data
    if case == "causal":
        v = q  # self-attention, T == S
    layer = MultiHeadAttention(H, KD)
    layer(q, v)
    init_random(layer, rng)
    kwargs = _masks(case, rng)
    explicit, _ = layer(q, v, return_attention_scores=True, **kwargs)
    calls = _spy_fused(monkeypatch)
    fused = layer(q, v, **kwargs)
    assert calls == [case != "none"], "the fused op was not used"
    np.testing.assert_allclose(np.asarray(fused), np.asarray(explicit), rtol=0, atol=1e-5)
    assert np.all(np.isfinite(np.asarray(fused)))


def test_fused_path_inside_tf_function_and_mixed_precision(data, rng, mixed_float16):
    q, v = data
    layer = MultiHeadAttention(H, KD)
    vm = np.ones((B, S), bool)
    vm[1, 2:] = False
    explicit = tf.function(lambda a, b: layer(a, b, value_mask=vm, return_attention_scores=True)[0])(q, v)
    fused = tf.function(lambda a, b: layer(a, b, value_mask=vm))(q, v)
    assert fused.dtype == explicit.dtype == tf.float16
    np.testing.assert_allclose(np.asarray(fused, np.float32), np.asarray(explicit, np.float32), atol=2e-3)


def test_explicit_path_kept_when_the_weights_matter(data, rng, monkeypatch):
    """Override, dropout in training, or a non-softmax normalizer need the explicit weights."""
    import inspect

    q, v = data
    calls = _spy_fused(monkeypatch)
    layer = MultiHeadAttention(H, KD, dropout=0.5)
    layer(q, v, training=True)
    uniform = np.full((B, 1, T, S), 1.0 / S, "float32")
    _, w = layer(q, v, attention_override=uniform, return_attention_scores=True)
    layer(q, v, attention_override=uniform)
    assert calls == []
    np.testing.assert_allclose(np.asarray(w), np.broadcast_to(uniform, (B, H, T, S)), atol=1e-7)
    layer(q, v)  # inference: dropout is off, the fused op applies
    assert calls == [False]
    if "normalizer" in inspect.signature(MultiHeadAttention.__init__).parameters:
        sparse = MultiHeadAttention(H, KD, normalizer="sparsemax")
    else:  # the option is being added; the attribute is what the layer checks
        sparse = MultiHeadAttention(H, KD)
        sparse.normalizer = "sparsemax"
    calls.clear()
    sparse(q, v)
    assert calls == []
