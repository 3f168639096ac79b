"""Checkpoint averaging: the mean of a model's weights at its last K epoch ends.

    EpochWeights(run, keep)             Keras callback: saves the weights of every complete epoch
                                        (checkpoints/epoch-NNN.weights.npz), keeps the newest `keep`
    average_weights(model, paths)       sets the model's weights to their mean over those files
    select_weights(ctx, k, log)         the best epoch's weights or the average of the last k epochs,
                                        whichever scores better on validation; a record of the choice

Why: with a large learning rate the weights at one epoch end depend on the
last few hundred batches, and validation figures jump between epochs (the
cmudict Transformer's validation WER went 59% -> 82% -> 48% over epochs 3-5).
The mean of the last few epoch ends is a flatter point that usually decodes
better than any of them (Vaswani et al. 2017 averaged the last 5 or 20
checkpoints; Popel & Bojar 2018, "Training Tips for the Transformer Model",
section 4.10). It is not always better, so the choice is made on validation,
with the monitor that selects the best epoch (`Task.validation_score`); the test
split is not read.

An epoch file holds the float weights only (no optimizer moments: a third of
`last.weights.h5`), in `model.weights` order, which a rebuilt model of the same
config (--resume) has too. Files are written atomically, so a crash leaves the
previous ones valid.
"""

import os

import keras
import numpy as np

from attn_tf import atomic


def _float_weights(model):
    # The dropout seed-generator states are integer variables: never averaged (and not in model.weights).
    return [v for v in model.weights if "float" in str(v.dtype)]


class EpochWeights(keras.callbacks.Callback):
    """Saves the model's weights at each complete epoch end; keeps the newest `keep` files.

    Args:
      run: the attn_tf.run_dir.RunDir.
      steps_per_epoch: batches per epoch (an epoch cut short by --max-steps is not saved).
      keep: how many epoch files to keep (>= 1).
    """

    def __init__(self, run, steps_per_epoch, keep):
        super().__init__()
        self.run, self.steps_per_epoch, self.keep = run, int(steps_per_epoch), int(keep)

    def on_epoch_end(self, epoch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if step < (epoch + 1) * self.steps_per_epoch:
            return  # a partial epoch (--max-steps): its weights are not an epoch end
        arrays = [keras.ops.convert_to_numpy(v) for v in _float_weights(self.model)]
        atomic.write_with(self.run.epoch_weights(epoch + 1), lambda f: np.savez(f, *arrays), binary=True)
        for _, old in self.run.epoch_weight_files()[: -self.keep]:
            os.remove(old)


def average_weights(model, paths):
    """Assigns to `model`'s float weights their mean over the epoch files `paths` (float64 sums)."""
    variables = _float_weights(model)
    sums = None
    for path in paths:
        with np.load(path) as f:
            arrays = [f["arr_%d" % i] for i in range(len(f.files))]
        if len(arrays) != len(variables) or any(a.shape != tuple(v.shape) for a, v in zip(arrays, variables)):
            raise ValueError("%s does not hold this model's weights (%d arrays for %d weights); was it "
                             "written by another model?" % (path, len(arrays), len(variables)))
        sums = [a.astype(np.float64) for a in arrays] if sums is None else [s + a for s, a in zip(sums, arrays)]
    for v, s in zip(variables, sums):
        v.assign((s / len(paths)).astype(v.dtype))


def select_weights(ctx, k, log=print):
    """Keeps the best epoch's weights (already loaded) or the mean of the last `k` epoch ends.

    Scores both with `ctx.task.validation_score(ctx)` and keeps the average only when it scores
    higher. Returns the record for results.json ("weights"), or None when fewer than two epoch
    files exist (nothing to average).
    """
    files = ctx.run.epoch_weight_files()[-int(k):]
    if len(files) < 2:
        return None
    model = ctx.train_model
    best_snapshot = [keras.ops.convert_to_numpy(v) for v in _float_weights(model)]
    best_score = ctx.task.validation_score(ctx)
    average_weights(model, [p for _, p in files])
    average_score = ctx.task.validation_score(ctx)
    epochs = [e for e, _ in files]
    keep_average = average_score > best_score
    if not keep_average:
        for v, a in zip(_float_weights(model), best_snapshot):
            v.assign(a)
    log("Checkpoint averaging: epochs %d-%d average %s %.4f vs best epoch %.4f on validation: keeping the %s" % (
        epochs[0], epochs[-1], ctx.task.monitor, average_score, best_score,
        "average" if keep_average else "best epoch"))
    return {"kept": "average" if keep_average else "best_epoch", "averaged_epochs": epochs,
            "monitor": ctx.task.monitor, "validation_average": float(average_score),
            "validation_best_epoch": float(best_score)}
