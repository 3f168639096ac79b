"""Orthogonal LSTM, conicity penalty (Diversity LSTM), word tying, and the bilstm_attention options."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from attn_tf.layers.conicity import ConicityPenalty
from attn_tf.layers.conicity import conicity
from attn_tf.layers.orthogonal_lstm import OrthogonalLSTM
from attn_tf.layers.word_tying import WordTyingPenalty
from attn_tf.models.bilstm_attention import bilstm_attention
from attn_tf.models.bilstm_attention import forward
from layers_roundtrip import assert_config_roundtrip


def test_orthogonal_lstm_states_are_orthogonal_to_the_running_sum(rng):
    x = rng.normal(size=(3, 7, 4)).astype("float32")
    mask = np.ones((3, 7), bool)
    mask[1, 5:] = False
    h = np.asarray(OrthogonalLSTM(6)(x, mask=mask), np.float64)
    for b in range(3):
        n = int(mask[b].sum())
        running = np.zeros(6)
        for t in range(n):
            if t > 0:
                cos = h[b, t] @ running / (np.linalg.norm(h[b, t]) * np.linalg.norm(running) + 1e-12)
                assert abs(cos) < 1e-3, (b, t, cos)
            running += h[b, t]
    # A vanilla LSTM's states are far from orthogonal to their running sum.
    v = np.asarray(keras.layers.LSTM(6, return_sequences=True)(x), np.float64)
    cos = [v[0, t] @ v[0, :t].sum(0) / (np.linalg.norm(v[0, t]) * np.linalg.norm(v[0, :t].sum(0)))
           for t in range(1, 7)]
    assert max(np.abs(cos)) > 0.1


def test_orthogonal_lstm_padding_does_not_change_real_steps(rng):
    x = rng.normal(size=(1, 5, 4)).astype("float32")
    layer = keras.layers.Bidirectional(OrthogonalLSTM(3))
    full = np.asarray(layer(x[:, :3]))
    padded = np.concatenate([x[:, :3], rng.normal(size=(1, 2, 4)).astype("float32")], 1)
    got = np.asarray(layer(padded, mask=np.array([[1, 1, 1, 0, 0]], bool)))
    np.testing.assert_allclose(got[:, :3], full, atol=1e-5)


def test_conicity_known_values_and_mask():
    orth = np.array([[[1.0, 0.0], [0.0, 1.0]]], "float32")
    np.testing.assert_allclose(np.asarray(conicity(orth)), [np.sqrt(0.5)], atol=1e-5)
    same = np.array([[[1.0, 2.0], [2.0, 4.0], [-5.0, 3.0]]], "float32")
    np.testing.assert_allclose(np.asarray(conicity(same, [[1, 1, 0]])), [1.0], atol=1e-5)


def test_conicity_penalty_adds_its_loss_only_in_training(rng):
    inp = keras.Input((4, 3))
    out = ConicityPenalty(2.0)(inp)
    model = keras.Model(inp, out)
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    y = model(x, training=True)
    np.testing.assert_array_equal(np.asarray(y), x)
    np.testing.assert_allclose(float(sum(model.losses)), 2.0 * float(np.mean(np.asarray(conicity(x)))),
                               rtol=1e-5)
    model(x, training=False)
    assert not model.losses
    assert_config_roundtrip(ConicityPenalty(0.5))
    with pytest.raises(ValueError, match="weight"):
        ConicityPenalty(0.0)


def test_word_tying_penalty_is_zero_when_tied_and_does_not_move_embeddings(rng):
    layer = WordTyingPenalty(1.0)
    h = tf.constant(rng.normal(size=(2, 4, 3)).astype("float32"))
    e = tf.Variable(rng.normal(size=(2, 4, 3)).astype("float32"))
    layer([h, e])
    layer.projection.assign(np.eye(3, dtype="float32"))
    assert float(layer.penalty(h, h)) == pytest.approx(0.0, abs=1e-6)
    with tf.GradientTape() as tape:
        pen = layer.penalty(h, e, np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool))
    assert float(pen) > 0.1
    assert tape.gradient(pen, e) is None
    assert_config_roundtrip(layer)


@pytest.mark.parametrize("options", [
    {"lstm": "orthogonal", "attention_normalizer": "sparsemax"},
    {"lstm": "diversity", "tying_weight": 0.5, "attention_normalizer": "entmax15"},
])
def test_bilstm_options_train_save_and_forward(options, tmp_path, rng):
    model = bilstm_attention(50, 3, max_length=8, embedding_dim=8, lstm_units=4, attention_units=4, **options)
    names = {layer.name for layer in model.layers}
    assert ("conicity_penalty" in names) == (options["lstm"] == "diversity")
    x = rng.integers(1, 50, (16, 8)).astype("int32")
    x[:, 6:] = 0
    if options["lstm"] == "diversity":  # one fit (the slow part): the penalties reach the training loss
        train = keras.Model(model.input, model.output["probabilities"])
        train.compile("adam", "sparse_categorical_crossentropy")
        train(x, training=True)
        assert len(train.losses) == 2
        history = train.fit(x, rng.integers(0, 3, 16), epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
    out = model(x)
    att = np.asarray(out["attention"])
    assert np.all(att[:, 6:] == 0) and np.allclose(att.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(np.asarray(forward(model, x)["probabilities"]), np.asarray(out["probabilities"]),
                               atol=1e-6)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x)["attention"]), att, atol=1e-6)


def test_bilstm_rejects_unknown_options():
    with pytest.raises(ValueError, match="orthogonal"):
        bilstm_attention(10, 2, lstm="gru")
    with pytest.raises(ValueError, match="sparsemax"):
        bilstm_attention(10, 2, attention_normalizer="max")
