"""python -m attn_tf.probe: pretrained MiniLM, classifier and seq2seq run directories, bad input.

The output is read back through the Attention plugin's own HTTP routes (the
Python data provider), so what is tested is what the tab would show.
"""

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tb_plugin"))

from attn_tf import probe  # noqa: E402


def _client(logdir):
    from werkzeug.test import Client

    from attention_logdirs import make_app, python_provider
    from tb_plugin import metadata

    dp, _ = python_provider(logdir)
    return Client(make_app(dp, {metadata.PLUGIN_NAME: 0})[0])


def _get(client, route, **params):
    from urllib.parse import urlencode

    resp = client.get("/data/plugin/attention/%s?%s" % (route, urlencode(params)))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp


def _layer(client, run, tag, index):
    resp = _get(client, "layer", run=run, tag=tag, step=0, layer=index)
    shape = [int(s) for s in resp.headers["X-Attention-Shape"].split(",")]
    return np.frombuffer(resp.get_data(), dtype="<f4").reshape(shape)


TEXTS = ["A man is eating food.", "Unbelievably charming!"]


def test_pretrained_minilm_probe_is_served_by_the_plugin(tmp_path, minilm_dir, minilm_tensors):
    assert probe.main(["--pretrained", "minilm", "--text", TEXTS[0], "--text", TEXTS[1],
                       "--logdir", str(tmp_path), "--run-name", "mini"]) == 0
    client = _client(str(tmp_path))
    tags = json.loads(_get(client, "tags").get_data())
    assert sorted(tags["mini"]) == ["attention/probe_000", "attention/probe_001"]
    header = json.loads(_get(client, "header", run="mini", tag="attention/probe_000", step=0).get_data())
    assert header["tokens"]["input"] == ["[CLS]", "a", "man", "is", "eating", "food", ".", "[SEP]"]
    assert [l["name"] for l in header["layers"]] == ["encoder/block_%d" % i for i in range(6)]
    assert header["text"] == TEXTS[0]
    last = _layer(client, "mini", "attention/probe_000", 5)
    assert last.shape == (12, 8, 8)
    np.testing.assert_allclose(last.sum(-1), 1.0, atol=2e-3)
    # The attention sink the notes describe: the last layer puts much of each row's mass on [CLS].
    assert last[:, :, 0].mean() > 0.2
    header2 = json.loads(_get(client, "header", run="mini", tag="attention/probe_001", step=0).get_data())
    assert any(t.startswith("##") for t in header2["tokens"]["input"])


def test_merged_word_pieces_keep_rows_summing_to_one(tmp_path, minilm_dir):
    assert probe.main(["--pretrained", "minilm", "--text", TEXTS[1], "--logdir", str(tmp_path),
                       "--run-name", "merged", "--merge-word-pieces"]) == 0
    client = _client(str(tmp_path))
    header = json.loads(_get(client, "header", run="merged", tag="attention/probe_000", step=0).get_data())
    words = header["tokens"]["input"]
    assert words[0] == "[CLS]" and words[-1] == "[SEP]" and "charming" in words
    assert not any(w.startswith("##") for w in words)
    arr = _layer(client, "merged", "attention/probe_000", 0)
    assert arr.shape == (12, len(words), len(words))
    np.testing.assert_allclose(arr.sum(-1), 1.0, atol=2e-3)


def test_merge_rule_sums_keys_and_averages_queries():
    from attn_tf.data.wordpiece import merge_word_pieces

    tokens = ["[CLS]", "un", "##believ", "##ably", "[SEP]"]
    a = np.random.default_rng(0).random((2, 5, 5))
    a /= a.sum(-1, keepdims=True)
    words, m = merge_word_pieces(tokens, a)
    assert words == ["[CLS]", "unbelievably", "[SEP]"]
    np.testing.assert_allclose(m[:, 0, 1], a[:, 0, 1:4].sum(-1))
    np.testing.assert_allclose(m[:, 1, 0], a[:, 1:4, 0].mean(-1))
    np.testing.assert_allclose(m.sum(-1), 1.0)


