"""seq2seq_gru tie_embeddings: the output layer is the target embedding matrix (Press & Wolf 2017)."""

import keras
import numpy as np
import tensorflow as tf

from attn_tf.models.seq2seq_gru import Seq2SeqGRU
from s2s_checks import assert_step_decoding_equals_teacher_forcing

SRC = np.array([[4, 5, 6, 7, 0], [8, 9, 0, 0, 0]], np.int32)
TGT_IN = np.array([[2, 4, 5, 6], [2, 8, 9, 0]], np.int32)


def _tied(**kw):
    model = Seq2SeqGRU(12, 13, embedding_dim=6, units=5, decoder_units=7, dropout=0.0, tie_embeddings=True, **kw)
    model.build_dummy()
    return model


def test_tied_model_has_no_output_matrix_and_its_logits_follow_the_embeddings():
    tied = _tied()
    untied = Seq2SeqGRU(12, 13, embedding_dim=6, units=5, decoder_units=7, dropout=0.0)
    untied.build_dummy()
    # untied: combine 7 wide + a 7 x 13 output kernel; tied: combine 6 wide, no output kernel
    assert untied.count_params() - tied.count_params() == (2 * 7 + 1) * (7 - 6) + 7 * 13
    assert not any("output_projection" in w.path for w in tied.weights)
    before = tied((SRC, TGT_IN)).numpy()
    emb = tied.target_embedding.embeddings
    # Token 12 never enters as an input, so only the output layer reads its embedding row.
    emb.assign(tf.tensor_scatter_nd_update(emb, [[12]], [np.full(6, 3.0, "float32")]))
    after = tied((SRC, TGT_IN)).numpy()
    np.testing.assert_allclose(after[..., :12], before[..., :12], atol=1e-6)
    assert np.abs(after[..., 12] - before[..., 12]).min() > 1e-3


def test_tied_step_decoding_equals_teacher_forcing():
    assert_step_decoding_equals_teacher_forcing(_tied(), SRC, TGT_IN)


def test_tied_model_trains_saves_and_loads(tmp_path):
    keras.utils.set_random_seed(0)
    # Tied logits are bounded by |hidden| |E row| (tanh hidden, embeddings initialised near 0): give the
    # embeddings room (16 wide) and the rate to grow, so fitting two pairs does not depend on the draw.
    model = Seq2SeqGRU(12, 13, embedding_dim=16, units=8, decoder_units=16, dropout=0.0, tie_embeddings=True)
    model.build_dummy()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(3e-2), loss=loss)
    target_out = np.array([[4, 5, 6, 3], [8, 9, 3, 0]], np.int32)
    history = model.fit((SRC, TGT_IN), target_out, epochs=150, verbose=0)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]
    path = tmp_path / "tied.keras"
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    assert loaded.tie_embeddings
    np.testing.assert_allclose(loaded((SRC, TGT_IN)).numpy(), model((SRC, TGT_IN)).numpy(), atol=1e-5)
