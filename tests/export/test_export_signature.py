"""The serving_default contract of exported classifiers, checked in a fresh process."""

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


def test_signature_names_dtypes_shapes(fresh):
    exported, report, outputs = fresh
    assert not report["attn_tf_imported"]
    assert report["signatures"] == ["serving_default"]
    assert report["inputs"] == {"text": ["string", [None]]}
    C, T = len(exported.class_names), MAX_LENGTH
    attention = [None, T] if exported.kind == "bilstm_attention" else [None, 2, 2, T, T]
    assert report["outputs"] == {
        "probabilities": ["float32", [None, C]],
        "label": ["string", [None]],
        "tokens": ["string", [None, T]],
        "token_count": ["int32", [None]],
        "attention": ["float32", attention],
    }
    B = len(TEXTS)
    assert {k: v.shape for k, v in outputs.items()} == {
        "probabilities": (B, C), "label": (B,), "tokens": (B, T), "token_count": (B,),
        "attention": tuple([B] + attention[1:]),
    }
    assert report["empty_batch"] == {"probabilities": [0, C], "label": [0], "tokens": [0, T],
                                     "token_count": [0], "attention": [0] + attention[1:]}


def test_outputs_match_in_memory_keras_model(fresh):
    exported, _, outputs = fresh
    ref, counts, tokens = keras_reference(exported.run_dir, TEXTS)
    rows = [i for i in range(len(TEXTS)) if i not in EMPTY_ROWS]
    np.testing.assert_allclose(outputs["probabilities"][rows], ref["probabilities"][rows], rtol=0, atol=1e-5)
    np.testing.assert_allclose(outputs["attention"][rows], ref["attention"][rows], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(outputs["token_count"], counts)
    expected_labels = [exported.class_names[i] for i in ref["probabilities"].argmax(-1)]
    assert [l.decode() for l in outputs["label"][rows]] == [expected_labels[i] for i in rows]
    padded = [row + [""] * (MAX_LENGTH - len(row)) for row in tokens]
    assert [[t.decode("utf-8") for t in row] for row in outputs["tokens"]] == padded


def test_edge_inputs_behave_as_documented(fresh):
    exported, _, out = fresh
    C = len(exported.class_names)
    for i in EMPTY_ROWS:  # no token: "don't know", not a confident answer
        assert out["token_count"][i] == 0
        np.testing.assert_array_equal(out["probabilities"][i], np.full([C], 1.0 / C, np.float32))
        assert out["label"][i] == b""
        assert not out["attention"][i].any()
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
        assert rec["model"] == exported.name and rec["signature"] == "serving_default"
        assert rec["inputs"] == ["text"] and rec["output_batches"] == [rec["batch"]]
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
