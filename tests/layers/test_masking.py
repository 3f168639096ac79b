import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from attn_tf.layers import causal_mask
from attn_tf.layers import compute_attention_mask
from attn_tf.layers import masked_softmax
from layers_np_reference import softmax


def test_masked_softmax_matches_reference_and_zeroes_padding(rng):
    scores = rng.normal(size=(2, 3, 5)).astype("float32")
    mask = rng.random((2, 3, 5)) > 0.3
    mask[:, :, 0] = True
    got = np.asarray(masked_softmax(scores, mask))
    np.testing.assert_allclose(got, softmax(scores, mask), atol=1e-6)
    assert np.all(got[~mask] == 0.0)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-6)


def test_masked_softmax_without_mask_is_softmax(rng):
    scores = rng.normal(size=(4, 7)).astype("float32")
    got = np.asarray(masked_softmax(scores))
    np.testing.assert_allclose(got, softmax(scores), atol=1e-6)


def test_fully_masked_row_gives_zeros_and_finite_gradients():
    scores = tf.Variable(np.ones((2, 4), "float32"))
    mask = np.array([[True, False, True, False], [False, False, False, False]])
    with tf.GradientTape() as tape:
        w = masked_softmax(scores, mask)
        loss = ops.sum(w * np.arange(4, dtype="float32"))
    grad = tape.gradient(loss, scores)
    w = np.asarray(w)
    np.testing.assert_array_equal(w[1], 0.0)
    np.testing.assert_allclose(w[0], [0.5, 0, 0.5, 0])
    assert np.all(np.isfinite(np.asarray(grad)))


def test_masked_softmax_axis_and_broadcast_mask(rng):
    scores = rng.normal(size=(2, 3, 4)).astype("float32")
    mask = np.array([True, False, True])[:, None]  # [3, 1] over axis 1
    got = np.asarray(masked_softmax(scores, mask, axis=1))
    np.testing.assert_array_equal(got[:, 1, :], 0.0)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-6)


def test_masked_softmax_runs_in_float32_for_float16():
    # Differences below float16 resolution around 1000 are lost if the
    # subtraction happened in float16; the float32 result keeps the order.
    scores = np.array([[1000.0, 1000.5, 999.5]], "float16")
    got = masked_softmax(ops.convert_to_tensor(scores), np.array([[1, 1, 0]]))
    assert got.dtype == tf.float16
    ref = softmax(scores.astype("float64"), [[1, 1, 0]])
    np.testing.assert_allclose(np.asarray(got, "float32"), ref, atol=1e-3)
    assert float(np.asarray(got, "float32")[0, 2]) == 0.0


def test_causal_mask_top_left_aligned():
    np.testing.assert_array_equal(
        np.asarray(causal_mask(3)), np.tril(np.ones((3, 3), bool))
    )
    np.testing.assert_array_equal(
        np.asarray(causal_mask(2, 4)),
        [[True, False, False, False], [True, True, False, False]],
    )


def test_compute_attention_mask_merges_everything():
    q = np.zeros((2, 3, 1), "float32")
    v = np.zeros((2, 4, 1), "float32")
    qm = np.array([[1, 1, 0], [1, 1, 1]], bool)
    vm = np.array([[1, 1, 1, 0], [1, 0, 1, 1]], bool)
    km = np.array([[1, 1, 1, 1], [1, 1, 0, 1]], bool)
    am = np.ones((2, 3, 4), bool)
    am[0, 0, 0] = False
    got = np.asarray(
        compute_attention_mask(q, v, qm, vm, km, am, use_causal_mask=True)
    )
    want = (
        qm[:, :, None]
        & vm[:, None, :]
        & km[:, None, :]
        & am
        & (np.arange(3)[:, None] >= np.arange(4)[None, :])
    )
    np.testing.assert_array_equal(got, want)


def test_compute_attention_mask_none_and_partial():
    q = np.zeros((2, 3, 1), "float32")
    v = np.zeros((2, 4, 1), "float32")
    assert compute_attention_mask(q, v) is None
    vm = np.array([[1, 1, 1, 0], [1, 0, 1, 1]], bool)
    got = np.asarray(compute_attention_mask(q, v, value_mask=vm))
    assert got.shape == (2, 1, 4)
    causal = np.asarray(compute_attention_mask(q, v, use_causal_mask=True))
    assert causal.shape == (1, 3, 4)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_masked_softmax_keeps_dtype(dtype):
    w = masked_softmax(ops.ones((2, 3), dtype=dtype), np.array([[1, 0, 1], [0, 0, 0]]))
    assert str(w.dtype.name) == dtype
