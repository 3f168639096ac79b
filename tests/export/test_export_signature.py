"""The contract of exported classifiers (predict / serving_default / attention), checked in a fresh process."""

import base64
import json

import numpy as np
import pytest

from export_support import MAX_LENGTH, TEXTS, keras_reference, run_fresh

EMPTY_ROWS = [2, 3]
LONG_ROW, INVALID_ROW = 4, 5


@pytest.fixture(scope="module")
def fresh(exported, tmp_path_factory):
    """(report, outputs) of the SavedModel loaded in a fresh interpreter."""
    tmp = tmp_path_factory.mktemp("fresh_" + exported.kind)
    texts_json = tmp / "texts.json"
    texts_json.write_text(json.dumps([base64.b64encode(t if isinstance(t, bytes) else t.encode()).decode()
                                      for t in TEXTS]))
    proc = run_fresh("fresh_serving_check.py", exported.path, texts_json, tmp / "out.npz")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    outputs = dict(np.load(tmp / "out.npz", allow_pickle=True))
    return exported, report, outputs


def _attention_shape(exported):
    return [None, MAX_LENGTH] if exported.kind == "bilstm_attention" else [None, 2, 2, MAX_LENGTH, MAX_LENGTH]


def test_signature_names_dtypes_shapes(fresh):
    exported, report, outputs = fresh
    assert not report["attn_tf_imported"]
    assert report["signatures"] == ["attention", "predict", "serving_default"]
    C, T, B = len(exported.class_names), MAX_LENGTH, len(TEXTS)
    text = {"text": ["string", [None]]}
    prediction = {"probabilities": ["float32", [None, C]], "label": ["string", [None]],
                  "token_count": ["int32", [None]]}
    attention = _attention_shape(exported)
    selected = attention if exported.kind == "bilstm_attention" else [None, None, None, T, T]
    assert report["specs"] == {
        "predict": {"inputs": text, "outputs": prediction},
        "serving_default": {"inputs": text, "outputs": dict(
            prediction, tokens=["string", [None, T]], explanation=["float32", [None, T]])},
        "attention": {"inputs": dict(text, layers=["int32", [None]], heads=["int32", [None]]),
                      "outputs": dict(prediction, tokens=["string", [None, T]], attention=["float32", selected])},
    }
    full = tuple([B] + attention[1:])
    assert outputs["attention/attention"].shape == full
    assert outputs["serving_default/explanation"].shape == (B, T)
    assert outputs["predict/probabilities"].shape == (B, C)
    assert report["empty_batch"]["serving_default"] == {
        "probabilities": [0, C], "label": [0], "tokens": [0, T], "token_count": [0], "explanation": [0, T]}
    assert report["empty_batch"]["predict"] == {"probabilities": [0, C], "label": [0], "token_count": [0]}
    assert report["empty_batch"]["attention"]["attention"] == [0] + attention[1:]


def test_outputs_match_in_memory_keras_model(fresh):
    exported, _, outputs = fresh
    ref, counts, tokens = keras_reference(exported.run_dir, TEXTS)
    rows = [i for i in range(len(TEXTS)) if i not in EMPTY_ROWS]
    for sig in ("serving_default", "predict", "attention"):
        np.testing.assert_allclose(outputs[sig + "/probabilities"][rows], ref["probabilities"][rows],
                                   rtol=0, atol=1e-5)
        np.testing.assert_array_equal(outputs[sig + "/token_count"], counts)
    np.testing.assert_allclose(outputs["attention/attention"][rows], ref["attention"][rows], rtol=0, atol=1e-5)
    expected_labels = [exported.class_names[i] for i in ref["probabilities"].argmax(-1)]
    assert [l.decode() for l in outputs["serving_default/label"][rows]] == [expected_labels[i] for i in rows]
    padded = [row + [""] * (MAX_LENGTH - len(row)) for row in tokens]
    for sig in ("serving_default", "attention"):
        assert [[t.decode("utf-8") for t in row] for row in outputs[sig + "/tokens"]] == padded


def test_three_signatures_agree(fresh):
    """Same predictions from predict / serving_default / attention; the compact explanation is what the
    full tensors of the attention signature give (pooling weights, or the rollout row of the pooled
    output computed here with the tab's own rollout)."""
    from tb_plugin.flows import rollout

    exported, _, out = fresh
    for key in ("probabilities", "label", "token_count"):
        for sig in ("predict", "attention"):
            if out[sig + "/" + key].dtype.kind == "f":
                np.testing.assert_allclose(out[sig + "/" + key], out["serving_default/" + key], rtol=0, atol=1e-6)
            else:
                np.testing.assert_array_equal(out[sig + "/" + key], out["serving_default/" + key])
    np.testing.assert_array_equal(out["attention/tokens"], out["serving_default/tokens"])
    full, explanation = out["attention/attention"], out["serving_default/explanation"]
    for i in range(len(TEXTS)):
        n = min(int(out["serving_default/token_count"][i]), MAX_LENGTH)
        if exported.kind == "bilstm_attention":
            expected = full[i]
        else:  # mean-pooled classifier: the mean of the rollout rows of its n real tokens
            expected = np.zeros(MAX_LENGTH)
            if n:
                expected[:n] = rollout(list(full[i][:, :, :n, :n])).mean(0)
        np.testing.assert_allclose(explanation[i], expected, rtol=0, atol=1e-5)
        if n:
            np.testing.assert_allclose(explanation[i][:n].sum(), 1.0, atol=1e-5)
        assert not explanation[i][n:].any()


