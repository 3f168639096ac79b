"""The seq2seq `alignment` section: cross-attention vs gradient alignment, and the known copy/reverse answer."""

import glob
import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "seq2seq"))

from s2s_synthetic import id_arrays, write_tsv  # noqa: E402

from attn_tf.evaluation import seq2seq_alignment as sa  # noqa: E402

VOCAB = 16


def _tiny(kind):
    import keras

    keras.utils.set_random_seed(1)
    if kind == "seq2seq_gru":
        from attn_tf.models.seq2seq_gru import Seq2SeqGRU

        model = Seq2SeqGRU(VOCAB, VOCAB, embedding_dim=6, units=5, dropout=0.0)
    else:
        from attn_tf.models.seq2seq_transformer import Seq2SeqTransformer

        model = Seq2SeqTransformer(VOCAB, VOCAB, max_source_length=8, max_target_length=10, hidden_dim=8,
                                   num_layers=2, num_heads=2, intermediate_dim=8, dropout=0.0)
    model.build_dummy()
    return model


@pytest.mark.parametrize("kind", ["seq2seq_gru", "seq2seq_transformer"])
def test_each_step_gets_its_own_gradient_and_padding_gets_none(kind):
    """The one-backward-pass trick gives, for step j, exactly the gradient of log p(y_j) (checked one by one)."""
    import tensorflow as tf

    model = _tiny(kind)
    src, tin, tout = id_arrays("copy", 3, seed=3, min_len=3, max_len=6)
    cross, grad = sa.Seq2SeqAdapter(model, kind).alignments(src, tin, tout)
    assert cross.shape[:2] == (3, 2 if kind == "seq2seq_transformer" else 1)
    maps = model.attention_maps(src, tin)
    np.testing.assert_allclose(cross, tf.cast(maps["cross"], tf.float32).numpy(), atol=1e-6)
    for i, j in ((0, 0), (1, 2), (2, 1)):
        emb = tf.cast(model.source_token_embeddings(src[i:i + 1]), tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(emb)
            logits = model.attention_maps(src[i:i + 1], tin[i:i + 1], source_embeddings=emb)["logits"]
            target = tf.nn.log_softmax(tf.cast(logits, tf.float32))[0, j, int(tout[i, j])]
        want = tf.norm(tape.gradient(target, emb) * emb, axis=-1).numpy()[0]
        np.testing.assert_allclose(grad[i, j], want, rtol=1e-4, atol=1e-7)
    pad = src == 0
    assert pad.any() and np.all(grad.transpose(1, 0, 2)[:, pad] == 0)  # masked positions have no influence


def test_zero_embedding_token_has_zero_gradient_alignment():
    """Gradient x input: a source token whose embedding is zero gets exactly 0 (a hand-set known answer)."""
    model = _tiny("seq2seq_gru")
    table = model.source_embedding.embeddings
    values = table.numpy()
    values[5] = 0.0
    table.assign(values)
    src = np.array([[4, 5, 6, 5, 7]], np.int32)
    outputs = [np.array([4, 6, 7, 3], np.int32)]
    adapter = sa.Seq2SeqAdapter(model, "seq2seq_gru")
    per = sa.compare(src, outputs, adapter)
    assert len(per["tau"]) == 3  # [END] not evaluated
    target_in = np.array([[2, 4, 6]], np.int32)
    _, grad = adapter.alignments(src, target_in, outputs[0][None, :3])
    assert np.all(grad[0][:, [1, 3]] == 0) and np.all(grad[0][:, [0, 2, 4]] > 0)


def test_known_task_detection():
    s = [["a", "b", "c"], ["d", "e"]]
    assert sa.known_task(s, s) == "copy"
    assert sa.known_task(s, [t[::-1] for t in s]) == "reverse"
    assert sa.known_task(s, [["x", "y"], ["d", "e"]]) is None
    assert sa.known_task([["a"]], [["a"]]) is None  # nothing of >= 2 tokens to tell


def test_reverse_model_attends_to_the_anti_diagonal():
    """A GRU trained briefly on reversal: the attention argmax is on |x|-1-j far more often than chance."""
    from s2s_train import train_small

    model = train_small("seq2seq_gru", "reverse", epochs=3, n=1200)
    src, _, _ = id_arrays("reverse", 80, seed=777)
    outputs = sa.greedy_outputs(model, src, 10)
    per = sa.compare(src, outputs, sa.Seq2SeqAdapter(model, "seq2seq_gru"), known="reverse")
    s = sa.summarize(per, "reverse")
    k = s["known_alignment"]
    assert k["chance"] < 0.3
    assert k["attention_correct"] > 0.6 and k["attention_correct"] > 2 * k["chance"], k
    assert k["gradient_correct"] > k["chance"], k
    assert s["argmax_agreement"] > s["chance_argmax"]
    assert "reverse task" in sa.conclusion(s)


def test_cli_on_a_seq2seq_run(tmp_path, capsys):
    """python -m attn_tf.evaluate on a train.py seq2seq run: the alignment section, classifier ones skipped."""
    import train as train_script
    from attn_tf import evaluate

    data = write_tsv(tmp_path / "copy.tsv", "copy", n=200)
    assert train_script.main(["--data", str(data), "--model", "seq2seq_transformer", "--logdir",
                              str(tmp_path / "runs"), "--batch-size", "32", "--max-steps", "4", "--verbose", "0",
                              "--no-export", "--attention-every", "0"]) == 0
    (run,) = glob.glob(str(tmp_path / "runs" / "*"))
    out = str(tmp_path / "ev")
    assert evaluate.main([run, "--samples", "12", "--out", out, "--quiet"]) == 0
    report = json.load(open(os.path.join(out, "report.json")))
    sec = report["sections"]["alignment"]
    assert report["task"] == "seq2seq" and sec["steps"] > 0
    n = json.load(open(os.path.join(run, "config.json")))["model_sizes"]["num_layers"]  # one row per decoder block
    assert len(sec["layers"]) == n and -1 <= sec["kendall_tau"]["mean"] <= 1
    assert sec["known_alignment"]["task"] == "copy"
    assert "skipped" in report["sections"]["agreement"]
    md = open(os.path.join(out, "report.md")).read()
    assert "Cross-attention vs gradient alignment" in md and "What to conclude" in md
    assert "seq2seq/alignment_tau" in report["tensorboard"]["scalars"]
    capsys.readouterr()
