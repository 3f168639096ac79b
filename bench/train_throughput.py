#!/usr/bin/env python
"""Training throughput, measured side by side in one run.

(a) our `transformer` classifier vs the same architecture built on
    keras.layers.MultiHeadAttention: examples/s ratio (target >= 0.95);
(b) our default `bilstm_attention` training with attention logging at the
    default cadence (8 probes every 50 steps) vs without (target: overhead <= 3%).

Runs alternate A, B, A, B, ... so drift on a shared machine hits both sides.
Synthetic token ids of the default shape (batch 64, length 64, vocab 20000).

    python bench/train_throughput.py [--steps 60] [--rounds 3]
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

from attn_tf.layers.token_and_position_embedding import TokenAndPositionEmbedding  # noqa: E402
from attn_tf.models import build_classifier  # noqa: E402
from attn_tf.training.callbacks import classifier_attention_logger  # noqa: E402

VOCAB, LENGTH, BATCH, CLASSES = 20000, 64, 64, 2


class KerasMHAEncoder(layers.Layer):
    """The same post-norm block as attn_tf's TransformerEncoder, on keras.layers.MultiHeadAttention."""

    def __init__(self, num_heads, intermediate_dim, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.intermediate_dim, self.rate = num_heads, intermediate_dim, dropout

    def build(self, shape):
        d = shape[-1]
        self.mha = layers.MultiHeadAttention(self.num_heads, d // self.num_heads, dropout=self.rate)
        self.drop1, self.drop2 = layers.Dropout(self.rate), layers.Dropout(self.rate)
        self.norm1, self.norm2 = layers.LayerNormalization(epsilon=1e-5), layers.LayerNormalization(epsilon=1e-5)
        self.ff1, self.ff2 = layers.Dense(self.intermediate_dim, activation="relu"), layers.Dense(d)
        self.supports_masking = True

    def call(self, x, mask=None, training=None):
        attention_mask = None if mask is None else ops_mask(mask)
        h = self.mha(x, x, attention_mask=attention_mask, training=training)
        x = self.norm1(x + self.drop1(h, training=training))
        h = self.ff2(self.ff1(x))
        return self.norm2(x + self.drop2(h, training=training))

    def compute_mask(self, x, mask=None):
        return mask


def ops_mask(mask):
    m = keras.ops.cast(mask, "bool")
    return keras.ops.logical_and(m[:, :, None], m[:, None, :])


def keras_transformer(num_layers=2, hidden=64, heads=4, ff=128):
    ids = keras.Input((LENGTH,), dtype="int32")
    x = TokenAndPositionEmbedding(VOCAB, LENGTH, hidden)(ids)
    x = layers.Dropout(0.1)(x)
    for _ in range(num_layers):
        x = KerasMHAEncoder(heads, ff)(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(0.3)(x)
    return keras.Model(ids, layers.Dense(CLASSES, activation="softmax", dtype="float32")(x))


def ours_transformer():
    model = build_classifier("transformer", vocab_size=VOCAB, num_classes=CLASSES, max_length=LENGTH)
    return model, keras.Model(model.input, model.output["probabilities"])


def data(n_batches, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, VOCAB, size=(n_batches * BATCH, LENGTH)).astype("int32")
    lengths = rng.integers(8, LENGTH + 1, size=len(ids))
    ids[np.arange(LENGTH)[None, :] >= lengths[:, None]] = 0  # realistic padding
    labels = rng.integers(0, CLASSES, size=len(ids)).astype("int32")
    return tf.data.Dataset.from_tensor_slices((ids, labels)).batch(BATCH).cache().prefetch(2)


def compile_(m):
    m.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def timed_fit(model, ds, steps, callbacks=()):
    model.fit(ds.take(5), epochs=1, verbose=0, callbacks=list(callbacks))  # trace and warm up
    start = time.perf_counter()
    model.fit(ds.take(steps), epochs=1, verbose=0, callbacks=list(callbacks))
    return steps * BATCH / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--long-steps", type=int, default=200,
                   help="steps per measurement in (b); the logger writes at step 50, 100, ... and at the end")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    keras.utils.set_random_seed(0)
    ds = data(args.steps)
    print("tensorflow %s, keras %s, %d CPU cores, batch %d x %d tokens, %d steps x %d rounds"
          % (tf.__version__, keras.__version__, os.cpu_count(), BATCH, LENGTH, args.steps, args.rounds))

    _, ours = ours_transformer()
    ref = keras_transformer()
    compile_(ours), compile_(ref)
    a, b = [], []
    for _ in range(args.rounds):
        a.append(timed_fit(ours, ds, args.steps))
        b.append(timed_fit(ref, ds, args.steps))
    ratio = np.median(a) / np.median(b)
    print("(a) transformer examples/s: attn_tf %.0f, keras MultiHeadAttention %.0f, ratio %.3f (target >= 0.95) %s"
          % (np.median(a), np.median(b), ratio, "PASS" if ratio >= 0.95 else "MISS"))

    long_ds = data(args.long_steps, seed=1)
    model = build_classifier("bilstm_attention", vocab_size=VOCAB, num_classes=CLASSES, max_length=LENGTH)
    train_model = compile_(keras.Model(model.input, model.output["probabilities"]))
    probe = next(iter(ds.unbatch().batch(8).take(1)))[0].numpy()
    tokens = [["w%d" % t for t in row if t] for row in probe]
    with tempfile.TemporaryDirectory() as d:
        # One logger for all rounds, as in a real run: its probe function is
        # traced once (in the warm-up fit), not once per measurement.
        logger = classifier_attention_logger(d, model, probe, tokens, [0] * 8, ["neg", "pos"], every=50)
        off, on = [], []
        for _ in range(args.rounds):
            off.append(timed_fit(train_model, long_ds, args.long_steps))
            on.append(timed_fit(train_model, long_ds, args.long_steps, [logger]))
    overhead = 1 - np.median(on) / np.median(off)
    print("(b) bilstm_attention examples/s: without logging %.0f, with logging every 50 steps %.0f, "
          "overhead %.1f%% (target <= 3%%) %s"
          % (np.median(off), np.median(on), 100 * overhead, "PASS" if overhead <= 0.03 else "MISS"))


if __name__ == "__main__":
    main()
