"""Serving files and tools around the export: saved_model_cli, models.config, batching file,
versions, warmup encoding, and the command line."""

import json
import os
import subprocess
import sys

import pytest

from export_support import session_bundle_config_class

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# saved_model_cli with the TF Text ops registered first (plain saved_model_cli cannot load the model);
# `run` uses the TF1 session loader and runs the table initializers, as the model server does. One
# interpreter runs several commands (TF start-up is the slow part); each prints between markers.
SMCLI = """
import json, sys, tensorflow_text
from tensorflow.python.tools import saved_model_cli
for i, args in enumerate(json.loads(sys.argv[1])):
    print("=== begin %d" % i, flush=True)
    sys.argv = ["saved_model_cli"] + args
    try:
        saved_model_cli.main()
    except SystemExit as e:
        if e.code not in (None, 0):
            raise
    print("=== end %d" % i, flush=True)
"""


@pytest.fixture(scope="module")
def smcli(bilstm_export, transformer_export):
    """Outputs of `saved_model_cli show --all` (bilstm) and `run --input_exprs` (both models)."""
    run = ["run", "--tag_set", "serve", "--signature_def", "serving_default",
           "--input_exprs", 'text=["the movie was great fun", "", b"bad \\xff movie"]']
    commands = {
        "show": ["show", "--dir", bilstm_export.path, "--all"],
        "run bilstm_attention": run + ["--dir", bilstm_export.path],
        "run transformer": run + ["--dir", transformer_export.path],
        "run predict": ["run", "--tag_set", "serve", "--signature_def", "predict", "--dir", bilstm_export.path,
                        "--input_exprs", 'text=["the movie was great fun", ""]'],
        "run attention": ["run", "--tag_set", "serve", "--signature_def", "attention",
                          "--dir", transformer_export.path, "--input_exprs",
                          'text=["the movie was great fun", ""];layers=[1];heads=[]'],
    }
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", SMCLI, json.dumps(list(commands.values()))],
                          capture_output=True, text=True, timeout=240, env=env, cwd="/")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    outputs = {}
    for i, name in enumerate(commands):
        head, sep, rest = proc.stdout.partition("=== begin %d\n" % i)
        body, sep2, _ = rest.partition("=== end %d\n" % i)
        assert sep and sep2, proc.stdout[-3000:]
        outputs[name] = body
    return outputs


def test_saved_model_cli_show_all(smcli):
    out = smcli["show"]
    for sig in ("serving_default", "predict", "attention"):
        assert "signature_def['%s']" % sig in out, sig
    for name in ("text", "probabilities", "label", "tokens", "token_count", "explanation", "attention",
                 "layers", "heads"):
        assert "['%s']" % name in out, name
    assert "DT_STRING" in out and "Method name is: tensorflow/serving/predict" in out


@pytest.mark.parametrize("kind", ["bilstm_attention", "transformer"])
def test_saved_model_cli_run(smcli, kind):
    out = smcli["run " + kind]
    for name in ("probabilities", "label", "tokens", "token_count", "explanation"):
        assert "Result for output key %s:" % name in out, out
    assert "Result for output key attention:" not in out  # the full tensors moved to `attention`
    assert "[5 0 3]" in out  # token counts: the empty text has none


def test_saved_model_cli_runs_predict_and_attention(smcli):
    """The TF1 session loader (as the C++ model server loads) runs the other two signatures."""
    out = smcli["run predict"]
    assert "Result for output key probabilities:" in out and "[5 0]" in out
    assert "explanation" not in out and "tokens" not in out
    out = smcli["run attention"]
    assert "Result for output key attention:" in out


def test_models_config_and_batching_parse_as_serving_protos(bilstm_export, transformer_export):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    base = bilstm_export.base_dir
    with open(os.path.join(base, "models.config")) as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    entries = {c.name: c for c in config.model_config_list.config}
    assert set(entries) == {bilstm_export.name, transformer_export.name}
    for name, c in entries.items():
        assert c.base_path == "/models/" + name and c.model_platform == "tensorflow"
    bundle = session_bundle_config_class()()
    with open(os.path.join(base, "batching_parameters.txt")) as f:
        text_format.Parse(f.read(), bundle.batching_parameters)
    assert bundle.batching_parameters.max_batch_size.value == 64
    assert bundle.batching_parameters.batch_timeout_micros.value > 0
    assert bundle.batching_parameters.num_batch_threads.value >= 1


