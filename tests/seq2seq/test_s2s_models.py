"""Seq2seq models and decoding on synthetic copy / reverse tasks."""

import numpy as np
import pytest
import tensorflow as tf

from attn_tf.decoding import beam_search, decode, greedy_decode
from s2s_checks import assert_step_decoding_equals_teacher_forcing
from s2s_synthetic import LETTERS, alignment_score
from s2s_train import held_out, train_small

MAX_LEN = 12


def _decoded(model, src, beam_size=1):
    fn = tf.function(lambda ids: decode(model, ids, MAX_LEN, beam_size=beam_size))
    return {k: v.numpy() for k, v in fn(tf.constant(src)).items()}


def _check_learned(model, task):
    src, _, _ = held_out(task)
    out = _decoded(model, src)
    accuracy, diagonal = alignment_score(src, out["ids"], out["lengths"], out["attention"], task)
    assert accuracy >= 0.95, (task, accuracy)
    assert diagonal >= 0.90, (task, diagonal)
    return out


def test_gru_copy_learns_diagonal_attention(copy_model):
    # No wall-clock bound here: speed is measured in bench/ (a timed unit test fails under load).
    _check_learned(copy_model, "copy")


def test_gru_reverse_learns_anti_diagonal_attention():
    model = train_small("seq2seq_gru", "reverse", attention="additive", epochs=5)
    _check_learned(model, "reverse")


def test_transformer_copy_learns_diagonal_cross_attention():
    model = train_small("seq2seq_transformer", "copy", epochs=4)
    _check_learned(model, "copy")


@pytest.mark.parametrize("trained", [True, False])
def test_beam_size_1_equals_greedy(copy_model, trained):
    from attn_tf.models.seq2seq_gru import Seq2SeqGRU

    model = copy_model
    if not trained:  # an untrained model makes long, arbitrary outputs: a stricter comparison
        model = Seq2SeqGRU(4 + len(LETTERS), 4 + len(LETTERS), embedding_dim=16, units=16, attention="dot")
        model.build_dummy()
    src, _, _ = held_out("copy", n=64)
    src[5] = 0  # an empty source among the others
    greedy = {k: v.numpy() for k, v in greedy_decode(model, src, MAX_LEN).items()}
    beam1 = {k: v.numpy() for k, v in beam_search(model, src, MAX_LEN, beam_size=1).items()}
    np.testing.assert_array_equal(beam1["ids"], greedy["ids"])
    np.testing.assert_array_equal(beam1["lengths"], greedy["lengths"])
    np.testing.assert_allclose(beam1["attention"], greedy["attention"], atol=1e-6)
    np.testing.assert_allclose(beam1["scores"], greedy["scores"], atol=1e-5)


def test_beam_search_outputs(copy_model):
    src, _, _ = held_out("copy", n=100)
    out = _decoded(copy_model, src, beam_size=4)
    accuracy, diagonal = alignment_score(src, out["ids"], out["lengths"], out["attention"], "copy")
    assert accuracy >= 0.95 and diagonal >= 0.9
    for i in range(len(src)):
        n = out["lengths"][i]
        assert out["ids"][i, n - 1] == 3 and (out["ids"][i, n:] == 0).all()
        np.testing.assert_allclose(out["attention"][i, :n].sum(-1), 1.0, atol=1e-5)
        assert (out["attention"][i, n:] == 0).all()
        k = int((src[i] > 0).sum())
        assert (out["attention"][i, :, k:] == 0).all()  # padding gets no attention


@pytest.mark.parametrize("beam_size", [1, 3])
def test_empty_sources_are_not_decoded(copy_model, beam_size):
    src, _, _ = held_out("copy", n=6)
    batch = src.copy()
    batch[[1, 4]] = 0
    out = _decoded(copy_model, batch, beam_size)
    assert (out["lengths"][[1, 4]] == 0).all()
    assert (out["ids"][[1, 4]] == 0).all() and (out["attention"][[1, 4]] == 0).all()
    alone = _decoded(copy_model, src[[0, 2, 3, 5]], beam_size)
    t = alone["ids"].shape[1]
    np.testing.assert_array_equal(out["ids"][[0, 2, 3, 5], :t], alone["ids"])
    # every source empty: nothing is decoded, S becomes 1
    none = _decoded(copy_model, np.zeros((3, 0), np.int32), beam_size)
    assert none["ids"].shape == (3, 0) and none["attention"].shape == (3, 0, 1)


@pytest.mark.parametrize("attention", ["additive", "dot", "general", "scaled"])
def test_gru_attention_variants_build_and_decode(attention):
    from attn_tf.models.seq2seq_gru import Seq2SeqGRU

    model = Seq2SeqGRU(10, 11, embedding_dim=8, units=8, attention=attention)
    logits = model((np.ones((2, 5), np.int32), np.ones((2, 4), np.int32)))
    assert logits.shape == (2, 4, 11)
    out = greedy_decode(model, np.array([[4, 5, 6, 0, 0], [7, 0, 0, 0, 0]], np.int32), 6)
    assert out["attention"].shape[0] == 2 and out["attention"].shape[2] == 5
    maps = model.attention_maps(np.array([[4, 5, 0]]), np.array([[2, 4, 5]]))
    assert maps["cross"].shape == (1, 1, 1, 3, 3)


def test_teacher_forced_and_step_decoding_agree(copy_model):
    """decode_step (GRU cell) reproduces the teacher-forced logits of the layer."""
    src, tin, _ = held_out("copy", n=4)
    assert_step_decoding_equals_teacher_forcing(copy_model, src, tin, steps=3, atol=1e-4)


def test_model_save_and_load(tmp_path, copy_model):
    import keras

    path = tmp_path / "m.keras"
    copy_model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    src, tin, _ = held_out("copy", n=8)
    np.testing.assert_allclose(loaded((src, tin)).numpy(), copy_model((src, tin)).numpy(), atol=1e-5)
