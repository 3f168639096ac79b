"""Pairs mixed into each training epoch outside the vocabularies (de_en's dictionary phrases)."""

import types

import numpy as np

from attn_tf.data.seq2seq_datasets import Seq2SeqData
from attn_tf.data.seq2seq_vocab import SequenceVocabulary
from attn_tf.models import registry
from attn_tf.training.loop import make_task


def _letters(i):
    return chr(97 + i % 26) + chr(97 + i // 26)  # one word (a digit would be a token of its own)


def _task(extra_per_epoch, vocab_knows_extra=False):
    sentences = ["ich bin hier %d ." % i for i in range(40)]
    english = ["i am here %d ." % i for i in range(40)]
    data = Seq2SeqData("toy", sentences, english, sentences[:3], english[:3], sentences[:3], english[:3],
                       extra_sources=["wort" + _letters(i) for i in range(200)],
                       extra_targets=["word" + _letters(i) for i in range(200)], extra_per_epoch=extra_per_epoch)
    more = (data.extra_sources, data.extra_targets) if vocab_knows_extra else ([], [])
    vocabs = (SequenceVocabulary.adapt(data.train_sources + more[0]),
              SequenceVocabulary.adapt(data.train_targets + more[1]))
    task = make_task(registry.get("seq2seq_gru"))
    task.setup({"model": "seq2seq_gru", "dataset": "toy", "batch_size": 8, "seed": 0}, data, vocabs,
               lambda *a: None)
    return task, vocabs


def _sources(task, epoch):
    return [tuple(row[row > 0]) for (src, _), _ in task.epoch_dataset(epoch) for row in src.numpy()]


def test_each_epoch_mixes_a_fresh_sample_of_extra_pairs_with_all_sentences():
    task, (src_vocab, _) = _task(extra_per_epoch=16)
    unk = src_vocab.vocabulary.index("[UNK]")
    epochs = [_sources(task, e) for e in range(3)]
    for rows in epochs:
        assert len(rows) >= 40 + 16 - 8  # cut to epoch 0's batch count: at most one batch short of all
    assert len({len(list(task.epoch_dataset(e))) for e in range(3)} | {task.steps_per_epoch()}) == 1
    # The vocabularies know the sentences only: an extra pair's word is [UNK] (one token, no [END] on sources).
    extra = [[r for r in rows if r == (unk,)] for rows in epochs]
    assert all(8 <= len(x) <= 16 for x in extra)
    sentence_rows = [sorted(r for r in rows if r != (unk,)) for rows in epochs]
    assert len(set(sentence_rows[0])) == 40  # every sentence in the first epoch
    assert _sources(task, 1) == epochs[1]  # an epoch is the same batches each time it is built (resume)


def test_extra_pairs_sample_differs_between_epochs():
    task, _ = _task(extra_per_epoch=16, vocab_knows_extra=True)
    first, second = ({r for r in _sources(task, e) if len(r) == 1} for e in range(2))  # the one-word extras
    assert 8 <= len(first) and 8 <= len(second) and first != second
    none, _ = _task(extra_per_epoch=0)
    assert none.extra_pairs is None and none.steps_per_epoch() == 5  # 40 sentences / 8


def test_phrases_per_epoch_flag_reaches_the_de_en_loader_and_is_refused_elsewhere(monkeypatch, capsys):
    import pytest

    from attn_tf.data import run_data, seq2seq_datasets
    from attn_tf.training.cli import parse_args

    asked = {}
    monkeypatch.setattr(seq2seq_datasets, "_load_de_en",
                        lambda seed, vf, phrases=None, phrases_per_epoch=None: asked.update(n=phrases_per_epoch))
    args = parse_args(["--model", "seq2seq_gru", "--dataset", "de_en", "--phrases-per-epoch", "500"])
    run_data.load_seq2seq_data(vars(args))
    assert asked["n"] == 500
    run_data.load_seq2seq_data(vars(parse_args(["--model", "seq2seq_gru", "--dataset", "de_en"])))
    assert asked["n"] == 10000  # the registry's de_en recipe for seq2seq_gru
    run_data.load_seq2seq_data(vars(parse_args(["--model", "seq2seq_transformer", "--dataset", "de_en"])))
    assert asked["n"] is None  # no recipe: the dataset's default (DE_EN_PHRASES_PER_EPOCH)
    with pytest.raises(SystemExit) as e:
        parse_args(["--model", "seq2seq_gru", "--dataset", "cmudict", "--phrases-per-epoch", "5"])
    assert e.value.code == 2 and "de_en only" in capsys.readouterr().err
