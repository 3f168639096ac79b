"""The run-directory module, the training callbacks, probe records, the header checks and the event writer."""

import json
import os
import time

import numpy as np
import pytest

from attn_tf import run_dir as rd
from attn_tf.errors import UsageError


# ----------------------------------------------------------------------------- run directories

def _fake_run(logdir, name, checkpoint=True, age=0.0):
    run = rd.RunDir(rd.new_run(str(logdir), "bilstm_attention", "x", run_name=name))
    run.save_config({"model": "bilstm_attention", "dataset": "movie_reviews", "epochs": 1, "learning_rate": 0.1})
    if checkpoint:
        run.save_state({"epoch": 1, "batch": 0, "step": 3})
        t = time.time() - age
        os.utime(run.file(rd.CHECKPOINTS, rd.STATE), (t, t))
    return run


def test_find_run_latest_is_the_run_directory_with_the_newest_checkpoint(tmp_path):
    _fake_run(tmp_path, "old", age=100)
    new = _fake_run(tmp_path, "new", age=1)
    _fake_run(tmp_path, "unstarted", checkpoint=False)
    found = rd.find_run(str(tmp_path), "latest")
    assert found == new.path  # not new.path + "/checkpoints" (the --resume bug)
    assert rd.RunDir(found).load_config()["model"] == "bilstm_attention"
    assert rd.find_run(str(tmp_path), new.path) == new.path


def test_find_run_errors_name_the_fix(tmp_path):
    with pytest.raises(UsageError, match="no run with a checkpoint under"):
        rd.find_run(str(tmp_path), "latest")
    with pytest.raises(UsageError, match="not a run directory"):
        rd.find_run(str(tmp_path), str(tmp_path))


def test_new_run_is_unique(tmp_path):
    a = rd.new_run(str(tmp_path), "m", "d", run_name="same")
    b = rd.new_run(str(tmp_path), "m", "d", run_name="same")
    assert a != b and os.path.isdir(a) and os.path.isdir(b)


def test_config_has_a_schema_version_and_old_runs_load(tmp_path):
    run = rd.RunDir(str(tmp_path))
    run.save_config({"model": "transformer", "epochs": 2, "learning_rate": 1e-3, "_explicit": ["epochs"]})
    saved = json.loads((tmp_path / rd.CONFIG).read_text())
    assert saved["schema_version"] == rd.SCHEMA_VERSION and "_explicit" not in saved
    # a config.json of a run written before the schema version (and before --augment existed)
    (tmp_path / rd.CONFIG).write_text(json.dumps({"model": "bilstm_attention", "dataset": "r8", "epochs": 8,
                                                  "learning_rate": 0.002, "some_new_option": 3}))
    config = run.load_config()
    assert config.model == "bilstm_attention" and config["augment"] == "none" and config["batch_size"] == 64
    assert config["some_new_option"] == 3  # unknown keys are kept


@pytest.mark.parametrize("content, message", [
    ("{not json", "not JSON"),
    ("[1, 2]", "not a train.py configuration"),
    ('{"dataset": "r8"}', "no 'model' entry"),
    ('{"model": "transformer", "epochs": "many"}', "'epochs' should be int"),
    ('{"model": "transformer", "schema_version": 99}', "newer than this attn_tf"),
])
def test_bad_config_files_give_one_clear_message(tmp_path, content, message):
    (tmp_path / rd.CONFIG).write_text(content)
    with pytest.raises(UsageError, match=message):
        rd.RunDir(str(tmp_path)).load_config()


def test_write_json_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    rd.write_json(path, {"a": 1})

    def broken_dump(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(json, "dump", broken_dump)
    with pytest.raises(OSError):
        rd.write_json(path, {"a": 2})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"a": 1}  # the old file survives a failed write
    assert os.listdir(tmp_path) == ["results.json"]  # and no temporary file is left


# ----------------------------------------------------------------------------- scalars and attention logging

