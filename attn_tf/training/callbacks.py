"""Keras callbacks of the training loop (attn_tf.training.loop).

  ScalarLogger     loss / accuracy / learning rate: every N optimizer steps (batch_*) and at every epoch
                   end (epoch_*, validation), steps = optimizer steps, never a step written twice
  AttentionLogger  the attention of the probe examples every N steps, from a probe-record function
  Checkpointer     weights + optimizer + dropout RNG state and the progress (epoch, batch in epoch),
                   at epoch ends, every N steps and on demand (Ctrl-C); the best weights by a monitor
  StopAtStep       stops after --max-steps optimizer steps in total

Every callback counts steps from the optimizer's restored iteration count, so
a resumed run continues the step axis of the event files.
"""

import os

import keras
import numpy as np

from attn_tf import run_dir as rd
from attn_tf.training import probes as probes_lib
from attn_tf.training.event_steps import last_steps


def _optimizer_step(model):
    return int(model.optimizer.iterations.numpy())


class ScalarLogger(keras.callbacks.Callback):
    """Scalars for TensorBoard's Scalars tab, in `<run>/train/` and `<run>/validation/`.

    Tags (the names Keras' TensorBoard callback uses, so dashboards keep working):
      train/batch_<metric>        every `every` optimizer steps (running mean over the epoch so far)
      train/epoch_<metric>, train/epoch_learning_rate, validation/epoch_<metric>,
      validation/evaluation_<metric>_vs_iterations
                                  at every epoch end, whatever `every` is
    Every step is an optimizer step (Keras' callback writes epoch_* at the
    epoch index and drops epoch-end writes off the `update_freq` cadence:
    tensorflow/tensorboard#4975). A step at or below one the event files
    already hold for a tag is not written again (resume).

    Args:
      run_dir: the run directory.
      every: batch-level cadence in optimizer steps (0: no batch-level scalars).
    """

    def __init__(self, run_dir, every):
        super().__init__()
        self.run_dir = os.fspath(run_dir)
        self.every = int(every)
        self._writers = {}
        self._floors = {}
        self._step = 0

    def _writer(self, sub):
        import tensorflow as tf

        if sub not in self._writers:
            path = os.path.join(self.run_dir, sub)
            os.makedirs(path, exist_ok=True)
            self._floors[sub] = last_steps(path)
            self._writers[sub] = tf.summary.create_file_writer(path)
        return self._writers[sub]

    def _write(self, sub, values, step):
        import tensorflow as tf

        writer = self._writer(sub)
        floors = self._floors[sub]
        with writer.as_default():
            for tag, value in values.items():
                if step <= floors.get(tag, -1) or value is None:
                    continue
                tf.summary.scalar(tag, float(value), step=step)
                floors[tag] = step
        writer.flush()

    def on_train_begin(self, logs=None):
        self._step = _optimizer_step(self.model)
        for sub in (rd.TRAIN_LOGS, rd.VALIDATION_LOGS):
            self._writer(sub)

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self.every > 0 and self._step % self.every == 0:
            self._write(rd.TRAIN_LOGS, {"batch_" + k: v for k, v in (logs or {}).items()
                                        if np.ndim(v) == 0}, self._step)

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: v for k, v in (logs or {}).items() if np.ndim(v) == 0}
        step = _optimizer_step(self.model)  # the source of truth, also after a stop mid-epoch
        train = {"epoch_" + k: v for k, v in logs.items() if not k.startswith("val_") and k != "learning_rate"}
        train["epoch_learning_rate"] = _current_learning_rate(self.model.optimizer)
        self._write(rd.TRAIN_LOGS, train, step)
        val = {k[len("val_"):]: v for k, v in logs.items() if k.startswith("val_")}
        if val:
            values = {"epoch_" + k: v for k, v in val.items()}
            values.update({"evaluation_%s_vs_iterations" % k: v for k, v in val.items()})
            self._write(rd.VALIDATION_LOGS, values, step)

    def on_train_end(self, logs=None):
        for w in self._writers.values():
            w.close()
        self._writers = {}


def _current_learning_rate(optimizer):
    lr = optimizer.learning_rate
    try:
        return float(np.asarray(lr))
    except (TypeError, ValueError):
        return None


