"""Run directories: the only reader and writer of a run's files.

Layout of runs/<model>-<dataset>-<timestamp>/ (names below are the contract;
README "What the default job produces"):

  config.json            the run's configuration (RunConfig; read back by --resume, export, evaluation)
  vectorizer.json        classifier tokenizer and vocabulary
  source_vocab.json, target_vocab.json   seq2seq vocabularies
  class_names.json       optional class names (export)
  train/, validation/    scalars (per step and per epoch; steps are optimizer steps)
  attention/             attention summaries of the probe examples
  test/                  seq2seq final metrics as scalars
  checkpoints/           last.weights.h5 (weights + optimizer state), best.weights.h5, state.json
  model.keras            the trained model (best validation accuracy)
  results.json           test metrics (and the "export" entry once exported)
  predictions.tsv        seq2seq outputs of the test split
  evaluation/            python -m attn_tf.evaluate's report

Interface:
  new_run(logdir, model, dataset, run_name=None) -> path     (a fresh, unique directory)
  find_run(logdir, resume) -> path        (--resume: "latest" = newest run with a checkpoint, or a path)
  RunDir(path)                            paths of the files, load_config / save_config, results, state
  RunConfig                               the typed configuration (schema version, old runs migrate)
  write_json(path, obj)                   the one atomic JSON writer (temporary file, fsync, rename)

It sits below training, evaluation and export (it imports nothing of theirs).
"""

import datetime
import glob
import json
import os
import re

from attn_tf import atomic
from attn_tf.errors import UsageError

CONFIG = "config.json"
VECTORIZER = "vectorizer.json"
SOURCE_VOCAB = "source_vocab.json"
TARGET_VOCAB = "target_vocab.json"
CLASS_NAMES = "class_names.json"
MODEL = "model.keras"
RESULTS = "results.json"
PREDICTIONS = "predictions.tsv"
CHECKPOINTS = "checkpoints"
LAST_WEIGHTS = "last.weights.h5"
BEST_WEIGHTS = "best.weights.h5"
# The weights at the end of epoch N (1-based), for checkpoint averaging (attn_tf.training.averaging).
EPOCH_WEIGHTS = "epoch-%03d.weights.npz"
EPOCH_WEIGHTS_PATTERN = re.compile(r"^epoch-(\d{3,})\.weights\.npz$")
STATE = "state.json"
TRAIN_LOGS, VALIDATION_LOGS, ATTENTION_LOGS, TEST_LOGS = "train", "validation", "attention", "test"
EVALUATION = "evaluation"

# Version 1: "schema_version" and "model_sizes" recorded. Runs written before
# (no "schema_version") are version 0 and load with the defaults below.
SCHEMA_VERSION = 1


def write_json(path, obj, indent=2, sort_keys=False):
    """Writes `obj` as JSON atomically (attn_tf.atomic): a crash leaves the old file or the new one."""
    return atomic.write_json(path, obj, indent=indent, sort_keys=sort_keys)


def read_json(path, what=None):
    """JSON of a run file; UsageError naming the file when it is unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise UsageError("%s does not exist" % path) from None
    except (OSError, ValueError) as e:
        raise UsageError("%s is unreadable or not JSON (%s)%s" % (path, e, "; " + what if what else "")) from None


# ----------------------------------------------------------------------------- the configuration

# name: (types, default for runs that predate the field). Only the fields every
# run has; model options and flags added later are kept as they are.
FIELDS = {
    "model": ((str,), None),
    "dataset": ((str, type(None)), None),
    "data": ((str, type(None)), None),
    "text_column": ((str,), "text"),
    "label_column": ((str,), "label"),
    "epochs": ((int, type(None)), None),
    "batch_size": ((int,), 64),
    "max_steps": ((int, type(None)), None),
    "learning_rate": ((float, int, type(None)), None),
    "seed": ((int,), 0),
    "logdir": ((str,), "runs"),
    "run_name": ((str, type(None)), None),
    "attention_every": ((int,), 50),
    "probe_examples": ((int,), 8),
    "max_length": ((int,), 64),
    "vocab_size": ((int,), 20000),
    "mixed_precision": ((bool,), False),
    "strategy": ((str,), "default"),
    "export": ((bool,), True),
    "export_dir": ((str,), "saved_models"),
    "augment": ((str,), "none"),
    "adversarial_training": ((bool,), False),
    "checkpoint_every": ((int,), 0),
    "verbose": ((int,), 1),
    "model_sizes": ((dict, type(None)), None),
    "class_names": ((list, type(None)), None),
}
REQUIRED = ("model",)


class RunConfig(dict):
    """The configuration of a run: the train.py flags plus what the run recorded (class names, sizes).

    A dict (every module reads `config["key"]`) with attribute access
    (`config.model`), checked types for the fields every run has (FIELDS), a
    schema version, and migration of older runs (missing fields get the value
    they had before the field existed). Unknown keys (options added by newer
    flags) are kept as they are.
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def from_dict(cls, values, source="config"):
        values = dict(values)
        version = values.pop("schema_version", 0)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise UsageError("%s: schema_version %r is newer than this attn_tf understands (%d); update attn_tf"
                             % (source, version, SCHEMA_VERSION))
        values.pop("_explicit", None)
        config = cls()
        for name, (_, default) in FIELDS.items():
            config[name] = default
        config.update(values)
        config.check(source)
        return config

    def check(self, source="config"):
        for name in REQUIRED:
            if self.get(name) is None:
                raise UsageError("%s has no %r entry; it was not written by train.py" % (source, name))
        for name, (types, _) in FIELDS.items():
            value = self.get(name)
            if value is None and name not in REQUIRED:
                continue  # not recorded (e.g. a hand-made run directory): the readers' defaults apply
            if isinstance(value, bool) and bool not in types:
                ok = False
            else:
                ok = isinstance(value, types)
            if not ok:
                raise UsageError("%s: %r should be %s, got %r" % (
                    source, name, " or ".join(t.__name__ for t in types), value))
        return self

    def to_dict(self):
        out = {k: v for k, v in self.items() if k != "_explicit"}
        out["schema_version"] = SCHEMA_VERSION
        return out


