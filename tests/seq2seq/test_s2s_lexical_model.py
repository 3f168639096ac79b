"""seq2seq_gru lexical_model: the attention-weighted source embeddings reach the logits (Nguyen & Chiang 2018)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from attn_tf.decoding import decode
from attn_tf.models.seq2seq_gru import Seq2SeqGRU
from s2s_checks import assert_step_decoding_equals_teacher_forcing

SRC = np.array([[4, 5, 6, 7, 0], [8, 9, 0, 0, 0]], np.int32)
TGT_IN = np.array([[2, 4, 5, 6], [2, 8, 9, 0]], np.int32)


def _lexical(**kw):
    keras.utils.set_random_seed(1)
    model = Seq2SeqGRU(12, 13, embedding_dim=6, units=5, decoder_units=7, dropout=0.0, lexical_model=True, **kw)
    model.build_dummy()
    return model


def test_lexical_model_adds_its_own_weights_only():
    plain = Seq2SeqGRU(12, 13, embedding_dim=6, units=5, decoder_units=7, dropout=0.0)
    plain.build_dummy()
    # W (6 x 6, no bias) and the 6 x 13 lexical output layer with its bias
    assert _lexical().count_params() - plain.count_params() == 6 * 6 + 6 * 13 + 13


def test_source_embedding_reaches_the_logits_through_the_lexical_path():
    model = _lexical()
    before = model((SRC, TGT_IN)).numpy()
    # Zero the recurrent path's output layer: what is left of the logits is the lexical model's.
    out = model.output_projection
    out.kernel.assign(tf.zeros_like(out.kernel))
    out.bias.assign(tf.zeros_like(out.bias))
    lexical_only = model((SRC, TGT_IN)).numpy()
    assert np.abs(lexical_only).max() > 1e-3
    assert np.abs(before - lexical_only).max() > 1e-3
    # Changing the embedding of a source token of row 0 only moves row 0's logits.
    emb = model.source_embedding.embeddings
    emb.assign(tf.tensor_scatter_nd_update(emb, [[6]], [np.full(6, 2.0, "float32")]))
    moved = model((SRC, TGT_IN)).numpy()
    assert np.abs(moved[0] - lexical_only[0]).max() > 1e-3
    np.testing.assert_allclose(moved[1], lexical_only[1], atol=1e-6)


@pytest.mark.parametrize("attention", ["additive", "dot"])
def test_lexical_step_decoding_equals_teacher_forcing(attention):
    assert_step_decoding_equals_teacher_forcing(_lexical(attention=attention), SRC, TGT_IN)


def test_lexical_model_beam_search_and_save_load(tmp_path):
    model = _lexical()
    greedy = decode(model, SRC, max_length=6)
    beam = decode(model, SRC, max_length=6, beam_size=3)
    assert greedy["ids"].shape[0] == beam["ids"].shape[0] == 2
    # the XLA-compiled search runs the same step
    np.testing.assert_array_equal(decode(model, SRC, max_length=6, jit_compile=True)["ids"].numpy(),
                                  greedy["ids"].numpy())
    path = tmp_path / "lexical.keras"
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    assert loaded.lexical_model
    np.testing.assert_allclose(loaded((SRC, TGT_IN)).numpy(), model((SRC, TGT_IN)).numpy(), atol=1e-5)
    np.testing.assert_array_equal(decode(loaded, SRC, max_length=6, beam_size=3)["ids"].numpy(),
                                  beam["ids"].numpy())
