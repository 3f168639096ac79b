"""WER / PER (multi-reference), BLEU / chrF, masked loss and accuracy."""

import numpy as np
import pytest

from attn_tf.metrics import bleu, chrf, edit_distance, evaluate, phoneme_error_rate, word_error_rate


def test_edit_distance():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["a"]) == 1
    assert edit_distance(["a", "b"], ["a", "b"]) == 0


def test_wer_and_per_use_the_closest_reference():
    hyps = ["R EH D", "K AE T", "D AO G Z", ""]
    refs = [["R IY D", "R EH D"], ["K AE T"], ["D AO G"], ["AH"]]
    assert word_error_rate(hyps, refs) == pytest.approx(0.5)
    # errors: 0 + 0 + 1 insertion + 1 deletion over 3 + 3 + 3 + 1 phonemes
    assert phoneme_error_rate(hyps, refs) == pytest.approx(2 / 10)
    assert word_error_rate([], []) == 0.0
    with pytest.raises(ValueError):
        word_error_rate(["a"], [[]])


def test_bleu_and_chrf():
    refs = [["the cat sat on the mat."], ["a dog barks.", "the dog barks."]]
    assert bleu(["the cat sat on the mat.", "the dog barks."], refs) == pytest.approx(100.0)
    assert bleu(["The Cat sat on the mat.", "the dog barks."], refs) == pytest.approx(100.0)  # case-insensitive
    low = bleu(["a mat.", "cats."], refs)
    assert 0.0 <= low < 30.0
    assert chrf(["the cat sat on the mat.", "a dog barks."], refs) == pytest.approx(100.0)
    got = evaluate(("bleu", "chrf"), ["a dog barks."], [["a dog barks."]])
    assert set(got) == {"bleu", "chrf"}


def test_metric_signatures_name_the_reference_count():
    """signatures() works before any scoring and says what corpus_score itself would report."""
    from sacrebleu.metrics import BLEU

    from attn_tf.metrics.translation import _streams, signatures

    one = [["the cat sat."], ["a dog barks."]]
    var = [["the cat sat."], ["a dog barks.", "the dog barks."]]
    for refs, nrefs in ((one, "nrefs:1"), (var, "nrefs:var")):
        sig = signatures(refs)
        assert set(sig) == {"bleu", "chrf"}
        assert sig["bleu"].startswith(nrefs + "|case:lc") and sig["chrf"].startswith(nrefs + "|case:lc")
        scored = BLEU(lowercase=True)
        scored.corpus_score(["the cat sat.", "a dog barks."], _streams(refs))
        assert sig["bleu"] == str(scored.get_signature())
    assert "case:mixed" in signatures(one, lowercase=False)["bleu"]


def test_masked_loss_and_accuracy_ignore_padding():
    from attn_tf.metrics.masked import MaskedAccuracy, masked_sparse_crossentropy

    y = np.array([[5, 6, 0, 0]], np.int32)
    logits = np.full((1, 4, 8), -10.0, np.float32)
    logits[0, 0, 5] = 10.0
    logits[0, 1, 7] = 10.0  # wrong
    logits[0, 2:, 1] = 10.0  # padding positions: anything
    acc = MaskedAccuracy()
    acc.update_state(y, logits)
    assert float(acc.result()) == pytest.approx(0.5)
    loss = float(masked_sparse_crossentropy(y, logits))
    padded = np.concatenate([logits, np.full((1, 3, 8), 50.0, np.float32)], axis=1)
    y_padded = np.concatenate([y, np.zeros((1, 3), np.int32)], axis=1)
    assert float(masked_sparse_crossentropy(y_padded, padded)) == pytest.approx(loss, rel=1e-6)


def test_reported_loss_is_the_mean_token_loss_for_models_with_keras_masks():
    # The Transformer's logits carry a Keras padding mask; the loss Keras reports
    # must still be the mean cross-entropy per target token, as for the GRU.
    import keras

    from attn_tf.metrics.masked import MaskedAccuracy, MaskedLoss, masked_sparse_crossentropy
    from attn_tf.models.seq2seq_gru import Seq2SeqGRU
    from attn_tf.models.seq2seq_transformer import Seq2SeqTransformer

    rng = np.random.default_rng(0)
    source = rng.integers(1, 9, size=(4, 6)).astype(np.int32)
    source[:, 4:] = 0
    target = rng.integers(1, 9, size=(4, 5)).astype(np.int32)
    target[:2, 3:] = 0
    for model in (Seq2SeqTransformer(10, 10, hidden_dim=16, num_layers=1, num_heads=2, intermediate_dim=16,
                                     max_source_length=8, max_target_length=8),
                  Seq2SeqGRU(10, 10, embedding_dim=8, units=8)):
        model.build_dummy()
        model.compile(optimizer="adam", loss=MaskedLoss(), metrics=[MaskedAccuracy()])
        reported = model.evaluate((source, target), target, batch_size=4, verbose=0, return_dict=True)["loss"]
        expected = float(masked_sparse_crossentropy(target, model((source, target))))
        assert reported == pytest.approx(expected, rel=1e-5), type(model).__name__


def test_seeded_samples_of_a_predictions_file(tmp_path):
    from attn_tf.metrics.translation import main, read_predictions, sample_table

    path = tmp_path / "predictions.tsv"
    rows = ["source\toutput\treferences"] + ["s%d\to%d\tr%d | alt%d" % (i, i, i, i) for i in range(30)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    sources, outputs, refs = read_predictions(path)
    assert len(sources) == 30 and refs[3] == ["r3", "alt3"]
    table = sample_table(path, k=10, seed=0)
    assert table == sample_table(path, k=10, seed=0) and table != sample_table(path, k=10, seed=1)
    lines = table.splitlines()[2:]
    assert len(lines) == 10 and all(line.count(" | ") == 2 for line in lines)
    (tmp_path / "bad.tsv").write_text("a\tb\n", encoding="utf-8")
    assert main([str(tmp_path / "bad.tsv")]) == 2 and main([str(tmp_path / "missing.tsv")]) == 2
