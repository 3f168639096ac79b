"""train.py as a user runs it: short runs on a small generated CSV."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import train as train_script
from synthetic import write_csv
from tb_plugin import metadata

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _train(args, capsys=None):
    code = train_script.main(args)
    return code


def _common(tmp_path, csv_path, *extra):
    return ["--data", str(csv_path), "--text-column", "review", "--label-column", "sentiment",
            "--logdir", str(tmp_path / "runs"), "--batch-size", "32", "--max-length", "16",
            "--verbose", "0", "--no-export", *extra]


def _only_run(tmp_path):
    runs = os.listdir(tmp_path / "runs")
    assert len(runs) == 1, runs
    return tmp_path / "runs" / runs[0]


def _python_provider(logdir):
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    return data_provider.MultiplexerDataProvider(mux, str(logdir))


def _rust_provider(logdir):
    from tensorboard.data import server_ingester
    from tensorboard.util import grpc_util

    try:
        binary = server_ingester.get_server_binary()
    except server_ingester.NoDataServerError as e:
        pytest.skip("tensorboard-data-server not installed: %s" % e)
    ingester = server_ingester.SubprocessServerDataIngester(
        binary, str(logdir), reload_interval=0,
        channel_creds_type=grpc_util.ChannelCredsType.LOCAL,
        samples_per_plugin={"attention": 0, "scalars": 0},
    )
    ingester.start()
    return ingester.data_provider


def _read_attention(provider, run="attention"):
    from tensorboard import context

    ctx = context.RequestContext()
    deadline = time.time() + 60
    listing = {}
    while time.time() < deadline:
        listing = provider.list_blob_sequences(ctx, experiment_id="", plugin_name=metadata.PLUGIN_NAME)
        if any(r.endswith(run) for r in listing):
            break
        time.sleep(0.5)
    run_name = [r for r in listing if r.endswith(run)]
    assert run_name, "no attention run in %s" % listing
    run_name = run_name[0]
    seqs = provider.read_blob_sequences(ctx, experiment_id="", plugin_name=metadata.PLUGIN_NAME,
                                        downsample=10**6)
    return {tag: [(d.step, [provider.read_blob(ctx, blob_key=b.blob_key) for b in d.values]) for d in data]
            for tag, data in seqs[run_name].items()}


def _scalar_steps(provider, run):
    from tensorboard import context

    ctx = context.RequestContext()
    data = provider.read_scalars(ctx, experiment_id="", plugin_name="scalars", downsample=10**6)
    return {tag: [p.step for p in pts] for tag, pts in data.get(run, {}).items()}


@pytest.fixture(scope="module")
def bilstm_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bilstm")
    path = write_csv(tmp / "reviews.csv")
    code = _train(_common(tmp, path, "--epochs", "3", "--attention-every", "10", "--probe-examples", "3"))
    assert code == 0
    return tmp, path, _only_run(tmp)


def test_short_run_learns_and_writes_run_dir(bilstm_run):
    _, _, run = bilstm_run
    results = json.loads((run / "results.json").read_text())
    assert results["test_accuracy"] >= 0.9, results  # the sentiment word decides the label
    for name in ("config.json", "vectorizer.json", "model.keras", "checkpoints/last.weights.h5",
                 "checkpoints/best.weights.h5", "checkpoints/state.json"):
        assert (run / name).exists(), name


@pytest.mark.parametrize("reader", ["python", "rust"])
def test_attention_summaries_read_back(bilstm_run, reader):
    _, _, run = bilstm_run
    provider = _python_provider(run) if reader == "python" else _rust_provider(run)
    series = _read_attention(provider)
    assert sorted(series) == [metadata.probe_tag(i) for i in range(3)]
    steps_per_epoch = int(np.ceil(480 / 32))  # 600 rows: 10% test, 10% of the rest validation
    for tag, samples in series.items():
        steps = [s for s, _ in samples]
        assert steps == sorted(set(steps)), steps  # strictly increasing
        assert steps[0] == 0 and steps[1] == 10
        assert steps[-1] == json.loads((run / "results.json").read_text())["steps"]
        for _, blobs in samples:
            header = metadata.decode_header(blobs[0])
            tokens = header["tokens"]["input"]
            assert 1 <= len(tokens) <= 16
            assert [l["kind"] for l in header["layers"]] == ["pooling"]
            arr = metadata.decode_array(blobs[1])
            assert arr.dtype == np.float16 and arr.shape == (1, 1, len(tokens))
            assert abs(float(arr.astype(np.float32).sum()) - 1.0) < 1e-2
            assert header["prediction"] in header["class_names"]
            assert header["label"] in ("neg", "pos")


@pytest.mark.parametrize("reader", ["python", "rust"])
def test_epoch_and_validation_scalars_at_every_epoch_end(bilstm_run, reader):
    """Train and validation loss/accuracy (and the learning rate) at each epoch end, at optimizer steps,
    although the epochs end at steps 16, 32, 48, off the --attention-every 10 cadence."""
    import time as _time

    _, _, run = bilstm_run
    provider = _python_provider(run) if reader == "python" else _rust_provider(run)
    deadline = _time.time() + 60
    while True:
        train_steps, val_steps = _scalar_steps(provider, "train"), _scalar_steps(provider, "validation")
        if ("epoch_loss" in val_steps and len(val_steps["epoch_loss"]) == 3) or _time.time() > deadline:
            break
        _time.sleep(0.5)
    for tag in ("epoch_loss", "epoch_accuracy", "epoch_learning_rate"):
        assert train_steps[tag] == [16, 32, 48], (tag, train_steps)
    for tag in ("epoch_loss", "epoch_accuracy"):
        assert val_steps[tag] == [16, 32, 48], (tag, val_steps)
    assert train_steps["batch_loss"] == [10, 20, 30, 40]


def test_keras_file_reloads_with_identical_outputs(bilstm_run):
    import keras

    from attn_tf.data import TextVectorizer

    _, _, run = bilstm_run
    model = keras.saving.load_model(run / "model.keras")
    vec = TextVectorizer.load(str(run / "vectorizer.json"))
    ids, _ = vec(np.array(["The movie was great fun.", "Awful and boring."]))
    out = model(ids)
    again = keras.saving.load_model(run / "model.keras")(ids)
    np.testing.assert_array_equal(np.asarray(out["probabilities"]), np.asarray(again["probabilities"]))
    # class names are sorted: neg = 0, pos = 1
    assert np.asarray(out["probabilities"]).argmax(-1).tolist() == [1, 0]


def test_resume_continues_steps_without_repeats(tmp_path, synthetic_csv):
    args = _common(tmp_path, synthetic_csv, "--attention-every", "7", "--probe-examples", "2", "--max-steps", "20")
    assert _train(args + ["--epochs", "2"]) == 0
    run = _only_run(tmp_path)
    first = json.loads((run / "results.json").read_text())["steps"]
    assert first == 20
    # 486 training rows / 32 = 16 steps per epoch: epochs 2 + 3 more would reach 52, so
    # --max-steps 45 ends it.
    assert _train(["--resume", str(run), "--epochs", "5", "--max-steps", "45", "--verbose", "0",
                   "--logdir", str(tmp_path / "runs")]) == 0
    assert json.loads((run / "results.json").read_text())["steps"] == 45
    for provider in (_python_provider(run), _rust_provider(run)):
        for tag, samples in _read_attention(provider).items():
            steps = [s for s, _ in samples]
            assert steps == sorted(set(steps)), (tag, steps)
            assert steps[-1] == 45
        scalars = _scalar_steps(_python_provider(run), "train")
        for tag, steps in scalars.items():
            assert steps == sorted(set(steps)), (tag, steps)


def test_transformer_logs_per_layer_self_attention(tmp_path, synthetic_csv):
    args = _common(tmp_path, synthetic_csv, "--model", "transformer", "--max-steps", "12",
                   "--attention-every", "6", "--probe-examples", "2", "--epochs", "1")
    assert _train(args) == 0
    run = _only_run(tmp_path)
    series = _read_attention(_python_provider(run))
    assert len(series) == 2
    step, blobs = series[metadata.probe_tag(0)][-1]
    header = metadata.decode_header(blobs[0])
    assert [l["kind"] for l in header["layers"]] == ["self", "self"]
    n = len(header["tokens"]["input"])
    for blob in blobs[1:]:
        arr = metadata.decode_array(blob).astype(np.float32)
        assert arr.shape == (4, n, n)
        np.testing.assert_allclose(arr.sum(-1), 1.0, atol=1e-2)


def _run_cli(*args, env=None):
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=300)


def test_bad_inputs_exit_non_zero_with_clear_message(tmp_path):
    r = _run_cli("--model", "nope")
    assert r.returncode == 2 and "invalid choice" in r.stderr and "bilstm_attention" in r.stderr
    r = _run_cli("--data", str(tmp_path / "missing.csv"), "--logdir", str(tmp_path / "runs"))
    assert r.returncode == 2 and "missing.csv" in r.stderr and "Traceback" not in r.stderr
    r = _run_cli("--dataset", "imdb_nope", "--logdir", str(tmp_path / "runs"))
    assert r.returncode == 2 and "imdb_nope" in r.stderr and "movie_reviews" in r.stderr
    r = _run_cli("--attention-every", "-3")
    assert r.returncode == 2 and "--attention-every" in r.stderr
    r = _run_cli("--resume", str(tmp_path), "--logdir", str(tmp_path / "runs"))
    assert r.returncode == 2 and "not a run directory" in r.stderr


def test_missing_column_names_the_columns(tmp_path, synthetic_csv, capsys):
    code = _train(["--data", str(synthetic_csv), "--logdir", str(tmp_path / "runs"), "--verbose", "0"])
    assert code == 2
    err = capsys.readouterr().err
    assert "text" in err and "review" in err and "--text-column" in err


MIRRORED = r"""
import sys, json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from attn_tf.training.cli import parse_args
from attn_tf.training.trainer import train
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
config = vars(parse_args(sys.argv[1:]))
config["_explicit"] = []
config["strategy"] = "mirrored"
res = train(config, strategy=strategy)
print("RESULT", json.dumps({"replicas": strategy.num_replicas_in_sync, **res}))
"""


def test_mirrored_strategy_on_two_logical_cpus(tmp_path, synthetic_csv):
    r = subprocess.run([sys.executable, "-c", MIRRORED, *_common(tmp_path, synthetic_csv, "--epochs", "2",
                        "--attention-every", "10", "--probe-examples", "2")],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    line = [l for l in r.stdout.splitlines() if l.startswith("RESULT ")][-1]
    res = json.loads(line[len("RESULT "):])
    assert res["replicas"] == 2
    assert res["test_accuracy"] >= 0.8
    assert "2 replicas" in r.stdout
