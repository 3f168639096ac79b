"""train.py --model minilm end to end on a tiny random configuration (no pretrained weights needed).

The registry entry is swapped for one with a tiny random backbone (preset
None) and a tiny WordPiece vocabulary; everything else is the real path:
tokenizer hook, builder, attention logging (step 0 = the model before
fine-tuning), test metrics, model.keras, probe and evaluation hooks.
"""

import dataclasses
import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "training"))

import train as train_script  # noqa: E402
from synthetic import FILLER, NEGATIVE, POSITIVE, write_csv  # noqa: E402

TINY_SIZES = {"preset": None, "hidden_dim": 16, "num_layers": 2, "num_heads": 2, "intermediate_dim": 32,
              "max_sequence_length": 32, "classifier_dropout": 0.1}


def tiny_vocabulary():
    # Some words are left out whole so that WordPiece splits them: "lovely" -> love ##ly.
    words = sorted(set(FILLER + POSITIVE + NEGATIVE) - {"lovely", "boring"})
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", ".", "love", "bor", "##ly", "##ing"] + words


def tiny_tokenizer(config, data=None):
    from attn_tf.data.wordpiece import WordPieceVectorizer

    return WordPieceVectorizer(tiny_vocabulary(), max_length=config["max_length"])


@pytest.fixture
def tiny_minilm():
    from attn_tf.models import registry

    original = registry.get("minilm")
    registry.register(dataclasses.replace(original, sizes={"default": TINY_SIZES}, make_tokenizer=tiny_tokenizer,
                                          training={"default": {"epochs": 2, "learning_rate": 3e-3}}))
    yield
    registry.register(original)


def test_train_minilm_logs_all_heads_from_step_0_and_probes(tmp_path, tiny_minilm):
    csv = write_csv(tmp_path / "reviews.csv", n=400)
    args = ["--model", "minilm", "--data", str(csv), "--text-column", "review", "--label-column", "sentiment",
            "--logdir", str(tmp_path / "runs"), "--batch-size", "32", "--max-length", "20", "--verbose", "0",
            "--export-dir", str(tmp_path / "saved"), "--attention-every", "5", "--probe-examples", "3"]
    assert train_script.main(args) == 0
    (run,) = os.listdir(tmp_path / "runs")
    run = tmp_path / "runs" / run
    results = json.loads((run / "results.json").read_text())
    assert results["model"] == "minilm" and results["test_accuracy"] > 0.6
    config = json.loads((run / "config.json").read_text())
    assert config["model_sizes"]["num_layers"] == 2

    from tensorboard.backend.event_processing import event_accumulator

    from tb_plugin import metadata

    acc = event_accumulator.EventAccumulator(str(run / "attention"), size_guidance={"tensors": 0})
    acc.Reload()
    tags = acc.Tags()["tensors"]
    assert sorted(tags) == [metadata.probe_tag(i) for i in range(3)]
    events = acc.Tensors(tags[0])
    assert events[0].step == 0 and len(events) >= 3
    blobs = events[0].tensor_proto.string_val
    header = metadata.decode_header(blobs[0])
    tokens = header["tokens"]["input"]
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert [l["name"] for l in header["layers"]] == ["encoder/block_0", "encoder/block_1"]
    first = metadata.decode_array(blobs[1])
    last = metadata.decode_array(acc.Tensors(tags[0])[-1].tensor_proto.string_val[1])
    assert first.shape == (2, len(tokens), len(tokens))
    assert np.abs(first.astype(np.float32) - last.astype(np.float32)).max() > 1e-3  # fine-tuning moved the heads

    # The run is probed like any classifier run, through its saved WordPiece tokenizer.
    from attn_tf import probe

    assert probe.main([str(run), "--text", "A lovely film.", "--logdir", str(tmp_path / "probes"),
                       "--run-name", "p", "--merge-word-pieces"]) == 0

    _check_export_in_fresh_process(run, tmp_path)


FRESH = r"""
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the WordPiece ops of the graph)
loaded = tf.saved_model.load(sys.argv[1])
texts = tf.constant(json.loads(sys.argv[2]))
out = {}
for name, sig in loaded.signatures.items():
    _, inputs = sig.structured_input_signature
    args = {k: (texts if k == "text" else tf.constant([], tf.int32)) for k in inputs}
    for k, v in sig(**args).items():
        v = v.numpy()
        out[name + "/" + k] = v.astype("S") if v.dtype == object else v  # strings: no pickling
np.savez(sys.argv[3], **out)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("attn_tf", "tb_plugin"))))
"""


