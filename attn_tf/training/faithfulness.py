"""Faithfulness as a training curve: `faithfulness/*` TensorBoard scalars every N epochs.

On a fixed sample of validation examples (seeded by the run's seed), at the
end of every `every`-th epoch: tau(attention, gradient), tau(attention, LOO),
ERASER AOPC comprehensiveness and sufficiency of the attention and of a
random ranking, and the attention entropy over the uniform entropy. The
definitions (attn_tf.metrics.attention_faithfulness) are the evaluation's, so
the last point of the curve and `python -m attn_tf.evaluate` measure the same
things (on different samples: validation here, test there). The scalars go
to RUN_DIR/faithfulness (a TensorBoard run next to train/ and validation/) at
the optimizer step of the epoch's end, with the seconds each measurement took
(`faithfulness/seconds`; bench/faithfulness_cost.py relates them to training).
"""

import os
import time

import keras
import numpy as np
import tensorflow as tf

from attn_tf.metrics import attention_faithfulness as af


class AdapterFunctions:
    """`predict(ids)` and `gradient(ids)` of a classifier, from its `attn_tf.models.adapter.ClassifierAdapter`."""

    def __init__(self, adapter, batch_size=512):
        from attn_tf.models.adapter import length_batches, real_lengths, trim

        self.adapter, self.batch_size = adapter, batch_size
        self._batches, self._lengths, self._trim = length_batches, real_lengths, trim
        self._gradient = af.gradient_importance_fn(
            adapter.token_embeddings,
            lambda emb, ids: adapter.from_embeddings(emb, ids, hold_attention=adapter.has_pooling_attention),
            adapter.num_classes)

    def predict(self, ids):
        return self.adapter.predict(ids, batch_size=self.batch_size)

    def gradient(self, ids):
        ids = np.asarray(ids, np.int32)
        out = np.zeros(ids.shape, np.float64)
        for idx in self._batches(self._lengths(ids), 128):
            sub = self._trim(ids[idx])
            out[idx, :sub.shape[1]] = self._gradient(tf.constant(sub)).numpy()
        return out


class FaithfulnessLogger(keras.callbacks.Callback):
    """Writes `faithfulness/<scalar>` summaries for a fixed id sample every `every` epochs.

    Args:
      logdir: summary directory (RUN_DIR/faithfulness).
      functions: object with `predict(ids)` and `gradient(ids)` (e.g. `AdapterFunctions`).
      ids: int32 [N, T] fixed sample (validation examples).
      every: epochs between measurements (>= 1).
      seed: seed of the random ranking (the same every epoch, so the curve moves with the model only).
    """

    def __init__(self, logdir, functions, ids, every=1, seed=0):
        super().__init__()
        self.logdir, self.functions, self.ids = logdir, functions, np.asarray(ids, np.int32)
        self.every, self.seed = int(every), seed
        self.history = []
        self._writer = None

    def measure(self):
        return af.faithfulness_scalars(self.functions.predict, self.functions.gradient, self.ids, seed=self.seed)

    def on_epoch_end(self, epoch, logs=None):
        if self.every <= 0 or (epoch + 1) % self.every:
            return
        start = time.time()
        values = self.measure()
        took = time.time() - start
        step = int(self.model.optimizer.iterations.numpy()) if self.model is not None else epoch + 1
        self.history.append(dict(values, epoch=epoch + 1, step=step, seconds=took))
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.logdir)
        with self._writer.as_default():
            for name, value in values.items():
                if np.isfinite(value):  # tau is undefined (NaN) while the attention is exactly uniform
                    tf.summary.scalar("faithfulness/" + name, value, step=step)
            tf.summary.scalar("faithfulness/seconds", took, step=step)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def validation_sample(texts, tokenizer, samples, seed):
    """Ids [N, T] of a fixed seeded sample of `texts` (the same sample every epoch and on --resume)."""
    from attn_tf.data import vectorize_numpy

    n = min(int(samples), len(texts))
    idx = np.sort(np.random.default_rng(seed).permutation(len(texts))[:n])
    return vectorize_numpy([texts[i] for i in idx], tokenizer)


def faithfulness_callbacks(ctx):
    """Registry callback factory (attn_tf.models.registry ModelSpec.callbacks) for classifier runs.

    `--faithfulness-every N` (config "faithfulness_every", default 1; 0 disables),
    `--faithfulness-samples K` (default 100).
    """
    every = ctx.config.get("faithfulness_every", 1)
    if not ctx.chief or not every or not len(ctx.data.val_texts):
        return []
    from attn_tf.models.adapter import ClassifierAdapter

    adapter = ClassifierAdapter(ctx.model, kind=ctx.config["model"])
    ids = validation_sample(ctx.data.val_texts, ctx.tokenizer, ctx.config.get("faithfulness_samples", 100),
                            ctx.config.get("seed", 0))
    return [FaithfulnessLogger(os.path.join(ctx.run_dir, "faithfulness"), AdapterFunctions(adapter), ids,
                               every=every, seed=ctx.config.get("seed", 0))]
