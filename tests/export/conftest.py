"""Tiny trained runs, exported once per session (the export tests share them).

* bilstm: train.py on the generated CSV for a few steps; train.py itself exports
  it at the end (the trainer -> export_run hook), version 1.
* transformer: built directly with tiny sizes and 3 classes, a few fit steps, written
  as a run directory (class names in class_names.json), exported with export_run.
"""

import json
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.join(ROOT, "tests", "training"))

from export_support import MAX_LENGTH, Exported  # noqa: E402
from synthetic import write_csv  # noqa: E402


@pytest.fixture(scope="session")
def export_base(tmp_path_factory):
    return str(tmp_path_factory.mktemp("saved_models"))


@pytest.fixture(scope="session")
def bilstm_export(tmp_path_factory, export_base):
    import train as train_script

    tmp = tmp_path_factory.mktemp("bilstm_run")
    csv_path = write_csv(tmp / "reviews.csv", n=300)
    code = train_script.main([
        "--data", str(csv_path), "--text-column", "review", "--label-column", "sentiment",
        "--logdir", str(tmp / "runs"), "--batch-size", "32", "--max-length", str(MAX_LENGTH),
        "--max-steps", "4", "--epochs", "1", "--probe-examples", "1", "--attention-every", "0",
        "--verbose", "0", "--export-dir", export_base,
    ])
    assert code == 0
    (run,) = os.listdir(tmp / "runs")
    run = str(tmp / "runs" / run)
    name = "bilstm_attention-reviews"
    assert os.path.isdir(os.path.join(export_base, name, "1")), os.listdir(export_base)
    return Exported("bilstm_attention", run, export_base, name, 1, ["neg", "pos"])


@pytest.fixture(scope="session")
def transformer_export(tmp_path_factory, export_base):
    import keras

    from attn_tf.data import TextVectorizer
    from attn_tf.export import export_run
    from attn_tf.models import build_classifier
    from synthetic import synthetic_rows

    run = tmp_path_factory.mktemp("transformer_run")
    rows = synthetic_rows(120, seed=1)
    texts = [t for t, _ in rows]
    vec = TextVectorizer.adapt(texts, max_length=MAX_LENGTH, min_count=1)
    vec.save(run / "vectorizer.json")
    class_names = ["neg", "pos", "other"]
    keras.utils.set_random_seed(0)
    model = build_classifier("transformer", vocab_size=vec.vocabulary_size, num_classes=3,
                             max_length=MAX_LENGTH, hidden_dim=16, num_layers=2, num_heads=2,
                             intermediate_dim=32)
    train_model = keras.Model(model.input, model.output["probabilities"])
    train_model.compile("adam", "sparse_categorical_crossentropy")
    ids, _ = vec(np.array(texts, dtype=object))
    labels = np.array([0 if l == "neg" else 1 for _, l in rows], np.int32)
    labels[::7] = 2
    train_model.fit(ids.numpy(), labels, batch_size=32, epochs=1, verbose=0)
    model.save(run / "model.keras")
    with open(run / "class_names.json", "w") as f:
        json.dump(class_names, f)
    with open(run / "config.json", "w") as f:
        json.dump({"model": "transformer", "dataset": "tiny", "data": None, "max_length": MAX_LENGTH}, f)
    summary = export_run(str(run), base_dir=export_base, log=lambda *a: None)
    assert summary["name"] == "transformer-tiny" and summary["version"] == 1
    return Exported("transformer", str(run), export_base, summary["name"], 1, class_names)


@pytest.fixture(scope="session", params=["bilstm_attention", "transformer"])
def exported(request):
    return request.getfixturevalue("bilstm_export" if request.param == "bilstm_attention"
                                   else "transformer_export")
