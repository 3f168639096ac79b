"""Tiny exported runs for the typed-text tests (tests/tb_plugin/test_plugin_live.py, tests/e2e/test_tab_live.py).

`write_live_logdir(root)` builds, in seconds and untrained or barely trained
(the tests check what the tab shows, not accuracy):

    root/logs/bilstm-tiny/        a BiLSTM run: config.json, results.json whose "export"
                                  path is RELATIVE (saved_models/bilstm_attention-tiny/1,
                                  as train.py records it, relative to the directory it
                                  ran in: here root), attention/ probe summaries
    root/logs/transformer-tiny/   a Transformer run (`layers` blocks): ABSOLUTE export path
    root/logs/seq2seq-tiny/       (seq2seq=True) an untrained seq2seq_gru, translate signature
    root/logs/unexported/         a finished run whose results.json records no export
    root/saved_models/            the SavedModels (outside the logdir, as in a real setup)

No file of this module is a test (pytest collects nothing from it).
"""

import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MAX_LENGTH = 16
CLASS_NAMES = ["neg", "pos"]
WORDS = ["the", "film", "was", "great", "bad", "acting", "plot", "a", "movie", "boring", "fun", "and", "not"]


def _texts(n=120, seed=1):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 12)))) for _ in range(n)]


def _probe(run_dir, tokens, arrays_kinds):
    from tb_plugin import metadata, summary

    layers = [metadata.make_layer(name, kind, a.shape, query=None if kind == "pooling" else "input")
              for name, kind, a in arrays_kinds]
    header = metadata.make_header({"input": tokens}, layers, label="pos", prediction="pos",
                                  probabilities=[0.4, 0.6], class_names=CLASS_NAMES)
    with summary.AttentionEventWriter(os.path.join(run_dir, "attention")) as w:
        w.add(header, [a for _, _, a in arrays_kinds], step=0, tag=metadata.probe_tag(0))


def _classifier_run(root, logdir, kind, run_name, absolute, **sizes):
    import keras

    from attn_tf.data import TextVectorizer
    from attn_tf.export import export_run
    from attn_tf.models import build_classifier

    run = os.path.join(logdir, run_name)
    os.makedirs(run)
    texts = _texts()
    vec = TextVectorizer.adapt(texts, max_length=MAX_LENGTH, min_count=1)
    vec.save(os.path.join(run, "vectorizer.json"))
    keras.utils.set_random_seed(0)
    model = build_classifier(kind, vocab_size=vec.vocabulary_size, num_classes=2, max_length=MAX_LENGTH, **sizes)
    train_model = keras.Model(model.input, model.output["probabilities"])
    train_model.compile("adam", "sparse_categorical_crossentropy")
    ids, _ = vec(np.array(texts, dtype=object))
    labels = np.array([1 if ("great" in t or "fun" in t) else 0 for t in texts], np.int32)
    train_model.fit(ids.numpy(), labels, batch_size=32, epochs=2, verbose=0)
    model.save(os.path.join(run, "model.keras"))
    with open(os.path.join(run, "config.json"), "w") as f:
        json.dump({"model": kind, "dataset": "tiny", "data": None, "max_length": MAX_LENGTH,
                   "class_names": CLASS_NAMES}, f)
    base = os.path.join(root, "saved_models")
    info = export_run(run, base_dir=base, log=lambda *a: None)
    if not absolute:
        info = dict(info, path=os.path.relpath(info["path"], root))
    with open(os.path.join(run, "results.json"), "w") as f:
        json.dump({"model": kind, "test_accuracy": 0.5, "export": info}, f)
    if kind == "bilstm_attention":
        _probe(run, ["a", "film"], [("attention_pooling", "pooling", np.full((1, 1, 2), 0.5, np.float32))])
    else:
        a = np.full((sizes.get("num_heads", 2), 2, 2), 0.5, np.float32)
        _probe(run, ["a", "film"], [("encoder/block_%d" % b, "self", a) for b in range(sizes.get("num_layers", 2))])
    return run


def _seq2seq_run(root, logdir):
    from attn_tf.data.seq2seq_vocab import SequenceVocabulary
    from attn_tf.export import export_run
    from attn_tf.models.seq2seq_gru import Seq2SeqGRU

    letters = list("abcdefgh")
    run = os.path.join(logdir, "seq2seq-tiny")
    os.makedirs(run)
    source = SequenceVocabulary(letters, tokenizer="unicode_script", max_length=8)
    target = SequenceVocabulary(letters, tokenizer="unicode_script", max_length=8)
    source.save(os.path.join(run, "source_vocab.json"))
    target.save(os.path.join(run, "target_vocab.json"))
    vocab = 4 + len(letters)
    model = Seq2SeqGRU(vocab, vocab, embedding_dim=8, units=8, attention="additive", dropout=0.0)
    model.build_dummy()
    model.save(os.path.join(run, "model.keras"))
    with open(os.path.join(run, "config.json"), "w") as f:
        json.dump({"model": "seq2seq_gru", "dataset": "copy", "max_length": 8, "beam_size": 1}, f)
    info = export_run(run, base_dir=os.path.join(root, "saved_models"), log=lambda *a: None)
    with open(os.path.join(run, "results.json"), "w") as f:
        json.dump({"model": "seq2seq_gru", "export": info}, f)
    _probe(run, ["a", "b"], [("encoder/block_0", "self", np.full((1, 2, 2), 0.5, np.float32))])
    return run


def write_live_logdir(root, layers=2, seq2seq=False):
    """-> {"logdir", "bilstm", "transformer", "seq2seq"?, "unexported"} (run directories)."""
    sys.path.insert(0, ROOT)
    logdir = os.path.join(root, "logs")
    os.makedirs(logdir)
    runs = {
        "logdir": logdir,
        "bilstm": _classifier_run(root, logdir, "bilstm_attention", "bilstm-tiny", absolute=False,
                                  embedding_dim=8, lstm_units=8, attention_units=8),
        "transformer": _classifier_run(root, logdir, "transformer", "transformer-tiny", absolute=True,
                                       hidden_dim=16, num_layers=layers, num_heads=2, intermediate_dim=32),
    }
    if seq2seq:
        runs["seq2seq"] = _seq2seq_run(root, logdir)
    unexported = os.path.join(logdir, "unexported")
    os.makedirs(unexported)
    with open(os.path.join(unexported, "config.json"), "w") as f:
        json.dump({"model": "transformer"}, f)
    with open(os.path.join(unexported, "results.json"), "w") as f:
        json.dump({"model": "transformer", "test_accuracy": 0.5}, f)
    _probe(unexported, ["a", "b"], [("encoder/block_0", "self", np.full((1, 2, 2), 0.5, np.float32))])
    runs["unexported"] = unexported
    return runs


def snapshot(directory):
    """{relative path: (size, mtime_ns)} of every file under `directory` (to check nothing is written)."""
    out = {}
    for base, _, files in os.walk(directory):
        for name in files:
            p = os.path.join(base, name)
            st = os.stat(p)
            out[os.path.relpath(p, directory)] = (st.st_size, st.st_mtime_ns)
    return out