def test_attention_signature_selects_layers_and_heads(fresh):
    exported, report, out = fresh
    if exported.kind == "bilstm_attention":
        assert "send empty `layers` and `heads`" in report["bad_index_error"], report["bad_index_error"]
        return
    part, full = out["attention_part/attention"], out["attention/attention"]
    assert part.shape == (len(TEXTS), 1, 1, MAX_LENGTH, MAX_LENGTH)
    np.testing.assert_array_equal(part[:, 0, 0], full[:, -1, 0])
    assert "`layers` indexes must be in [0, 2)" in report["bad_index_error"], report["bad_index_error"]


def test_edge_inputs_behave_as_documented(fresh):
    exported, _, all_out = fresh
    out = {k.split("/", 1)[1]: v for k, v in all_out.items() if k.startswith("serving_default/")}
    out["attention"] = all_out["attention/attention"]
    C = len(exported.class_names)
    for i in EMPTY_ROWS:  # no token: "don't know", not a confident answer
        assert out["token_count"][i] == 0
        np.testing.assert_array_equal(out["probabilities"][i], np.full([C], 1.0 / C, np.float32))
        np.testing.assert_array_equal(all_out["predict/probabilities"][i], np.full([C], 1.0 / C, np.float32))
        assert out["label"][i] == b"" and all_out["predict/label"][i] == b""
        assert not out["attention"][i].any() and not out["explanation"][i].any()
        assert (out["tokens"][i] == b"").all()
    # Truncation: 60 tokens, T kept, token_count says so.
    assert out["token_count"][LONG_ROW] == 60 > MAX_LENGTH
    assert (out["tokens"][LONG_ROW] != b"").all()
    # Invalid UTF-8: replaced by U+FFFD, an ordinary token; the answer is a normal one.
    row = [t.decode("utf-8") for t in out["tokens"][INVALID_ROW] if t]
    assert row[0] == "bad" and "movie" in row and any("\ufffd" in t for t in row), row
    assert out["label"][INVALID_ROW].decode() in exported.class_names
    # Every row with tokens: a distribution, and attention rows that sum to 1 over real tokens.
    rows = [i for i in range(len(TEXTS)) if i not in EMPTY_ROWS]
    np.testing.assert_allclose(out["probabilities"][rows].sum(-1), 1.0, atol=1e-5)
    for i in rows:
        n = min(int(out["token_count"][i]), MAX_LENGTH)
        att = out["attention"][i]
        if exported.kind == "bilstm_attention":
            np.testing.assert_allclose(att[:n].sum(), 1.0, atol=1e-5)
            assert not att[n:].any()
        else:
            np.testing.assert_allclose(att[:, :, :n, :n].sum(-1), 1.0, atol=1e-5)
            assert not att[:, :, :, n:].any()
    assert not np.isnan(out["probabilities"]).any() and not np.isnan(out["attention"]).any()


def test_warmup_records_replay(fresh):
    exported, report, _ = fresh
    assert 1 <= len(report["warmup"]) <= 1000
    for rec in report["warmup"]:
        assert rec["model"] == exported.name
        assert rec["output_batches"] == [rec["batch"]]
        expected = ["heads", "layers", "text"] if rec["signature"] == "attention" else ["text"]
        assert rec["inputs"] == expected
    assert {r["signature"] for r in report["warmup"]} == {"serving_default", "predict", "attention"}
    assert 1 in [r["batch"] for r in report["warmup"]]


def test_graph_ops_portable_and_verified_for_tf_serving_2_20(exported):
    from attn_tf.export.graph_ops import (VERIFIED_WITH_TF_2_20, gpu_only_ops, registry_problems,
                                          saved_model_op_attrs)

    op_attrs = saved_model_op_attrs(exported.path)
    assert gpu_only_ops(op_attrs) == []
    if exported.kind == "bilstm_attention":
        assert "While" in op_attrs  # the LSTM runs as a portable while loop
    assert registry_problems(op_attrs) == []
    new = sorted(set(op_attrs) - VERIFIED_WITH_TF_2_20)
    assert not new, ("ops not yet checked against TF 2.20 / TF Serving 2.20: %s; check them as the "
                     "attn_tf/export/graph_ops.py docstring says, then add them to VERIFIED_WITH_TF_2_20" % new)