def _fit_with(callbacks, steps_per_epoch, epochs, batch=4):
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((3,))
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(keras.layers.Dropout(0.2)(inp)))
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    n = steps_per_epoch * batch
    x = np.random.default_rng(0).normal(size=(n, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model.fit(x, y, batch_size=batch, epochs=epochs, validation_data=(x, y), callbacks=callbacks, verbose=0,
              shuffle=False)
    return model


def _steps(logdir):
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={"tensors": 0})
    acc.Reload()
    return {tag: [e.step for e in acc.Tensors(tag)] for tag in acc.Tags()["tensors"]}


def test_scalars_at_every_epoch_end_whatever_the_cadence(tmp_path):
    from attn_tf.training.callbacks import ScalarLogger

    _fit_with([ScalarLogger(str(tmp_path), every=5)], steps_per_epoch=7, epochs=3)
    train, val = _steps(tmp_path / "train"), _steps(tmp_path / "validation")
    for tag in ("epoch_loss", "epoch_accuracy", "epoch_learning_rate"):
        assert train[tag] == [7, 14, 21], tag  # optimizer steps, not epoch indices, and off the cadence
    for tag in ("epoch_loss", "epoch_accuracy", "evaluation_loss_vs_iterations"):
        assert val[tag] == [7, 14, 21], tag
    assert train["batch_loss"] == [5, 10, 15, 20]


def test_attention_every_0_keeps_batch_scalars_at_the_default_cadence(tmp_path):
    from attn_tf.training.callbacks import ScalarLogger
    from attn_tf.training.loop import DEFAULT_SCALAR_EVERY, scalar_every

    assert scalar_every({"attention_every": 0}) == DEFAULT_SCALAR_EVERY == 50
    assert scalar_every({"attention_every": 7}) == 7
    _fit_with([ScalarLogger(str(tmp_path), every=scalar_every({"attention_every": 0}))], steps_per_epoch=30,
              epochs=2)
    assert _steps(tmp_path / "train")["batch_loss"] == [50]  # not every step


def test_scalar_logger_never_writes_a_step_twice(tmp_path):
    from attn_tf.training.callbacks import ScalarLogger

    logger = ScalarLogger(str(tmp_path), every=2)
    model = _fit_with([logger], steps_per_epoch=4, epochs=1)
    # a second fit in the same run directory whose step counter went back (a replayed checkpoint)
    model.optimizer.iterations.assign(2)
    model.fit(np.zeros((8, 3), "float32"), np.zeros(8, "int32"), batch_size=4, epochs=1, verbose=0,
              callbacks=[ScalarLogger(str(tmp_path), every=2)])
    for tag, steps in _steps(tmp_path / "train").items():
        assert steps == sorted(set(steps)), (tag, steps)


def test_attention_logger_writes_the_probe_records_of_its_function(tmp_path):
    from tb_plugin import metadata

    from attn_tf.training.callbacks import AttentionLogger
    from attn_tf.training.probes import probe_record

    calls = []

    def records(step):
        calls.append(step)
        header, arrays = probe_record(["a", "b"], np.array([0.25, 0.75]), [0.1, 0.9], 1, ["neg", "pos"])
        return [(metadata.probe_tag(0), header, arrays)]

    _fit_with([AttentionLogger(str(tmp_path), records, every=3)], steps_per_epoch=4, epochs=2)
    assert calls == [0, 3, 6, 8]  # start, cadence, and the final step off the cadence
    assert _steps(tmp_path)[metadata.probe_tag(0)] == [0, 3, 6, 8]


def test_probe_records_and_selection():
    from tb_plugin import metadata

    from attn_tf.training.probes import probe_record, select_probes

    labels = [0, 0, 0, 1, 1, 2]
    chosen = select_probes(labels, 3, seed=1)
    assert sorted({labels[i] for i in chosen}) == [0, 1, 2] and chosen == select_probes(labels, 3, seed=1)
    header, arrays = probe_record(["x", "y", "z"], np.array([0.2, 0.3, 0.5, 0.0]), [0.3, 0.7], 0, ["a", "b"],
                                  text="x y z")
    assert header["label"] == "a" and header["prediction"] == "b" and arrays[0].shape == (1, 1, 3)
    self_att = np.full((2, 4, 5, 5), 0.2)
    header, arrays = probe_record(["x", "y"], self_att, [0.6, 0.4], None, ["a", "b"])
    assert [l["kind"] for l in header["layers"]] == ["self", "self"] and arrays[1].shape == (4, 2, 2)
    metadata.validate_header(header)


# ----------------------------------------------------------------------------- format checks

def _header():
    from tb_plugin import metadata

    return metadata.make_header({"input": ["a", "b"]}, [metadata.make_layer("l", "self", (1, 2, 2))])


@pytest.mark.parametrize("change, message", [
    (lambda h: h.update(version=99), "newer than"),
    (lambda h: h.update(dtype="float64"), "is not one of"),
    (lambda h: h.update(tokens=["a", "b"]), "must be a dict"),
    (lambda h: h["layers"][0].update(key="other"), "key tokens 'other' not in"),
    (lambda h: h["layers"][0].update(shape=[1, 2, 3]), "2 key tokens but K=3"),
    (lambda h: h["layers"][0].update(kind="pooling"), "must have Q=1"),
    (lambda h: h["layers"][0].update(query="other"), "query tokens 'other' not in"),
    (lambda h: h["tokens"].update(q=["a"]) or h["layers"][0].update(query="q"), "1 query tokens but Q=2"),
])
def test_validate_header_error_branches(change, message):
    from tb_plugin import metadata

    header = _header()
    metadata.validate_header(header)
    change(header)
    with pytest.raises(ValueError, match=message):
        metadata.validate_header(header)


def test_event_writer_refuses_a_step_that_does_not_increase(tmp_path):
    from tb_plugin import metadata, summary

    arrays = [np.full((1, 2, 2), 0.5, np.float32)]
    with summary.AttentionEventWriter(str(tmp_path)) as w:
        w.add(_header(), arrays, step=5, tag=metadata.probe_tag(0))
        w.add(_header(), arrays, step=3, tag=metadata.probe_tag(1))  # another tag has its own steps
        for step in (5, 4):
            with pytest.raises(ValueError, match="is not after the last step 5"):
                w.add(_header(), arrays, step=step, tag=metadata.probe_tag(0))
        w.add(_header(), arrays, step=6, tag=metadata.probe_tag(0))
    assert _steps(tmp_path) == {metadata.probe_tag(0): [5, 6], metadata.probe_tag(1): [3]}
