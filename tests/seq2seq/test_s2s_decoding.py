"""Decoding speed-ups give the outputs of the reference paths.

* the Transformer's key/value-cached `decode_step` against the uncached one
  (the whole prefix through the Keras layers);
* the XLA-compiled search (`decode(..., jit_compile=True)`) against the
  interpreted `tf.while_loop` search: the same ids, lengths, attention.
"""

import numpy as np
import pytest
import tensorflow as tf

from attn_tf.decoding import decode
from s2s_synthetic import LETTERS
from s2s_train import held_out

V = 4 + len(LETTERS)
MAX_LEN = 12


class Uncached:
    """A Seq2SeqTransformer seen through its uncached reference step."""

    def __init__(self, model):
        self.model = model

    def encode(self, source_ids, training=False):
        return self.model.encode(source_ids, training=training)

    def initial_state(self, enc):
        return self.model.initial_state_uncached(enc)

    def decode_step(self, tokens, state, enc, step):
        return self.model.decode_step_uncached(tokens, state, enc, step)


def _small_transformer(**kw):
    import keras

    from attn_tf.models.seq2seq_transformer import Seq2SeqTransformer

    keras.utils.set_random_seed(3)
    model = Seq2SeqTransformer(V, V, max_source_length=8, max_target_length=MAX_LEN + 1, hidden_dim=32,
                               num_layers=2, num_heads=4, intermediate_dim=48, dropout=0.0, **kw)
    model.build_dummy()
    return model


@pytest.fixture(scope="module")
def transformer():
    return _small_transformer()


def _run(fn, model, src, **kw):
    f = tf.function(lambda ids: fn(model, ids, MAX_LEN, **kw))
    return {k: v.numpy() for k, v in f(tf.constant(src)).items()}


def _sources(n=24, seed=0):
    src, _, _ = held_out("copy", n=n)
    src = src.copy()
    if n > 3:
        src[3] = 0  # an empty source among the others
    return src


def test_cached_step_equals_uncached_step(transformer):
    _assert_cached_step_equals_uncached_step(transformer)


def test_pre_norm_cached_step_equals_uncached_step():
    """Pre-norm blocks and the final LayerNorms: the cached step must apply them as teacher forcing does."""
    model = _small_transformer(normalize_first=True)
    assert model.decoder_final_norm is not None and model.get_config()["normalize_first"] is True
    _assert_cached_step_equals_uncached_step(model)


def _assert_cached_step_equals_uncached_step(transformer):
    src = _sources(6)
    enc = transformer.encode(src)
    cached, uncached = transformer.initial_state(enc), transformer.initial_state_uncached(enc)
    tokens = np.full([6], 2, np.int32)
    rng = np.random.default_rng(0)
    for t in range(MAX_LEN):
        a, cached, att_a = transformer.decode_step(tokens, cached, enc, t)
        b, uncached, att_b = transformer.decode_step_uncached(tokens, uncached, enc, t)
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-5)
        np.testing.assert_allclose(att_a.numpy(), att_b.numpy(), atol=2e-6)
        tokens = rng.integers(4, V, 6).astype(np.int32)  # any prefix, not only the argmax


@pytest.mark.parametrize("beam_size", [1, 3])
def test_cached_decode_equals_uncached_decode(transformer, beam_size):
    """An untrained model makes long, arbitrary outputs: every step is compared."""
    src = _sources()
    cached = _run(decode, transformer, src, beam_size=beam_size)
    uncached = _run(decode, Uncached(transformer), src, beam_size=beam_size)
    assert cached["ids"].shape[1] > 5
    np.testing.assert_array_equal(cached["ids"], uncached["ids"])
    np.testing.assert_array_equal(cached["lengths"], uncached["lengths"])
    np.testing.assert_allclose(cached["attention"], uncached["attention"], atol=1e-5)
    np.testing.assert_allclose(cached["scores"], uncached["scores"], atol=1e-4)


