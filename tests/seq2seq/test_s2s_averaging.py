"""Checkpoint averaging (--average-epochs K): epoch-end weights, their mean, the choice on validation."""

import glob
import json
import os

import numpy as np
import pytest

import train as train_script
from attn_tf import run_dir as rd
from attn_tf.training import averaging
from s2s_synthetic import write_tsv


def _dense_model(seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dropout(0.1),
                              keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def _floats(model):
    return [v for v in model.weights if "float" in str(v.dtype)]


def _snapshots():
    """A callback recording the float weights at every epoch end."""
    import keras

    class Snapshots(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs = []

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append([np.array(v.numpy()) for v in _floats(self.model)])

    return Snapshots()


def test_epoch_weights_keep_the_last_k_and_their_mean_is_assigned(tmp_path):
    model = _dense_model()
    run = rd.RunDir(str(tmp_path))
    x, y = np.random.default_rng(0).normal(size=(40, 3)), np.random.default_rng(1).normal(size=(40, 2))
    snaps = _snapshots()
    model.fit(x, y, batch_size=10, epochs=4, verbose=0, shuffle=False,
              callbacks=[averaging.EpochWeights(run, steps_per_epoch=4, keep=2), snaps])
    files = run.epoch_weight_files()
    assert [e for e, _ in files] == [3, 4]  # the older ones were removed
    for (epoch, path), expected in zip(files, snaps.epochs[2:]):
        with np.load(path) as f:
            for i, want in enumerate(expected):
                np.testing.assert_array_equal(f["arr_%d" % i], want)

    averaging.average_weights(model, [p for _, p in files])
    for v, a, b in zip(_floats(model), snaps.epochs[2], snaps.epochs[3]):
        np.testing.assert_allclose(v.numpy(), (a.astype(np.float64) + b) / 2, rtol=1e-6, atol=1e-7)


def test_a_partial_epoch_is_not_saved_and_another_models_file_is_refused(tmp_path):
    import keras

    model = _dense_model()
    run = rd.RunDir(str(tmp_path))
    x, y = np.zeros((20, 3)), np.zeros((20, 2))
    # steps_per_epoch 5 but only 2 batches run: not a complete epoch.
    model.fit(x, y, batch_size=10, epochs=1, verbose=0, callbacks=[averaging.EpochWeights(run, 5, keep=3)])
    assert run.epoch_weight_files() == []

    model.fit(x, y, batch_size=10, epochs=1, verbose=0, callbacks=[averaging.EpochWeights(run, 1, keep=3)])
    ((_, path),) = run.epoch_weight_files()
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="does not hold this model's weights"):
        averaging.average_weights(other, [path])


@pytest.mark.slow
def test_train_keeps_the_average_only_when_it_scores_better_on_validation(tmp_path):
    import keras

    from attn_tf.training.seq2seq_trainer import load_run

    data = write_tsv(tmp_path / "copy.tsv", "copy", n=300)
    code = train_script.main(["--data", str(data), "--logdir", str(tmp_path / "runs"), "--batch-size", "32",
                              "--verbose", "0", "--probe-examples", "1", "--attention-every", "0",
                              "--model", "seq2seq_gru", "--epochs", "3", "--average-epochs", "2", "--no-export"])
    assert code == 0
    (run,) = glob.glob(str(tmp_path / "runs" / "*"))
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["average_epochs"] == 2
    results = json.load(open(os.path.join(run, "results.json")))
    weights = results["weights"]
    assert weights["averaged_epochs"] == [2, 3] and weights["monitor"] == "val_bleu"
    assert weights["kept"] == ("average" if weights["validation_average"] > weights["validation_best_epoch"]
                               else "best_epoch")

    files = rd.RunDir(run).epoch_weight_files()
    assert [e for e, _ in files] == [2, 3]
    _, model, _, _ = load_run(run)
    arrays = []
    for _, path in files:
        with np.load(path) as f:
            arrays.append([f["arr_%d" % i] for i in range(len(f.files))])
    mean = [np.mean([a[i] for a in arrays], axis=0) for i in range(len(arrays[0]))]
    saved = [keras.ops.convert_to_numpy(v) for v in _floats(model)]
    is_mean = all(np.allclose(s, m, rtol=1e-5, atol=1e-6) for s, m in zip(saved, mean))
    assert is_mean == (weights["kept"] == "average")


def test_average_epochs_defaults_to_off_and_rejects_negative_values(capsys):
    from attn_tf.training.cli import parse_args

    assert parse_args(["--model", "seq2seq_gru", "--data", "x.tsv"]).average_epochs == 0
    with pytest.raises(SystemExit) as e:
        parse_args(["--model", "seq2seq_gru", "--average-epochs", "-1"])
    assert e.value.code == 2
    assert "--average-epochs" in capsys.readouterr().err