def test_registry_check_finds_unknown_ops_and_attrs():
    from attn_tf.export.graph_ops import registry_problems

    assert registry_problems({"MatMul": {"transpose_a", "T"}}) == []
    assert registry_problems({"NoSuchOp": set(), "MatMul": {"grad_x"}}) == [
        "MatMul: unknown attrs grad_x", "NoSuchOp: not registered"]


def test_recurrent_layers_get_use_cudnn_false(bilstm_export):
    from attn_tf.export.run import RunDir

    model = RunDir(bilstm_export.run_dir).load_keras_model()
    encoder = model.get_layer("encoder")
    assert encoder.forward_layer.use_cudnn is False and encoder.backward_layer.use_cudnn is False


def test_predict_path_uses_fused_attention_and_gives_the_same_probabilities(monkeypatch):
    """`predict` runs the model module's forward(return_attention=False): every Transformer block takes
    keras.ops.dot_product_attention (flash attention on GPU backends) and the answer is unchanged."""
    import keras

    from attn_tf.export.classifier import attention_free_forward, pooled_position
    from attn_tf.models import build_classifier

    keras.utils.set_random_seed(3)
    model = build_classifier("transformer", vocab_size=30, num_classes=3, max_length=MAX_LENGTH, hidden_dim=16,
                             num_layers=3, num_heads=2, intermediate_dim=32)
    ids = np.random.default_rng(0).integers(1, 30, size=(4, MAX_LENGTH)).astype("int32")
    ids[1, 5:] = 0
    ids[2, :] = 0  # an empty text
    calls = []
    real = keras.ops.dot_product_attention
    monkeypatch.setattr(keras.ops, "dot_product_attention", lambda *a, **k: calls.append(1) or real(*a, **k))
    expected = np.asarray(model(ids, training=False)["probabilities"])
    assert calls == []  # the model's own call returns the attention: explicit path
    fast = np.asarray(attention_free_forward("transformer", model)(ids))
    assert len(calls) == 3
    np.testing.assert_allclose(fast, expected, rtol=0, atol=1e-6)
    assert pooled_position(model) == "mean"


def test_signatures_are_generic_over_tokenizer_and_model_minilm(monkeypatch):
    """A (tiny, random) MiniLM with its WordPiece tokenizer: no tokenize/lookup methods, [CLS]/[SEP]
    pieces; the same three signatures, the fused predict path, the rollout explanation."""
    import keras
    import tensorflow as tf
    from tb_plugin.flows import rollout

    from attn_tf.data.wordpiece import WordPieceVectorizer
    from attn_tf.export.classifier import attention_free_forward, make_signatures
    from attn_tf.models.minilm import minilm_classifier

    keras.utils.set_random_seed(4)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "movie", "good", "bad", "film", "##s", "a", "."]
    tokenizer = WordPieceVectorizer(vocab, max_length=10)
    model = minilm_classifier(2, max_length=10, preset=None, vocab_size=len(vocab), hidden_dim=8, num_layers=2,
                              num_heads=2, intermediate_dim=16, max_sequence_length=10)
    calls = []
    real = keras.ops.dot_product_attention
    monkeypatch.setattr(keras.ops, "dot_product_attention", lambda *a, **k: calls.append(1) or real(*a, **k))
    sigs = make_signatures(model, tokenizer, ["neg", "pos"], predict_fn=attention_free_forward("minilm", model))
    texts = tf.constant(["The movie was good.", "", "films films films films films films films films"])
    predict = {k: v.numpy() for k, v in sigs["predict"](texts).items()}
    assert len(calls) == 2  # traced once: both blocks fused
    serve = {k: v.numpy() for k, v in sigs["serving_default"](texts).items()}
    none = tf.constant([], tf.int32)
    full = {k: v.numpy() for k, v in sigs["attention"](texts, none, none).items()}
    np.testing.assert_allclose(predict["probabilities"], serve["probabilities"], atol=1e-6)
    np.testing.assert_allclose(full["probabilities"], serve["probabilities"], atol=1e-6)
    assert [t.decode() for t in serve["tokens"][0][:7]] == ["[CLS]", "the", "movie", "[UNK]", "good", ".", "[SEP]"]
    assert serve["token_count"][1] == 0 and serve["label"][1] == b"" and not serve["explanation"][1].any()
    assert serve["token_count"][2] > 10  # truncated
    for i in (0, 2):
        n = min(int(serve["token_count"][i]), 10)
        expected = np.zeros(10)
        expected[:n] = rollout(list(full["attention"][i][:, :, :n, :n])).mean(0)
        np.testing.assert_allclose(serve["explanation"][i], expected, atol=1e-5)