def _classifier_run(path):
    """A finished run directory of an (untrained) tiny transformer classifier, as train.py lays it out."""
    from attn_tf.data import TextVectorizer
    from attn_tf.models.transformer import transformer

    os.makedirs(path)
    vec = TextVectorizer.adapt(["good film", "bad film", "a dull plot", "great acting"], max_length=8, min_count=1)
    vec.save(os.path.join(path, "vectorizer.json"))
    model = transformer(vocab_size=len(vec.vocabulary), num_classes=2, max_length=8, hidden_dim=8, num_layers=2,
                        num_heads=2, intermediate_dim=16)
    model.save(os.path.join(path, "model.keras"))
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump({"model": "transformer", "max_length": 8, "class_names": ["neg", "pos"], "dataset": "x"}, f)


def test_classifier_run_probe_has_prediction_and_attention(tmp_path):
    run = str(tmp_path / "runs" / "transformer-x")
    _classifier_run(run)
    assert probe.main([run, "--text", "good film", "--text", "a dull unseen plot", "--logdir",
                       str(tmp_path / "probes"), "--run-name", "clf"]) == 0
    client = _client(str(tmp_path / "probes"))
    header = json.loads(_get(client, "header", run="clf", tag="attention/probe_001", step=0).get_data())
    assert header["tokens"]["input"] == ["a", "dull", "unseen", "plot"]
    assert header["prediction"] in ("neg", "pos") and len(header["probabilities"]) == 2
    assert _layer(client, "clf", "attention/probe_001", 1).shape == (2, 4, 4)


def _seq2seq_run(path):
    from attn_tf.data.seq2seq_vocab import SequenceVocabulary
    from attn_tf.models.seq2seq_gru import Seq2SeqGRU

    os.makedirs(path)
    src = SequenceVocabulary.adapt(["cat", "dog", "bird"], tokenizer="chars", max_length=8, min_count=1)
    tgt = SequenceVocabulary.adapt(["K AE T", "D AO G"], tokenizer="whitespace", lowercase=False, max_length=8,
                                   min_count=1)
    src.save(os.path.join(path, "source_vocab.json"))
    tgt.save(os.path.join(path, "target_vocab.json"))
    model = Seq2SeqGRU(len(src.vocabulary), len(tgt.vocabulary), embedding_dim=8, units=8, dropout=0.0)
    model.build_dummy()
    model.save(os.path.join(path, "model.keras"))
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump({"model": "seq2seq_gru", "max_length": 8, "dataset": "cmudict"}, f)


def test_seq2seq_run_probe_has_decoded_output_and_cross_attention(tmp_path):
    run = str(tmp_path / "runs" / "s2s")
    _seq2seq_run(run)
    assert probe.main([run, "--text", "cat", "--text", "bid", "--logdir", str(tmp_path / "probes"),
                       "--run-name", "s2s"]) == 0
    client = _client(str(tmp_path / "probes"))
    header = json.loads(_get(client, "header", run="s2s", tag="attention/probe_000", step=0).get_data())
    assert header["tokens"]["source"] == ["c", "a", "t"]
    assert header["tokens"]["target"][-1] == "[END]"
    assert isinstance(header["prediction"], str)
    cross = [i for i, l in enumerate(header["layers"]) if l["kind"] == "cross"]
    assert cross
    arr = _layer(client, "s2s", "attention/probe_000", cross[0])
    assert arr.shape[1:] == (len(header["tokens"]["target"]), 3)


@pytest.mark.parametrize("argv, message", [
    (["--pretrained", "minilm"], "no text to probe"),
    (["--pretrained", "minilm", "--text", "  "], "--text number 1 is empty"),
    (["--pretrained", "minilm", "--file", "/nonexistent/texts.txt"], "does not exist"),
    (["--text", "hi"], "either RUN_DIR"),
    (["/nonexistent/run", "--text", "hi"], "not a run directory"),
    (["--pretrained", "minilm", "--text", "hi", "--max-length", "2"], "at least 3"),
])
def test_bad_input_exits_2_with_one_message(tmp_path, capsys, argv, message):
    assert probe.main(argv + ["--logdir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_unfinished_run_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "transformer"}))
    assert probe.main([str(run), "--text", "hi", "--logdir", str(tmp_path / "out")]) == 2
    assert "has not finished" in capsys.readouterr().err


def test_file_texts_follow_the_text_flags(tmp_path):
    f = tmp_path / "texts.txt"
    f.write_text("first line\n\n  \nsecond line\n", encoding="utf-8")
    assert probe.read_texts(["given"], str(f)) == ["given", "first line", "second line"]