class AttentionLogger(keras.callbacks.Callback):
    """Logs the attention of fixed probe examples every `every` optimizer steps.

    Also at step 0 (the untrained attention) and at the end of training (the
    final state, even off the cadence). The probe forward pass runs outside
    the compiled train step, so training itself is unchanged. Steps are
    optimizer steps, continued on resume; a step already present in the
    event files is never written again.

    Args:
      logdir: directory of the attention event file (its own writer).
      records: function step -> list of (tag, header, arrays) in the tb_plugin
        format (see `ClassifierProbes` and the seq2seq task's probes).
      every: log every this many steps (0 disables).
      storage: "float16" (exact, the default) or "uint8" (compact), see
        tb_plugin.metadata.STORAGES; `train.py --attention-storage`.
    """

    def __init__(self, logdir, records, every, storage="float16"):
        from tb_plugin import metadata

        super().__init__()
        self.logdir = os.fspath(logdir)
        self.records = records
        self.every = int(every)
        self.storage = metadata.check_storage(storage)
        self._writer = None
        self._step = 0
        self._last_written = -1

    def log(self, step):
        """Writes one sample per probe at `step` (skipped if not after the last one)."""
        from tb_plugin import summary

        if step <= self._last_written or self._writer is None:
            return False
        with self._writer.as_default():
            for tag, header, arrays in self.records(step):
                summary.attention(tag, header, arrays, step=step, storage=self.storage)
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
        self._step = _optimizer_step(self.model)
        if self._step == 0:
            self.log(0)

    def on_train_batch_end(self, batch, logs=None):
        if self.every <= 0:
            return
        self._step += 1
        if self._step % self.every == 0:
            self.log(self._step)

    def on_train_end(self, logs=None):
        if self.every <= 0 or self._writer is None:
            return
        self.log(self._step)
        self._writer.close()
        self._writer = None


class ClassifierProbes:
    """Probe records of a classifier: step -> [(tag, header, arrays)] (tb_plugin format).

    Args:
      probe_model: the model with dict outputs ("probabilities", "attention");
        it may differ from the model being fit as long as they share weights.
      token_ids: int array [K, T] of the probe examples.
      tokens: K token lists (strings, truncated to T).
      labels: K class indices (or None).
      class_names: the class names.
      texts: optional K raw texts.
    """

    def __init__(self, probe_model, token_ids, tokens, labels, class_names, texts=None):
        self.probe_model = probe_model
        self.token_ids = np.asarray(token_ids, dtype=np.int32)
        self.tokens, self.labels, self.texts = tokens, labels, texts
        self.class_names = list(class_names)
        self._predict = None

    def __call__(self, step):
        import tensorflow as tf
        from tb_plugin import metadata

        if self._predict is None:
            model = self.probe_model
            self._predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        out = {k: np.asarray(v) for k, v in self._predict(self.token_ids).items()}
        records = []
        for i in range(len(self.token_ids)):
            header, arrays = probes_lib.probe_record(
                self.tokens[i], out["attention"][i], out["probabilities"][i],
                None if self.labels is None else self.labels[i], self.class_names,
                text=None if self.texts is None else self.texts[i])
            records.append((metadata.probe_tag(i), header, arrays))
        return records


def classifier_attention_logger(logdir, probe_model, token_ids, tokens, labels, class_names, every, texts=None):
    """The AttentionLogger of a classifier (the arguments of the former AttentionLogger)."""
    return AttentionLogger(logdir, ClassifierProbes(probe_model, token_ids, tokens, labels, class_names, texts),
                           every)


class StopAtStep(keras.callbacks.Callback):
    """Stops training once the optimizer has made `max_steps` steps in total."""

    def __init__(self, max_steps):
        super().__init__()
        self.max_steps = int(max_steps)
        self._step = 0

    def on_train_begin(self, logs=None):
        self._step = _optimizer_step(self.model)
        if self._step >= self.max_steps:
            self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step >= self.max_steps:
            self.model.stop_training = True


