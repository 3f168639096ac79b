"""--strategy multi_worker for real: two worker processes on 127.0.0.1 with TF_CONFIG.

Only the chief writes logs, checkpoints, results and the export; both workers end with the same
weights; a worker killed mid-epoch and both restarted with --resume continue from the last checkpoint
without writing a step twice.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from synthetic import write_csv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A worker: train.py's command, plus a callback (through the model's registry entry) that saves the
# worker's final weights for the test, and optionally kills this worker at a given optimizer step.
WORKER = r"""
import dataclasses, os, signal, sys
import numpy as np
import keras
from attn_tf.models import registry

out, kill_at, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]

class Probe(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if kill_at and int(self.model.optimizer.iterations.numpy()) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # dies mid-epoch, as a crashed machine would
    def on_train_end(self, logs=None):
        np.savez(out, *[v.numpy() for v in self.model.trainable_variables])

spec = registry.get("bilstm_attention")
registry.register(dataclasses.replace(spec, callbacks=spec.callbacks + (lambda ctx: [Probe()],)))
import train
sys.exit(train.main(args))
"""


def _ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _worker_env(index, ports):
    """The environment of worker `index` in a cluster of workers on 127.0.0.1 at `ports`."""
    config = {"cluster": {"worker": ["127.0.0.1:%d" % p for p in ports]}, "task": {"type": "worker", "index": index}}
    return dict(os.environ, TF_CONFIG=json.dumps(config), PYTHONPATH=ROOT, CUDA_VISIBLE_DEVICES="")


def _start(tmp_path, index, ports, args, kill_at=0, tag=""):
    env = _worker_env(index, ports)
    log = open(tmp_path / ("worker%d%s.log" % (index, tag)), "w")
    out = str(tmp_path / ("weights%d%s.npz" % (index, tag)))
    return subprocess.Popen([sys.executable, "-c", WORKER, out, str(kill_at), *args], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT), out


def _wait(procs, timeout=400):
    deadline = time.time() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    return [p.returncode for p in procs]


def _args(tmp_path, index, *extra):
    csv = tmp_path / "reviews.csv"
    if not csv.exists():
        write_csv(csv)
    return ["--data", str(csv), "--text-column", "review", "--label-column", "sentiment",
            "--logdir", str(tmp_path / ("runs%d" % index)), "--export-dir", str(tmp_path / ("saved%d" % index)),
            "--batch-size", "32", "--max-length", "16", "--verbose", "0", "--attention-every", "5",
            "--probe-examples", "2", "--strategy", "multi_worker", "--run-name", "mw", *extra]


def _event_steps(logdir):
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={"tensors": 0})
    acc.Reload()
    return {tag: [e.step for e in acc.Tensors(tag)] for tag in acc.Tags()["tensors"]}


def _logs(tmp_path):
    return "\n".join("%s:\n%s" % (f, (tmp_path / f).read_text()[-2000:]) for f in sorted(os.listdir(tmp_path))
                     if f.endswith(".log"))


@pytest.mark.slow
def test_two_workers_train_together_and_only_the_chief_writes(tmp_path):
    ports = _ports(2)
    procs = [_start(tmp_path, i, ports, _args(tmp_path, i, "--epochs", "2")) for i in range(2)]
    assert _wait([p for p, _ in procs]) == [0, 0], _logs(tmp_path)
    run = tmp_path / "runs0" / "mw"
    for name in ("config.json", "vectorizer.json", "model.keras", "results.json", "checkpoints/state.json",
                 "checkpoints/last.weights.h5", "train", "validation", "attention"):
        assert (run / name).exists(), name
    results = json.loads((run / "results.json").read_text())
    assert results["steps"] == 32 and os.path.isdir(results["export"]["path"])
    assert not (tmp_path / "runs1").exists() and not (tmp_path / "saved1").exists()  # worker 1 wrote nothing
    w0, w1 = np.load(procs[0][1]), np.load(procs[1][1])
    assert len(w0.files) == len(w1.files) > 0
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key])


@pytest.mark.slow
def test_a_killed_worker_and_a_restart_resume_from_the_last_checkpoint(tmp_path):
    ports = _ports(2)
    chief, _ = _start(tmp_path, 0, ports, _args(tmp_path, 0, "--epochs", "3", "--checkpoint-every", "8",
                                                "--no-export"))
    worker, _ = _start(tmp_path, 1, ports, _args(tmp_path, 1, "--epochs", "3", "--checkpoint-every", "8",
                                                 "--no-export"), kill_at=20)
    assert _wait([worker]) == [-signal.SIGKILL], _logs(tmp_path)
    # the chief cannot go on without its peer: it fails or blocks in the next collective; stop it
    try:
        chief.wait(timeout=30)
    except subprocess.TimeoutExpired:
        chief.kill()
        chief.wait()
    run = tmp_path / "runs0" / "mw"
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    assert state["step"] == 16 and (state["epoch"], state["batch"]) == (1, 0), state
    before = _event_steps(run / "attention")
    # restart both; every worker resumes from the chief's run directory (a shared file system)
    ports = _ports(2)
    resume = ["--resume", str(run), "--logdir", str(tmp_path / "runs0"), "--verbose", "0", "--strategy",
              "multi_worker"]
    procs = [_start(tmp_path, i, ports, resume, tag="_resumed") for i in range(2)]
    assert _wait([p for p, _ in procs]) == [0, 0], _logs(tmp_path)
    results = json.loads((run / "results.json").read_text())
    assert results["steps"] == 48
    for sub in ("train", "validation", "attention"):
        for tag, steps in _event_steps(run / sub).items():
            assert steps == sorted(set(steps)), (sub, tag, steps)  # no step written twice
    after = _event_steps(run / "attention")
    for tag, steps in after.items():
        assert steps[:len(before[tag])] == before[tag] and steps[-1] == 48
    w0, w1 = np.load(procs[0][1]), np.load(procs[1][1])
    for key in w0.files:
        np.testing.assert_array_equal(w0[key], w1[key])


def test_the_coordination_service_waits_longer_than_tensorflow_for_a_heartbeat(tmp_path):
    # TensorFlow's 10 s heartbeat timeout aborted healthy two-worker runs on a loaded 2-core machine
    code = ("from attn_tf.training import devices\n"
            "from tensorflow.python.eager import context\n"
            "s = devices.make_strategy('multi_worker')\n"
            "c = context.context().config.experimental.coordination_config\n"
            "print(c.service_type, c.heartbeat_timeout_in_ms, s.num_replicas_in_sync)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_worker_env(0, _ports(1)), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    from attn_tf.training.devices import HEARTBEAT_TIMEOUT_S
    assert out.stdout.split()[-3:] == ["standalone", str(HEARTBEAT_TIMEOUT_S * 1000), "1"], out.stdout