def _check_export_in_fresh_process(run, tmp_path):
    """The SavedModel takes raw strings (tokenizer in-graph) and equals the Keras model within 1e-5,
    loaded in a process that imports only tensorflow and tensorflow_text."""
    import glob
    import subprocess

    import keras

    from attn_tf.models.minilm import load_tokenizer

    (export,) = glob.glob(str(tmp_path / "saved" / "*" / "1"))
    texts = ["A lovely film.", "The plot was boring and weak.", "", "great " * 40]
    npz = tmp_path / "fresh.npz"
    proc = subprocess.run([sys.executable, "-c", FRESH, export, json.dumps(texts), str(npz)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []  # no attn-tf code needed (TF itself may load keras)
    got = dict(np.load(npz))
    model = keras.saving.load_model(str(run / "model.keras"), compile=False)
    ids, counts = load_tokenizer(str(run))(texts)
    want = model(ids, training=False)
    probs = got["serving_default/probabilities"]
    np.testing.assert_allclose(probs[[0, 1, 3]], np.asarray(want["probabilities"])[[0, 1, 3]], atol=1e-5)
    np.testing.assert_allclose(probs[2], 0.5)  # no word piece: "no evidence"
    assert got["serving_default/token_count"].tolist() == counts.numpy().tolist()
    attention = [v for k, v in got.items() if k.endswith("/attention") and v.ndim == 5]
    assert attention, sorted(got)
    np.testing.assert_allclose(attention[0][[0, 1, 3]], np.asarray(want["attention"])[[0, 1, 3]], atol=1e-5)


def test_evaluation_hooks_match_the_model(tiny_minilm):
    import tensorflow as tf

    from attn_tf.models import registry

    spec = registry.get("minilm")
    model = spec.build({"max_length": 12, "model_sizes": TINY_SIZES}, vocab_size=len(tiny_vocabulary()),
                       num_classes=2)
    hooks = spec.evaluation_hooks()
    ids = np.array([[2, 10, 11, 3, 0, 0, 0, 0, 0, 0, 0, 0], [2, 12, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]], np.int32)
    probs, att = hooks.from_embeddings(model, hooks.embed(model, ids), tf.constant(ids))
    out = model(ids, training=False)
    np.testing.assert_allclose(np.asarray(probs), np.asarray(out["probabilities"]), atol=1e-5)
    np.testing.assert_allclose(np.asarray(att), np.asarray(out["attention"]), atol=1e-5)
    # Attention override reaches the model: uniform attention changes the output.
    uniform = [tf.ones_like(att[:, i]) / 12.0 for i in range(att.shape[1])]
    p2, a2 = hooks.from_embeddings(model, hooks.embed(model, ids), tf.constant(ids), attention_override=uniform)
    assert np.abs(np.asarray(p2) - np.asarray(probs)).max() > 0
    assert np.all(np.asarray(a2)[0, :, :, :4, 4:] == 0)  # masked keys stay zero


def test_preset_vocabulary_size_mismatch_is_refused():
    from attn_tf.models.minilm import minilm_classifier

    with pytest.raises(ValueError, match="30522"):
        minilm_classifier(2, max_length=8, vocab_size=100)


def test_minilm_batch_size_and_max_length_defaults_come_from_its_registry_entry():
    from attn_tf.models import registry
    from attn_tf.training import cli

    want = registry.get("minilm").training_defaults({"dataset": "movie_reviews"})
    args = cli.parse_args(["--model", "minilm"])
    assert (args.batch_size, args.max_length) == (want["batch_size"], want["max_length"])
    # the flags still win, and the other models keep the command line's defaults
    args = cli.parse_args(["--model", "minilm", "--batch-size", "8", "--max-length", "100"])
    assert (args.batch_size, args.max_length) == (8, 100)
    args = cli.parse_args(["--model", "transformer"])
    assert (args.batch_size, args.max_length) == (64, 64)
    assert cli.parse_args(["--model", "transformer", "--dataset", "r8"]).max_length == 256
    assert cli.parse_args(["--model", "minilm", "--dataset", "r8"]).max_length == 128  # the 20-minute budget


def test_length_window_cuts_each_batch_to_its_longest_text_and_resumes_the_same(tmp_path):
    """With the registry's "length_window", MiniLM's training batches hold texts of similar length, each
    cut to its longest text; every training text is seen once an epoch; the order depends on (seed, epoch)."""
    from attn_tf.data.pipeline import row_lengths
    from attn_tf.models import registry
    from attn_tf.training.trainer import ClassifierTask

    original = registry.get("minilm")
    spec = dataclasses.replace(original, sizes={"default": TINY_SIZES}, make_tokenizer=tiny_tokenizer,
                               training={"default": {"epochs": 1, "learning_rate": 3e-3, "length_window": 2}})
    registry.register(spec)
    try:
        from attn_tf.data.user_data import load_user_data

        csv = write_csv(tmp_path / "reviews.csv", n=300)
        data = load_user_data(str(csv), text_column="review", label_column="sentiment")
        config = {"model": "minilm", "data": str(csv), "max_length": 24, "batch_size": 16, "seed": 3,
                  "learning_rate": 3e-3}
        task = ClassifierTask(spec)
        tokenizer = tiny_tokenizer(config)
        task.setup(config, data, tokenizer, log=lambda *a: None)
        task.build(config, total_steps=10)
        assert task.model.input.shape[1] is None
        full = row_lengths(task.train_ids)

        def epoch(e):
            return [(x.numpy(), y.numpy()) for x, y in task.epoch_dataset(e)]

        batches = epoch(0)
        assert len(batches) == task.steps_per_epoch()
        widths = [x.shape[1] for x, _ in batches]
        assert len(set(widths)) > 1 and max(widths) <= 24
        for x, _ in batches:  # cut to the longest text of the batch: its last column is not all padding
            assert (x[:, -1] != 0).any()
        seen = sorted(tuple(row[row != 0]) for x, _ in batches for row in x)
        assert seen == sorted(tuple(row[: n]) for row, n in zip(task.train_ids, full))
        assert sum(len(y) for _, y in batches) == len(task.train_ids)
        again = epoch(0)
        assert all(np.array_equal(a[0], b[0]) for a, b in zip(batches, again))
        other = epoch(1)
        assert any(a[0].shape != b[0].shape or not np.array_equal(a[0], b[0]) for a, b in zip(batches, other))
        probs = task.model(batches[0][0])["probabilities"]
        assert tuple(probs.shape) == (len(batches[0][1]), 2)
    finally:
        registry.register(original)