def rng_variables(model):
    """The dropout seed-generator states of `model` (not in save_weights, but part of the training state).

    In the model's variable order (its layers' order), which does not depend on
    how many models the process built before (the generators' names do).
    """
    return [v for v in model.variables if "seed_generator_state" in v.path]


class Checkpointer(keras.callbacks.Callback):
    """Saves what an exact resume needs, atomically (a crash leaves the previous checkpoint valid).

    `checkpoints/last.weights.h5` holds the weights and the optimizer state
    (Adam moments, iteration count); `checkpoints/state.json` the progress
    (completed epochs, batches done in the current epoch, optimizer step), the
    dropout seed-generator states and the best monitored value. Written at
    every epoch end, every `every` optimizer steps when `every` > 0 (Keras
    `BackupAndRestore(save_freq=every)` semantics, but a resume continues at
    the next batch instead of replaying the epoch), and by `save_now()` (the
    loop calls it on Ctrl-C). The best weights by `monitor` go to
    `checkpoints/best.weights.h5` (complete epochs only).

    Args:
      run: the attn_tf.run_dir.RunDir.
      steps_per_epoch: batches per epoch (to place a step inside its epoch).
      monitor: the logs key for the best weights (higher is better).
      every: optimizer steps between mid-epoch checkpoints (0: epoch ends only).
    """

    def __init__(self, run, steps_per_epoch, monitor="val_accuracy", every=0):
        super().__init__()
        self.run = run
        self.steps_per_epoch = int(steps_per_epoch)
        self.monitor = monitor
        self.every = int(every)
        self.best = -np.inf
        self._epoch_start_step = 0
        self._epoch = 0
        state = run.load_state()
        if state and state.get("best") is not None:
            self.best = state["best"]

    def on_train_begin(self, logs=None):
        os.makedirs(self.run.checkpoints, exist_ok=True)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        # A resumed partial epoch began before this process: place it by the step.
        # Every epoch has steps_per_epoch batches, so epoch e starts at step e * steps_per_epoch
        # (also when this process resumed in its middle).
        self._epoch_start_step = epoch * self.steps_per_epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.every > 0:
            step = _optimizer_step(self.model)
            if step % self.every == 0:
                self.save_now()

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        complete = _optimizer_step(self.model) - self._epoch_start_step >= self.steps_per_epoch
        # Only complete epochs compete for the best weights: an epoch cut short by --max-steps
        # must not make a resumed run select other weights than an uninterrupted one.
        if complete and value is not None and value > self.best:
            self.best = float(value)
            _atomic_save(self.model, self.run.best_weights)
        self.save_now()  # epoch + 1, batch 0; or mid-epoch when --max-steps stopped the epoch early

    def save_now(self):
        """Checkpoint of the current step (mid-epoch: the resume continues at the next batch)."""
        step = _optimizer_step(self.model)
        done = step - self._epoch_start_step
        if done >= self.steps_per_epoch:
            return self._save(self._epoch + 1, 0)
        return self._save(self._epoch, done)

    def _save(self, epoch, batch):
        _atomic_save(self.model, self.run.last_weights)
        state = {"epoch": int(epoch), "batch": int(batch), "step": _optimizer_step(self.model),
                 "best": None if self.best == -np.inf else self.best, "monitor": self.monitor,
                 "rng": [np.asarray(v.numpy()).tolist() for v in rng_variables(self.model)]}
        self.run.save_state(state)
        return state


def restore(model, run, state):
    """Loads a checkpoint written by Checkpointer into a compiled `model`."""
    model.optimizer.build(model.trainable_variables)
    model.load_weights(run.last_weights)
    saved = (state or {}).get("rng") or []
    variables = rng_variables(model)
    if len(saved) == len(variables):  # checkpoints written before the RNG was saved have none
        for v, value in zip(variables, saved):
            v.assign(np.asarray(value, dtype=v.dtype))


def read_state(directory):
    """checkpoints/state.json of a run's checkpoint directory, or None (kept for existing callers)."""
    return rd.RunDir(os.path.dirname(os.path.normpath(directory))).load_state()


def _atomic_save(model, path):
    tmp = path[: -len(".weights.h5")] + ".tmp.weights.h5"
    model.save_weights(tmp)
    os.replace(tmp, path)
