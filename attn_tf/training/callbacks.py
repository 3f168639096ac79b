"""Keras callbacks used by train.py."""

import json
import os

import keras
import numpy as np

from attn_tf.training import probes as probes_lib
from attn_tf.training.event_steps import last_steps
from tb_plugin import metadata, summary


class ResumableTensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback whose steps continue across resumed runs.

    The stock callback restarts its batch counter at 0 in every `fit`, so a
    resumed run would write steps that already exist. Here the counter starts
    at the optimizer's restored iteration count, and nothing is written at or
    below a step that the event files already hold.
    """

    def __init__(self, log_dir, **kwargs):
        super().__init__(log_dir=log_dir, **kwargs)
        self._floors = {}

    def on_train_begin(self, logs=None):
        self._floors = {
            sub: last_steps(os.path.join(self.log_dir, sub)) for sub in ("train", "validation")
        }
        super().on_train_begin(logs)
        self._global_train_batch = int(self.model.optimizer.iterations.numpy())

    def _floor(self, sub, prefix):
        values = [s for tag, s in self._floors.get(sub, {}).items() if tag.startswith(prefix)]
        return max(values) if values else -1

    def _push_writer(self, writer, step):
        if self.update_freq == "epoch":
            return
        floor = self._floor("train", "batch_")

        def should_record():
            return step % self.update_freq == 0 and step > floor

        context = (writer.as_default(step), self.summary.record_if(should_record))
        self._prev_summary_state.append(context)
        context[0].__enter__()
        context[1].__enter__()

    def _log_epoch_metrics(self, epoch, logs):
        if epoch <= self._floor("train", "epoch_"):
            return
        super()._log_epoch_metrics(epoch, logs)
        self._train_writer.flush()
        self._val_writer.flush()

    def on_test_end(self, logs=None):
        step = int(self.model.optimizer.iterations.numpy()) if self.model.optimizer else 0
        if step <= self._floor("validation", "evaluation_"):
            self._pop_writer()
            return
        super().on_test_end(logs)


class AttentionLogger(keras.callbacks.Callback):
    """Logs the attention of fixed probe examples every `every` training steps.

    The probe forward pass runs outside the compiled train step (a separate
    `tf.function` on K examples), so training itself is unchanged and XLA and
    summaries never meet. Steps are optimizer steps, continued on resume;
    a step already present in the event files is never written again.

    Args:
      logdir: directory of the attention event file (its own writer, so the
        TensorBoard callback's files are left alone).
      probe_model: the model with dict outputs ("probabilities", "attention");
        it may differ from the model being fit (which may output only the
        probabilities) as long as they share weights.
      token_ids: int array [K, T] of the probe examples.
      tokens: list of K token lists (strings, truncated to T).
      labels: K class indices (or None).
      class_names: list of class names.
      every: log every this many steps (0 disables).
      texts: optional list of K raw texts.
    """

    def __init__(self, logdir, probe_model, token_ids, tokens, labels, class_names, every, texts=None):
        super().__init__()
        self.logdir = logdir
        self.probe_model = probe_model
        self.token_ids = np.asarray(token_ids, dtype=np.int32)
        self.tokens = tokens
        self.labels = labels
        self.class_names = list(class_names)
        self.every = int(every)
        self.texts = texts
        self._writer = None
        self._step = 0
        self._last_written = -1
        self._predict = None

    def _probe_outputs(self):
        import tensorflow as tf

        if self._predict is None:
            model = self.probe_model
            self._predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        out = self._predict(self.token_ids)
        return {k: np.asarray(v) for k, v in out.items()}

    def log(self, step):
        """Writes one sample per probe at `step` (skipped if not after the last one)."""
        import tensorflow as tf

        if step <= self._last_written:
            return False
        out = self._probe_outputs()
        with self._writer.as_default():
            for i in range(len(self.token_ids)):
                header, arrays = probes_lib.probe_record(
                    self.tokens[i], out["attention"][i], out["probabilities"][i],
                    None if self.labels is None else self.labels[i], self.class_names,
                    text=None if self.texts is None else self.texts[i],
                )
                summary.attention(metadata.probe_tag(i), header, arrays, step=step)
        self._writer.flush()
        self._last_written = step
        return True

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        if self.every <= 0:
            return
        os.makedirs(self.logdir, exist_ok=True)
        written = last_steps(self.logdir)
        self._last_written = max(written.values()) if written else -1
        self._writer = tf.summary.create_file_writer(self.logdir)
        self._step = int(self.model.optimizer.iterations.numpy())
        if self._step == 0:
            self.log(0)  # the untrained attention, as the start of the evolution

    def on_train_batch_end(self, batch, logs=None):
        if self.every <= 0:
            return
        self._step += 1
        if self._step % self.every == 0:
            self.log(self._step)

    def on_train_end(self, logs=None):
        if self.every <= 0 or self._writer is None:
            return
        self.log(self._step)  # the final state, even off the cadence
        self._writer.close()


class StopAtStep(keras.callbacks.Callback):
    """Stops training once the optimizer has made `max_steps` steps in total."""

    def __init__(self, max_steps):
        super().__init__()
        self.max_steps = int(max_steps)
        self._step = 0

    def on_train_begin(self, logs=None):
        self._step = int(self.model.optimizer.iterations.numpy())
        if self._step >= self.max_steps:
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step >= self.max_steps:
            self.model.stop_training = True


class ResumeCheckpoint(keras.callbacks.Callback):
    """Saves weights and optimizer state, and the progress, at each epoch end.

    `save_weights` of a compiled model includes the optimizer's variables, so
    a resumed run continues with the same Adam moments and step count. Writes
    are atomic (temporary file, then rename), so a crash while saving leaves
    the previous checkpoint valid. Also keeps the best weights by `monitor`
    in `best_path` (a `.weights.h5` file).
    """

    def __init__(self, directory, best_path=None, monitor="val_accuracy", extra_state=None):
        super().__init__()
        self.directory = directory
        self.best_path = best_path
        self.monitor = monitor
        self.extra_state = extra_state or {}
        self.best = -np.inf
        self._step = 0
        state = read_state(directory)
        if state and state.get("best") is not None:
            self.best = state["best"]

    @property
    def path(self):
        return os.path.join(self.directory, "last.weights.h5")

    def on_train_begin(self, logs=None):
        self._step = int(self.model.optimizer.iterations.numpy())

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        value = (logs or {}).get(self.monitor)
        if self.best_path and value is not None and value > self.best:
            self.best = float(value)
            _atomic_save(self.model, self.best_path)
        _atomic_save(self.model, self.path)
        state = {"epoch": epoch + 1, "step": self._step, "best": None if self.best == -np.inf else self.best,
                 "monitor": self.monitor}
        state.update(self.extra_state)
        tmp = os.path.join(self.directory, "state.json.tmp")
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, os.path.join(self.directory, "state.json"))


def read_state(directory):
    path = os.path.join(directory, "state.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _atomic_save(model, path):
    tmp = path[: -len(".weights.h5")] + ".tmp.weights.h5"
    model.save_weights(tmp)
    os.replace(tmp, path)
