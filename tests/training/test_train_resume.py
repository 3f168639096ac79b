"""Resume continues exactly: a run stopped in epoch 2 (Ctrl-C or --max-steps) and resumed ends with the
weights of the uninterrupted run, bit for bit (CPU, same seed); steps in the event files keep increasing."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from synthetic import write_csv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# One process for the three runs (TensorFlow imported once). The interruption
# is a real SIGINT sent to the process after optimizer step 20 (epoch 2 of 3:
# 486 training rows / 32 = 16 steps per epoch), through a callback factory of
# the model's registry entry, as a user's Ctrl-C would arrive.
SCRIPT = r"""
import dataclasses, json, os, signal, sys
import keras
import train as train_script
from attn_tf.models import registry

logdir, csv, mode = sys.argv[1], sys.argv[2], sys.argv[3]
# A terminal's Python turns Ctrl-C into KeyboardInterrupt; but a process started with SIGINT ignored (a
# background job of a non-interactive shell, as CI runners start us) inherits SIG_IGN, and Python then
# installs no handler, so the signal would vanish. Restore the handler an interactive user has.
signal.signal(signal.SIGINT, signal.default_int_handler)
common = ["--data", csv, "--text-column", "review", "--label-column", "sentiment", "--logdir", logdir,
          "--batch-size", "32", "--max-length", "16", "--verbose", "0", "--no-export", "--epochs", "3",
          "--attention-every", "7", "--probe-examples", "2"]

class SigintAt(keras.callbacks.Callback):
    def __init__(self, step):
        super().__init__()
        self.at = step
    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.at:
            # raise_signal delivers SIGINT to this (the main) thread; os.kill may hand it to one of
            # TensorFlow's threads, and under load the run then finished before Python saw it.
            signal.raise_signal(signal.SIGINT)

spec = registry.get("bilstm_attention")
codes = {}
codes["whole"] = train_script.main(common + ["--run-name", "whole"])
if mode == "sigint":
    registry.register(dataclasses.replace(spec, callbacks=(lambda ctx: [SigintAt(20)],)))
    codes["first"] = train_script.main(common + ["--run-name", "parts"])
    registry.register(spec)
else:
    codes["first"] = train_script.main(common + ["--run-name", "parts", "--max-steps", "20"])
state = json.load(open(os.path.join(logdir, "parts", "checkpoints", "state.json")))
codes["resumed"] = train_script.main(["--resume", "--logdir", logdir, "--verbose", "0", "--no-export"] +
                                     (["--max-steps", "1000"] if mode != "sigint" else []))
print("RESULT " + json.dumps({"codes": codes, "state": state}))
"""


def _weights(path):
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if hasattr(obj, "shape") else None)
    return out


def _scalar_steps(logdir):
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(logdir, size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    return {tag: [e.step for e in acc.Tensors(tag)] for tag in acc.Tags()["tensors"]}


@pytest.mark.parametrize("mode", ["sigint", "max_steps"])
def test_interrupted_run_resumes_to_the_same_weights(tmp_path, mode):
    csv = write_csv(tmp_path / "reviews.csv")
    logdir = tmp_path / "runs"
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(logdir), str(csv), mode], capture_output=True,
                       text=True, cwd=ROOT, timeout=600, env=dict(os.environ, PYTHONPATH=ROOT))
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads([l for l in r.stdout.splitlines() if l.startswith("RESULT ")][-1][len("RESULT "):])
    assert out["codes"] == {"whole": 0, "first": 130 if mode == "sigint" else 0, "resumed": 0}, out
    state = out["state"]
    # stopped inside epoch 2: the checkpoint is mid-epoch and the resume continues at the next batch
    assert state["epoch"] == 1 and state["batch"] == state["step"] - 16 and 20 <= state["step"] < 32, state
    whole, parts = logdir / "whole", logdir / "parts"
    for name in ("last.weights.h5", "best.weights.h5"):
        a, b = _weights(whole / "checkpoints" / name), _weights(parts / "checkpoints" / name)
        assert sorted(a) == sorted(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg="%s %s" % (name, key))
    ra = json.loads((whole / "results.json").read_text())
    rb = json.loads((parts / "results.json").read_text())
    assert ra["steps"] == rb["steps"] == 48
    assert ra["test_accuracy"] == rb["test_accuracy"] and ra["test_loss"] == rb["test_loss"]
    # steps strictly increase in every series; epoch and validation scalars at the same steps as uninterrupted
    for sub in ("train", "validation", "attention"):
        steps_a, steps_b = _scalar_steps(str(whole / sub)), _scalar_steps(str(parts / sub))
        for tag, steps in steps_b.items():
            assert steps == sorted(set(steps)), (sub, tag, steps)
        for tag in ("epoch_loss", "epoch_accuracy"):
            if sub != "attention":
                assert steps_a[tag] == [16, 32, 48]
                if mode == "max_steps":
                    # the stop at step 20 ended a (short) epoch: its scalars are at step 20
                    assert steps_b[tag] == [16, 20, 32, 48], (sub, tag, steps_b[tag])