# XLA compiles each padded shape once (seconds on 2 cores): a few cases only.
@pytest.mark.parametrize("which,beam_size", [("trained_gru", 1), ("trained_gru", 4), ("transformer", 1),
                                             ("transformer", 3)])
def test_xla_compiled_search_gives_the_same_outputs(copy_model, transformer, which, beam_size):
    model = copy_model if which == "trained_gru" else transformer
    # 21 rows (padded to 32 inside), sources of width 8 and 5 (both padded to 8), an empty row
    for src in (_sources(21), _sources(21)[:, :5]):
        ref = _run(decode, model, src, beam_size=beam_size)
        xla = _run(decode, model, src, beam_size=beam_size, jit_compile=True)
        assert xla["ids"].shape == ref["ids"].shape and xla["attention"].shape == ref["attention"].shape
        np.testing.assert_array_equal(xla["ids"], ref["ids"])
        np.testing.assert_array_equal(xla["lengths"], ref["lengths"])
        np.testing.assert_allclose(xla["attention"], ref["attention"], atol=1e-5)
        np.testing.assert_allclose(xla["scores"], ref["scores"], atol=1e-4)


def test_xla_compiled_search_edge_cases(copy_model):
    none = _run(decode, copy_model, np.zeros((3, 0), np.int32), jit_compile=True)
    assert none["ids"].shape == (3, 0) and none["attention"].shape == (3, 0, 1)
    # every row empty, traced with unknown shapes (as inside the exported signature): no step runs
    unknown = tf.function(lambda ids: decode(copy_model, ids, MAX_LEN, jit_compile=True),
                          input_signature=[tf.TensorSpec([None, None], tf.int32)])
    for beam in (1, 3):
        empty = tf.function(lambda ids: decode(copy_model, ids, MAX_LEN, beam_size=beam, jit_compile=True),
                            input_signature=[tf.TensorSpec([None, None], tf.int32)])(np.zeros((2, 1), np.int32))
        assert empty["ids"].shape == (2, 0) and empty["attention"].shape == (2, 0, 1)
    assert unknown(np.zeros((2, 3), np.int32))["attention"].shape == (2, 0, 3)
    one = _run(decode, copy_model, _sources(1), jit_compile=True)
    ref = _run(decode, copy_model, _sources(1))
    np.testing.assert_array_equal(one["ids"], ref["ids"])
    np.testing.assert_allclose(one["attention"], ref["attention"], atol=1e-5)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_xla_search_in_two_halves_gives_the_same_outputs(copy_model, beam_size):
    """A batch of >= 2 x SHARD_ROWS padded rows is decoded as two concurrent halves: the rows' outputs of the
    whole batch, also when the second half holds only empty rows (it runs no step) and under unknown
    static shapes (as in the exported signature)."""
    from attn_tf.decoding.compiled import SHARD_ROWS

    src = _sources(2 * SHARD_ROWS + 6)  # padded to 4 x SHARD_ROWS rows: halves of 2 x SHARD_ROWS
    half_empty = _sources(SHARD_ROWS + 3)
    half_empty[SHARD_ROWS:] = 0  # padded to 2 x SHARD_ROWS: the second half is all empty rows
    unknown = tf.function(lambda ids: decode(copy_model, ids, MAX_LEN, beam_size=beam_size, jit_compile=True),
                          input_signature=[tf.TensorSpec([None, None], tf.int32)])
    for rows in (src, half_empty):
        ref = _run(decode, copy_model, rows, beam_size=beam_size)
        for xla in (_run(decode, copy_model, rows, beam_size=beam_size, jit_compile=True),
                    {k: v.numpy() for k, v in unknown(tf.constant(rows)).items()}):
            assert xla["ids"].shape == ref["ids"].shape and xla["attention"].shape == ref["attention"].shape
            np.testing.assert_array_equal(xla["ids"], ref["ids"])
            np.testing.assert_array_equal(xla["lengths"], ref["lengths"])
            np.testing.assert_allclose(xla["attention"], ref["attention"], atol=1e-5)
            np.testing.assert_allclose(xla["scores"], ref["scores"], atol=1e-4)