def test_version_increments_and_batching_file_is_kept(bilstm_export):
    from attn_tf.export import export_run
    from attn_tf.export.layout import versions

    base = bilstm_export.base_dir
    batching = os.path.join(base, "batching_parameters.txt")
    with open(batching, "a") as f:
        f.write("# edited by the user\n")
    summary = export_run(bilstm_export.run_dir, base_dir=base, log=lambda *a: None)
    assert summary["name"] == bilstm_export.name and summary["version"] == 2
    assert versions(os.path.join(base, bilstm_export.name)) == [1, 2]
    assert sorted(os.listdir(os.path.join(base, bilstm_export.name))) == ["1", "2"]  # no temporary left
    with open(os.path.join(base, "models.config")) as f:
        assert f.read().count('name: "%s"' % bilstm_export.name) == 1
    with open(batching) as f:
        assert f.read().endswith("# edited by the user\n")


def test_write_version_is_atomic_and_skips_taken_versions(tmp_path, monkeypatch):
    from attn_tf.export import layout

    model_dir = tmp_path / "m"
    (model_dir / "3").mkdir(parents=True)
    (model_dir / "notes").mkdir()

    def fail(tmp):
        open(os.path.join(tmp, "saved_model.pb"), "w").close()
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        layout.write_version(str(model_dir), fail)
    assert sorted(os.listdir(model_dir)) == ["3", "notes"]

    (model_dir / "4").mkdir()
    (model_dir / "4" / "saved_model.pb").write_text("")
    stale = iter([4])  # another export took 4 between the scan and the rename
    real_next = layout.next_version
    monkeypatch.setattr(layout, "next_version", lambda d: next(stale, None) or real_next(d))
    version, path = layout.write_version(
        str(model_dir), lambda tmp: open(os.path.join(tmp, "saved_model.pb"), "w").close())
    assert version == 5 and os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert sorted(os.listdir(model_dir)) == ["3", "4", "5", "notes"]
    assert layout.exported_models(str(tmp_path)) == ["m"]


def test_warmup_encoding_without_serving_api_matches():
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    from attn_tf.export import warmup

    inputs = {"text": np.array(["good", "", b"\xff"], dtype=object)}
    with_api = warmup.prediction_log_bytes("m-name", "serving_default", inputs)
    tensors = {k: tf.make_tensor_proto(v) for k, v in inputs.items()}
    manual = warmup._encode_prediction_log("m-name", "serving_default", tensors)
    a = prediction_log_pb2.PredictionLog.FromString(with_api)
    b = prediction_log_pb2.PredictionLog.FromString(manual)
    assert a == b and b.predict_log.request.model_spec.name == "m-name"
    assert list(tf.make_ndarray(b.predict_log.request.inputs["text"])) == [b"good", b"", b"\xff"]


def _cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "attn_tf.export", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)


def test_cli_missing_run_dir_exits_2(tmp_path):
    proc = _cli(str(tmp_path / "nope"), "--base-dir", str(tmp_path / "sm"))
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "nope is not a directory" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "sm").exists()


@pytest.mark.parametrize("case", ["no_config", "no_model", "unknown_model", "seq2seq_pending"])
def test_cli_incomplete_run_dir_exits_2(tmp_path, capsys, case):
    from attn_tf.export.__main__ import main

    run = tmp_path / "run"
    run.mkdir()
    model = {"unknown_model": "resnet", "seq2seq_pending": "seq2seq_gru"}.get(case, "bilstm_attention")
    if case != "no_config":
        (run / "config.json").write_text(json.dumps({"model": model, "dataset": "x"}))
        (run / "vectorizer.json").write_text("{}")
    code = main([str(run), "--base-dir", str(tmp_path / "sm")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ")
    expected = {
        "no_config": "no config.json",
        "no_model": "missing model.keras",
        "unknown_model": "no exporter for model 'resnet'",
        "seq2seq_pending": "not implemented yet",
    }[case]
    if case == "seq2seq_pending" and os.path.exists(os.path.join(ROOT, "attn_tf", "export", "seq2seq.py")):
        expected = "missing"  # the seq2seq exporter exists: its required files are missing
    assert expected in err, err
    assert not (tmp_path / "sm").exists()


def test_cli_xla_applies_to_seq2seq_runs_only(tmp_path, capsys):
    from attn_tf.export.__main__ import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "bilstm_attention", "dataset": "x"}))
    (run / "vectorizer.json").write_text("{}")
    (run / "model.keras").write_text("")
    code = main([str(run), "--xla", "--base-dir", str(tmp_path / "sm")])
    err = capsys.readouterr().err
    assert code == 2 and "--xla applies to seq2seq runs only" in err
    assert not (tmp_path / "sm").exists()
