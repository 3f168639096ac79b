"""Wiegreffe & Pinter diagnostics (attn_tf/evaluation/diagnostics.py) on tiny in-memory runs."""

import numpy as np
import pytest

from eval_models import KEY, sentences

SIZES = {"embedding_dim": 8, "lstm_units": 4, "attention_units": 4, "dropout": 0.0, "embedding_dropout": 0.0}


@pytest.fixture(scope="module")
def tiny_run(vectorizer, key_model):
    """A Run whose model is the hand-built key-token model; label = the key word is present."""
    from attn_tf.data.base import TextClassificationData
    from attn_tf.evaluation.runner import Run

    def split(n, seed):
        texts = sentences(n, seed=seed) + sentences(n, seed=seed + 100, with_key=False)
        return texts, np.array([1] * n + [0] * n, np.int32)

    (tr, ytr), (va, yva), (te, yte) = split(60, 1), split(16, 2), split(16, 3)
    data = TextClassificationData("tiny", ["neg", "pos"], tr, ytr, va, yva, te, yte)
    config = {"model": "bilstm_attention", "model_sizes": SIZES, "max_length": 10, "seed": 0, "epochs": 2,
              "batch_size": 16, "learning_rate": 0.01}
    return Run("tiny", config, key_model, vectorizer, data, {})


def test_sections_are_opt_in():
    from attn_tf.errors import UsageError
    from attn_tf.evaluation import diagnostics, runner

    assert not set(diagnostics.SECTIONS) & set(runner.parse_sections(None))
    assert runner.parse_sections("all") == runner.SECTIONS
    assert runner.parse_sections(["uniform,wp_diagnostic", "wp_uniform"]) == ("uniform", "wp_uniform",
                                                                              "wp_diagnostic")
    assert runner.parse_sections("all wp_uniform") == runner.SECTIONS + ("wp_uniform",)
    with pytest.raises(UsageError, match="wp_diagnostic"):
        runner.parse_sections("wp_bogus")


def test_uniform_baseline_keeps_attention_uniform(tiny_run):
    from attn_tf.evaluation import diagnostics

    out = diagnostics.uniform_baseline(tiny_run, log=lambda *a: None)
    # v = 0 and frozen: after training every real token still gets exactly 1/T (a trainable v would have moved)
    assert out["max_deviation_from_uniform"] < 1e-6
    # the run's own figures come from the run's model (the key-token model is always right here)
    assert out["run"]["test"]["accuracy"] == 1.0 and out["run"]["val"]["accuracy"] == 1.0
    assert 0.0 <= out["uniform"]["test"]["accuracy"] <= 1.0 and 1 <= out["best_epoch"] <= 2
    assert out["gap_test_accuracy"] == pytest.approx(1.0 - out["uniform"]["test"]["accuracy"])


def test_freeze_uniform_gives_uniform_weights_for_every_normalizer():
    import keras

    from attn_tf.evaluation import diagnostics
    from attn_tf.models.bilstm_attention import bilstm_attention

    ids = np.array([[3, 4, 5, 0, 0], [6, 7, 0, 0, 0]], np.int32)
    for normalizer in ("softmax", "sparsemax", "entmax15"):
        keras.utils.set_random_seed(1)
        model = bilstm_attention(12, 2, max_length=5, attention_normalizer=normalizer, **SIZES)
        before = model(ids)["attention"].numpy()
        assert np.abs(before - diagnostics._uniform_of(ids)).max() > 1e-4  # not uniform by chance
        att = diagnostics.freeze_uniform(model)(ids)["attention"].numpy()
        np.testing.assert_allclose(att, diagnostics._uniform_of(ids), atol=1e-6)


def test_mlp_uses_the_imposed_weights():
    import keras

    from attn_tf.evaluation import diagnostics

    keras.utils.set_random_seed(0)
    mlp = diagnostics.diagnostic_mlp(12, 2, 4, embedding_dim=6, hidden=5)
    ids = np.array([[3, 4, 0, 0]] * 3, np.int32)
    w = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0.5, 0.5, 0, 0]], np.float32)
    p = mlp.predict([ids, w], verbose=0)
    assert np.abs(p[0] - p[1]).max() > 1e-4  # other weights, other output
    # all weight on token 3 == the sequence holding only token 3; padding weight is ignored
    alone = mlp.predict([np.array([[3, 0, 0, 0], [3, 0, 0, 0]], np.int32),
                         np.array([[1, 0, 0, 0], [2, 0, 7, 7]], np.float32)], verbose=0)
    np.testing.assert_allclose(p[0], alone[0], atol=1e-6)
    np.testing.assert_allclose(alone[0], alone[1], atol=1e-6)


def test_mlp_sees_the_words_only_through_the_weights(tiny_run):
    """Same data: weights on the key word -> learnable; weights on a word that carries no label -> chance."""
    from attn_tf.evaluation import diagnostics

    arrays = diagnostics.split_arrays(tiny_run)
    key_id = tiny_run.vectorizer.vocabulary.index(KEY)

    def one_hot_on(pick):
        return {s: np.eye(10, dtype=np.float32)[pick(a[0])] for s, a in arrays.items()}

    # with the key: its position; without: position 0 (the first word carries no label either way)
    on_key = one_hot_on(lambda ids: np.where((ids == key_id).any(1), (ids == key_id).argmax(1), 0))
    on_first_other = one_hot_on(lambda ids: np.where(ids[:, 0] == key_id, 1, 0))
    kw = dict(vocab_size=tiny_run.vectorizer.vocabulary_size, num_classes=2, config=tiny_run.config,
              embedding_dim=8, epochs=6)
    _, good = diagnostics.train_mlp(arrays, on_key, **kw)
    _, blind = diagnostics.train_mlp(arrays, on_first_other, **kw)
    assert good["test"]["accuracy"] >= 0.9
    assert blind["test"]["accuracy"] <= 0.75


def test_diagnostic_section_and_report(tiny_run):
    from attn_tf.evaluation import diagnostics, report

    out = diagnostics.diagnostic(tiny_run, lam=1.0, mlp_epochs=6, log=lambda *a: None)
    assert set(out["mlp"]) == {"uniform", "model", "adversary"}
    # the key-token model puts ~all attention on the key word: its weights make the MLP's task easy
    assert out["mlp"]["model"]["test"]["accuracy"] >= 0.9
    adv = out["adversary"]
    assert adv["test_jsd"]["mean"] > 0.05 and 0.0 <= adv["test_tvd"]["mean"] <= 1.0
    assert out["model_minus_uniform_test_f1"] == pytest.approx(
        out["mlp"]["model"]["test"]["macro_f1"] - out["mlp"]["uniform"]["test"]["macro_f1"])
    results = {"run_dir": "tiny", "model": "bilstm_attention", "dataset": "tiny", "samples": 1, "sample_seed": 0,
               "sample_accuracy": 1.0, "attention": "pooling weights", "timing_seconds": {},
               "sections": {"wp_diagnostic": out}}
    md = report.markdown(results)
    assert "Diagnostic MLP with imposed attention (Wiegreffe & Pinter 2019)" in md
    assert "| this run's attention | %s | %s | %s |" % (
        report._f(out["mlp"]["model"]["val"]["accuracy"], pct=True),
        report._f(out["mlp"]["model"]["test"]["accuracy"], pct=True),
        report._f(out["mlp"]["model"]["test"]["macro_f1"])) in md
    assert report.key_metrics(results)["faithfulness/wp_mlp_model_minus_uniform_f1"] == pytest.approx(
        out["model_minus_uniform_test_f1"])
