"""train.py's faithful-attention flags and the faithfulness training curve, on a small generated CSV."""

import json
import os

import pytest

import train as train_script
from synthetic import write_csv


def _common(tmp_path, csv_path, *extra):
    return ["--data", str(csv_path), "--text-column", "review", "--label-column", "sentiment",
            "--logdir", str(tmp_path / "runs"), "--batch-size", "32", "--max-length", "16",
            "--verbose", "0", "--no-export", *extra]


def _scalars(logdir):
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
    data = provider.read_scalars(context.RequestContext(), experiment_id="", plugin_name="scalars",
                                 downsample=10**6)
    return {run: {tag: [(p.step, p.value) for p in pts] for tag, pts in tags.items()} for run, tags in data.items()}


def test_options_reach_the_model_and_the_curve_is_logged(tmp_path):
    path = write_csv(tmp_path / "reviews.csv")
    code = train_script.main(_common(tmp_path, path, "--epochs", "2", "--lstm", "orthogonal",
                                     "--attention-normalizer", "sparsemax", "--tying-weight", "0.5",
                                     "--faithfulness-samples", "20", "--probe-examples", "2"))
    assert code == 0
    (run,) = os.listdir(tmp_path / "runs")
    run = tmp_path / "runs" / run
    config = json.load(open(run / "config.json"))
    assert config["lstm"] == "orthogonal" and config["attention_normalizer"] == "sparsemax"
    assert config["tying_weight"] == 0.5
    import keras

    import attn_tf.layers  # noqa: F401

    model = keras.saving.load_model(str(run / "model.keras"))
    assert model.get_layer("attention_pooling").normalizer == "sparsemax"
    assert "word_tying" in {layer.name for layer in model.layers}
    scalars = _scalars(run)
    curve = [r for r in scalars if r.endswith("faithfulness")]
    assert curve, sorted(scalars)
    tags = scalars[curve[0]]
    for name in ("tau_attention_gradient", "tau_attention_loo", "aopc_comprehensiveness_attention",
                 "aopc_comprehensiveness_random", "aopc_sufficiency_attention", "aopc_sufficiency_random",
                 "entropy_ratio", "seconds"):
        assert len(tags["faithfulness/" + name]) == 2, name  # one point per epoch
    steps = [s for s, _ in tags["faithfulness/entropy_ratio"]]
    assert steps == sorted(steps) and steps[0] > 0


@pytest.mark.parametrize("flags,message", [
    (["--model", "transformer", "--lstm", "orthogonal"], "--lstm applies to bilstm_attention"),
    (["--lstm", "gru"], "invalid choice"),
    (["--conicity-weight", "-1"], "expected a number >= 0"),
])
def test_bad_option_values_exit_2(tmp_path, flags, message, capsys):
    path = write_csv(tmp_path / "reviews.csv")
    with pytest.raises(SystemExit) as e:
        train_script.main(_common(tmp_path, path, *flags))
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "runs")