# ----------------------------------------------------------------------------- directories

def new_run(logdir, model, dataset, run_name=None):
    """Creates and returns a new run directory (a suffix _2, _3, ... keeps it unique)."""
    if run_name is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset)
        run_name = "%s-%s-%s" % (model, safe, stamp)
    path = os.path.join(logdir, run_name)
    base, n = path, 1
    while True:
        try:
            os.makedirs(path)
            return path
        except FileExistsError:
            n += 1
            path = "%s_%d" % (base, n)


def find_run(logdir, resume):
    """Resolves --resume: "latest" (the run in `logdir` whose checkpoint is newest) or a run directory."""
    if resume != "latest":
        if not os.path.isfile(os.path.join(resume, CONFIG)):
            raise UsageError(
                "--resume %s: not a run directory (no %s there); pass a directory made by train.py"
                % (resume, CONFIG))
        return resume
    states = glob.glob(os.path.join(logdir, "*", CHECKPOINTS, STATE))
    if not states:
        raise UsageError(
            "--resume: no run with a checkpoint under %s; start a run first or pass --resume RUN_DIR" % logdir)
    newest = max(states, key=os.path.getmtime)
    return os.path.dirname(os.path.dirname(newest))  # runs/<run>/checkpoints/state.json -> runs/<run>


class RunDir:
    """A run directory: the paths of its files and the reading and writing of them."""

    def __init__(self, path):
        self.path = os.fspath(path)

    def __fspath__(self):
        return self.path

    def __str__(self):
        return self.path

    def file(self, *names):
        return os.path.join(self.path, *names)

    @property
    def checkpoints(self):
        return self.file(CHECKPOINTS)

    @property
    def last_weights(self):
        return self.file(CHECKPOINTS, LAST_WEIGHTS)

    @property
    def best_weights(self):
        return self.file(CHECKPOINTS, BEST_WEIGHTS)

    def epoch_weights(self, epoch):
        """checkpoints/epoch-NNN.weights.npz: the weights at the end of epoch `epoch` (1-based)."""
        return self.file(CHECKPOINTS, EPOCH_WEIGHTS % int(epoch))

    def epoch_weight_files(self):
        """[(epoch, path)] of the saved epoch-end weights, oldest first."""
        try:
            names = os.listdir(self.checkpoints)
        except FileNotFoundError:
            return []
        found = [(int(m.group(1)), self.file(CHECKPOINTS, n)) for n in names
                 for m in [EPOCH_WEIGHTS_PATTERN.match(n)] if m]
        return sorted(found)

    def missing(self, *names):
        return [n for n in names if not os.path.isfile(self.file(n))]

    # ---------------------------------------------------------------- config
    def has_config(self):
        return os.path.isfile(self.file(CONFIG))

    def load_config(self):
        """The RunConfig of the run (UsageError when missing, unreadable or malformed)."""
        path = self.file(CONFIG)
        if not os.path.isfile(path):
            raise UsageError("%s is not a run directory: it has no %s; pass a directory made by train.py"
                             % (self.path, CONFIG))
        values = read_json(path)
        if not isinstance(values, dict):
            raise UsageError("%s is not a train.py configuration (not a JSON object)" % path)
        return RunConfig.from_dict(values, source=path)

    def save_config(self, config):
        values = config.to_dict() if isinstance(config, RunConfig) else RunConfig.from_dict(config).to_dict()
        write_json(self.file(CONFIG), values, sort_keys=True)

    # ---------------------------------------------------------------- results and state
    def load_results(self):
        path = self.file(RESULTS)
        return read_json(path) if os.path.isfile(path) else None

    def save_results(self, results):
        write_json(self.file(RESULTS), results)

    def load_state(self):
        """checkpoints/state.json (progress of the last checkpoint), or None before the first one."""
        path = self.file(CHECKPOINTS, STATE)
        return read_json(path) if os.path.isfile(path) else None

    def save_state(self, state):
        write_json(self.file(CHECKPOINTS, STATE), state)


# Old names, kept for existing imports.
new_run_dir = new_run


def save_config(run_dir, config):
    RunDir(run_dir).save_config(config)


def load_config(run_dir):
    return RunDir(run_dir).load_config()
