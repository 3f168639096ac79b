"""Sparsemax and entmax-1.5: values against NumPy references, exact zeros, gradients, layer option."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from attn_tf.layers import AdditiveAttention
from attn_tf.layers import AttentionPooling
from attn_tf.layers import DotProductAttention
from attn_tf.layers import MultiHeadAttention
from attn_tf.layers import TransformerDecoder
from attn_tf.layers import TransformerEncoder
from attn_tf.layers.masking import masked_entmax15
from attn_tf.layers.masking import masked_normalize
from attn_tf.layers.masking import masked_sparsemax
from layers_roundtrip import assert_config_roundtrip


def _np_threshold(z, power):
    """p = max(z - tau, 0) ** power with sum 1, tau by bisection (float64), last axis.

    An algorithm independent of the sort-based one under test: power 1 is
    sparsemax, power 2 on z / 2 is entmax-1.5.
    """
    z = np.asarray(z, np.float64)
    lo = z.max(-1, keepdims=True) - 1.0
    hi = z.max(-1, keepdims=True)
    for _ in range(200):
        mid = (lo + hi) / 2
        s = (np.maximum(z - mid, 0) ** power).sum(-1, keepdims=True)
        lo = np.where(s > 1, mid, lo)
        hi = np.where(s > 1, hi, mid)
    return np.maximum(z - (lo + hi) / 2, 0) ** power


def np_sparsemax(z, mask):
    z = np.where(mask, z, -1e6)
    return np.where(mask, _np_threshold(z, 1), 0.0)


def np_entmax15(z, mask):
    z = np.where(mask, np.asarray(z, np.float64) / 2, -1e6)
    return np.where(mask, _np_threshold(z, 2), 0.0)


CASES = [(masked_sparsemax, np_sparsemax), (masked_entmax15, np_entmax15)]


@pytest.mark.parametrize("fn,ref", CASES, ids=["sparsemax", "entmax15"])
def test_matches_numpy_reference_with_exact_zeros_on_padding(fn, ref, rng):
    scores = (rng.normal(size=(3, 4, 9)) * 2).astype("float32")
    mask = rng.random((3, 4, 9)) > 0.3
    mask[..., 0] = True
    got = np.asarray(fn(scores, mask))
    np.testing.assert_allclose(got, ref(scores, mask), atol=2e-6)
    assert np.all(got[~mask] == 0.0)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)
    # Sparse: with scores this spread, some real positions get exactly zero too.
    assert np.sum((got == 0) & mask) > 0


@pytest.mark.parametrize("fn,ref", CASES, ids=["sparsemax", "entmax15"])
def test_fully_masked_row_is_zero_and_other_axis(fn, ref, rng):
    scores = rng.normal(size=(2, 5, 3)).astype("float32")
    mask = np.ones((2, 5, 3), bool)
    mask[1, :, 2] = False  # a fully masked slice along axis 1
    got = np.asarray(fn(scores, mask, axis=1))
    np.testing.assert_array_equal(got[1, :, 2], 0.0)
    want = np.moveaxis(ref(np.moveaxis(scores, 1, -1), np.moveaxis(mask, 1, -1)), -1, 1)
    np.testing.assert_allclose(got, want, atol=2e-6)


def test_known_values_and_limits():
    np.testing.assert_allclose(np.asarray(masked_sparsemax(np.array([[2.0, 1.5, 0.0]], "float32"))),
                               [[0.75, 0.25, 0.0]], atol=1e-7)
    # Equal scores: both are uniform on the valid positions.
    for fn in (masked_sparsemax, masked_entmax15):
        np.testing.assert_allclose(np.asarray(fn(np.zeros((1, 4), "float32"), [[1, 1, 1, 0]])),
                                   [[1 / 3, 1 / 3, 1 / 3, 0]], atol=1e-6)
    # One score far above the rest takes all the mass (softmax would not).
    w = np.asarray(masked_entmax15(np.array([[5.0, 0.0, 0.1]], "float32")))
    np.testing.assert_array_equal(w, [[1.0, 0.0, 0.0]])
    # Huge scores stay finite.
    w = np.asarray(masked_sparsemax(np.array([[1e30, 1e30, -1e30]], "float32")))
    np.testing.assert_allclose(w, [[0.5, 0.5, 0.0]])


@pytest.mark.parametrize("fn", [masked_sparsemax, masked_entmax15], ids=["sparsemax", "entmax15"])
def test_gradient_matches_finite_differences(fn, rng):
    z0 = (rng.normal(size=(2, 7)) * 1.5).astype("float64")
    mask = np.array([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1]], bool)
    coef = rng.normal(size=(2, 7))

    def f(z):
        return float(np.sum(coef * np.asarray(fn(tf.constant(z, tf.float64), mask))))

    z = tf.Variable(z0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(coef * fn(z, mask))
    grad = tape.gradient(loss, z).numpy()
    eps = 1e-6
    num = np.zeros_like(z0)
    for idx in np.ndindex(z0.shape):
        zp, zm = z0.copy(), z0.copy()
        zp[idx] += eps
        zm[idx] -= eps
        num[idx] = (f(zp) - f(zm)) / (2 * eps)
    np.testing.assert_allclose(grad, num, atol=1e-5)
    assert np.all(grad[~mask] == 0.0)


def test_fully_masked_row_has_finite_zero_gradient():
    for fn in (masked_sparsemax, masked_entmax15):
        z = tf.Variable(np.ones((2, 3), "float32"))
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(fn(z, [[1, 1, 0], [0, 0, 0]]) * [1.0, 2.0, 3.0])
        g = tape.gradient(loss, z).numpy()
        assert np.all(np.isfinite(g)) and np.all(g[1] == 0)


def test_half_precision_scores_keep_dtype():
    got = masked_sparsemax(tf.constant([[1000.0, 1000.5, 999.0]], tf.float16), [[1, 1, 1]])
    assert got.dtype == tf.float16
    np.testing.assert_allclose(np.asarray(got, "float32"), [[0.25, 0.75, 0.0]], atol=1e-3)


def test_unknown_normalizer_names_the_choices():
    with pytest.raises(ValueError, match="sparsemax"):
        masked_normalize(np.zeros((1, 2), "float32"), normalizer="sparse")
    with pytest.raises(ValueError, match="entmax15"):
        AttentionPooling(8, normalizer="entmax")


def _layers(normalizer):
    return {
        "additive": (AdditiveAttention(8, normalizer=normalizer), 3),
        "dot": (DotProductAttention("scaled", normalizer=normalizer), 3),
        "pooling": (AttentionPooling(8, normalizer=normalizer), 2),
        "mha": (MultiHeadAttention(2, 4, normalizer=normalizer), 4),
        "encoder": (TransformerEncoder(2, 16, dropout=0.0, normalizer=normalizer), 4),
        "decoder": (TransformerDecoder(2, 16, dropout=0.0, normalizer=normalizer), 4),
    }


@pytest.mark.parametrize("normalizer", ["sparsemax", "entmax15"])
def test_every_layer_normalizes_with_the_option_and_round_trips(normalizer, rng):
    x = rng.normal(size=(2, 6, 8)).astype("float32") * 3
    mask = np.array([[1] * 6, [1, 1, 1, 1, 0, 0]], bool)
    for name, (layer, rank) in _layers(normalizer).items():
        if name == "pooling":
            _, w = layer(x, mask=mask, return_attention_scores=True)
        elif name in ("encoder",):
            _, w = layer(x, padding_mask=mask, return_attention_scores=True)
        elif name == "decoder":
            _, w, _ = layer(x, x, decoder_padding_mask=mask, encoder_padding_mask=mask,
                            return_attention_scores=True)
        elif name == "mha":
            _, w = layer(x, x, query_mask=mask, value_mask=mask, return_attention_scores=True)
        else:
            _, w = layer(x, x, query_mask=mask, value_mask=mask, return_attention_scores=True)
        w = np.asarray(w)
        assert w.ndim == rank, name
        # Padded keys of the second example get exactly zero; real rows sum to 1.
        assert np.all(w[1, ..., 4:] == 0.0), name
        rows = w[0].reshape(-1, 6).sum(-1)
        np.testing.assert_allclose(rows, 1.0, atol=1e-5, err_msg=name)
        assert layer.get_config()["normalizer"] == normalizer, name
        assert_config_roundtrip(layer)


def test_pooling_model_with_sparsemax_saves_and_loads(tmp_path, rng):
    inp = keras.Input((5, 4))
    out, w = AttentionPooling(6, normalizer="sparsemax")(inp, return_attention_scores=True)
    model = keras.Model(inp, [out, w])
    x = rng.normal(size=(3, 5, 4)).astype("float32") * 4
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.layers[1].normalizer == "sparsemax"
    np.testing.assert_allclose(np.asarray(loaded(x)[1]), np.asarray(model(x)[1]), atol=1e-6)
