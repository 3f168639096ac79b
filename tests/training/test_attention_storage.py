"""`train.py --attention-storage`: the flag, its refusal of unknown values, and a
tiny real run whose logged attention is in the compact uint8 format."""

import glob
import os

import numpy as np
import pytest

from synthetic import write_csv


def test_flag_default_and_choices(capsys):
    from attn_tf.training import cli

    assert cli.parse_args(["--dataset", "movie_reviews"]).attention_storage == "float16"
    assert cli.parse_args(["--attention-storage", "uint8"]).attention_storage == "uint8"
    with pytest.raises(SystemExit) as e:
        cli.parse_args(["--attention-storage", "int4"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--attention-storage" in err and "'int4'" in err and "float16" in err and "uint8" in err
    assert "Traceback" not in err


def _attention_events(run_dir):
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.util import tensor_util

    from tb_plugin import metadata

    found = []
    for path in glob.glob(os.path.join(run_dir, "**", "events.out.tfevents.*"), recursive=True):
        for event in event_file_loader.EventFileLoader(path).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME or value.tag.startswith(metadata.TAG_PREFIX):
                    blobs = tensor_util.make_ndarray(value.tensor)
                    found.append((value, metadata.decode_header(blobs[0]), blobs[1:]))
    return found


def test_train_logs_uint8_attention(tmp_path):
    from attn_tf import cli

    from tb_plugin import metadata

    csv = write_csv(tmp_path / "reviews.csv", n=96)
    code = cli.main(["train", "--data", str(csv), "--text-column", "review", "--label-column", "sentiment",
                     "--logdir", str(tmp_path / "runs"), "--batch-size", "32", "--max-length", "12",
                     "--verbose", "0", "--epochs", "1", "--attention-every", "1", "--probe-examples", "2",
                     "--attention-storage", "uint8", "--no-export"])
    assert code == 0
    (run,) = os.listdir(tmp_path / "runs")
    events = _attention_events(str(tmp_path / "runs" / run))
    assert events, "no attention summaries were written"
    for value, header, layers in events:
        assert header["dtype"] == "uint8" and header["version"] == 2
        for blob, layer in zip(layers, header["layers"]):
            assert bytes(blob)[:4] == b"PK\x03\x04"  # the .npz of the compact storage
            arr = metadata.decode_array(blob)
            assert list(arr.shape) == layer["shape"] and np.isfinite(arr).all()
