"""Model selection of seq2seq runs: which validation figure keeps the weights, and what an epoch logs."""

import types

from attn_tf.training.seq2seq_trainer import validation_monitor, validation_translation


def _data(metrics, val_sources=("cat", "dog", "read")):
    # "read" has two reference pronunciations: either one counts as right.
    targets = {"cat": ["K AE T"], "dog": ["D AO G"], "read": ["R IY D", "R EH D"]}
    sources, refs = [], []
    for s in val_sources:
        for t in targets[s]:
            sources.append(s)
            refs.append(t)
    return types.SimpleNamespace(metrics=metrics, val_sources=sources, val_targets=refs)


def test_wer_scored_data_keep_the_best_validation_word_accuracy():
    assert validation_monitor(_data(("wer", "per"))) == "val_word_accuracy"
    assert validation_monitor(_data(("bleu", "chrf"))) == "val_bleu"
    # No validation split: nothing to decode, the teacher-forced token accuracy decides.
    assert validation_monitor(_data(("wer", "per"), val_sources=())) == "val_accuracy"


def test_epoch_end_logs_validation_wer_of_the_decoded_words():
    outputs = {"cat": "K AE T", "dog": "D AO", "read": "R EH D"}  # dog is wrong, read matches its 2nd reference
    calls = []

    def translator(sources):
        calls.append(list(sources))
        return [outputs[s] for s in sources]

    logs = {"val_accuracy": 0.9}
    validation_translation(_data(("wer", "per")), translator).on_epoch_end(0, logs)
    assert calls == [["cat", "dog", "read"]]  # each validation word decoded once
    assert abs(logs["val_wer"] - 1 / 3) < 1e-9
    assert abs(logs["val_word_accuracy"] - 2 / 3) < 1e-9
    assert 0 < logs["val_per"] < logs["val_wer"]
    assert logs["val_accuracy"] == 0.9
