"""Run directories: naming, the saved configuration, finding the newest run.

Layout of runs/<model>-<dataset>-<timestamp>/:
  config.json            the flags of the run (used by --resume and export)
  vectorizer.json        the tokenizer and vocabulary
  train/, validation/    scalars (Keras TensorBoard callback)
  attention/             attention summaries of the probe examples
  checkpoints/           last.weights.h5 (+ optimizer state), best.weights.h5, state.json
  model.keras            the trained model (best validation accuracy)
  results.json           test metrics
"""

import datetime
import glob
import json
import os
import re

from attn_tf.errors import UsageError

CONFIG = "config.json"


def new_run_dir(logdir, model, dataset, run_name=None):
    if run_name is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset)
        run_name = "%s-%s-%s" % (model, safe, stamp)
    path = os.path.join(logdir, run_name)
    base, n = path, 1
    while os.path.exists(path):
        n += 1
        path = "%s_%d" % (base, n)
    os.makedirs(path)
    return path


def find_run(logdir, resume):
    """Resolves --resume: "latest" (newest run in logdir with a checkpoint) or a path."""
    if resume != "latest":
        if not os.path.isfile(os.path.join(resume, CONFIG)):
            raise UsageError(
                "--resume %s: not a run directory (no %s there); pass a directory made by train.py"
                % (resume, CONFIG)
            )
        return resume
    candidates = [
        os.path.dirname(p) for p in glob.glob(os.path.join(logdir, "*", "checkpoints", "state.json"))
    ]
    if not candidates:
        raise UsageError(
            "--resume: no run with a checkpoint under %s; start a run first or pass --resume RUN_DIR"
            % logdir
        )
    return max(candidates, key=lambda d: os.path.getmtime(os.path.join(d, "checkpoints", "state.json")))


def save_config(run_dir, config):
    tmp = os.path.join(run_dir, CONFIG + ".tmp")
    with open(tmp, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    os.replace(tmp, os.path.join(run_dir, CONFIG))


def load_config(run_dir):
    with open(os.path.join(run_dir, CONFIG)) as f:
        return json.load(f)
