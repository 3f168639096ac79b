#!/usr/bin/env python
"""MiniLM fine-tuning throughput: attn-tf's layers vs keras-hub's BertBackbone, side by side in one run.

Both sides are all-MiniLM-L6-v2 (6 layers, 12 heads, hidden 384, exact GELU,
eps 1e-12) with the SAME weights (ours loaded from model.safetensors, copied
variable by variable into keras-hub's BertBackbone, and checked: the
probabilities must agree within 1e-2 before anything is timed; keras-hub's
BERT uses the tanh GELU approximation, ours the exact erf form), the same head
(masked mean pooling -> dropout 0.1 -> Dense softmax), the same optimizer
(Adam), the same compile settings and the same batches of token ids. Runs
alternate ours, keras-hub, ours, ... so drift on a shared machine hits both.
Target: ours / keras-hub examples/s >= 0.95.

keras-hub is only a bench extra (pip install -e '.[bench]'); it installs
beside keras==3.15.1 / TensorFlow 2.21 without changing them (checked with
keras-hub 0.32.0).

    python bench/minilm_throughput.py [--batch 32] [--length 64] [--steps 12] [--rounds 3]
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers, ops  # noqa: E402

from attn_tf.models.minilm import minilm_classifier, preset_config  # noqa: E402

CLASSES = 2


def keras_hub_classifier(ours, length):
    """keras-hub BertBackbone of the same configuration, our weights copied in, and the same head."""
    from keras_hub.models import BertBackbone

    cfg = preset_config("minilm")
    backbone = BertBackbone(vocabulary_size=cfg["vocab_size"], num_layers=cfg["num_layers"],
                            num_heads=cfg["num_heads"], hidden_dim=cfg["hidden_dim"],
                            intermediate_dim=cfg["intermediate_dim"], dropout=cfg["dropout"],
                            max_sequence_length=cfg["max_sequence_length"], num_segments=cfg["num_segments"])
    theirs = [w for w in backbone.weights if not w.path.startswith("pooled_dense")]
    mine = [w for w in ours.weights if not w.path.startswith(("classifier",))]
    if len(theirs) != len(mine):
        raise SystemExit("weight lists differ: keras-hub %d, ours %d" % (len(theirs), len(mine)))
    for a, b in zip(mine, theirs):
        if tuple(a.shape) != tuple(b.shape):
            raise SystemExit("weight %s %s does not line up with keras-hub %s %s" % (a.path, a.shape, b.path, b.shape))
        b.assign(a)
    token_ids = keras.Input((length,), dtype="int32", name="token_ids")
    mask = ops.cast(ops.not_equal(token_ids, 0), "int32")
    x = backbone({"token_ids": token_ids, "segment_ids": ops.zeros_like(token_ids), "padding_mask": mask})[
        "sequence_output"]
    m = ops.expand_dims(ops.cast(mask, x.dtype), -1)
    pooled = ops.sum(x * m, axis=1) / ops.maximum(ops.sum(m, axis=1), 1.0)
    pooled = layers.Dropout(0.1)(pooled)
    head = layers.Dense(CLASSES, activation="softmax", dtype="float32", name="classifier")
    probs = head(pooled)
    model = keras.Model(token_ids, probs)
    head.kernel.assign(ours.get_layer("classifier").kernel)
    head.bias.assign(ours.get_layer("classifier").bias)
    return model, backbone


def batches(n, batch, length, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 30000, size=(n * batch, length)).astype("int32")
    lengths = rng.integers(8, length + 1, size=len(ids))  # realistic padding
    ids[:, 0] = 101
    ids[np.arange(len(ids)), lengths - 1] = 102
    ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
    labels = rng.integers(0, CLASSES, size=len(ids)).astype("int32")
    return tf.data.Dataset.from_tensor_slices((ids, labels)).batch(batch).cache().prefetch(2), ids[:4]


def compile_(m):
    m.compile(keras.optimizers.Adam(2e-5), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def timed_fit(model, ds, steps, batch):
    model.fit(ds.take(2), epochs=1, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(ds.take(steps), epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--length", type=int, default=64)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    try:
        import keras_hub
    except ImportError as e:
        print("keras-hub is not installed (%s): pip install -e '.[bench]'" % e, file=sys.stderr)
        return 2
    keras.utils.set_random_seed(0)
    print("tensorflow %s, keras %s, keras-hub %s, %d CPU cores, load average %s; batch %d x %d tokens, "
          "%d steps x %d rounds" % (tf.__version__, keras.__version__, keras_hub.__version__, os.cpu_count(),
                                    " ".join("%.1f" % x for x in os.getloadavg()), args.batch, args.length,
                                    args.steps, args.rounds))
    model = minilm_classifier(CLASSES, max_length=args.length)
    ours = keras.Model(model.input, model.output["probabilities"])
    theirs, _ = keras_hub_classifier(model, args.length)
    ds, probe = batches(args.steps, args.batch, args.length)
    p_ours = np.asarray(ours(probe, training=False))
    p_theirs = np.asarray(theirs(probe, training=False))
    diff = float(np.abs(p_ours - p_theirs).max())
    # keras-hub's BertBackbone uses the tanh approximation of GELU (keras_hub gelu_approximate);
    # BERT, Hugging Face and ours use the exact erf form: a small, expected difference.
    print("same weights: max |probabilities ours - keras-hub| = %.2e (keras-hub's GELU is the tanh "
          "approximation, ours the exact erf form of BERT)" % diff)
    if diff > 1e-2:
        print("the two models disagree; not timing them", file=sys.stderr)
        return 1
    compile_(ours), compile_(theirs)
    a, b = [], []
    for _ in range(args.rounds):
        a.append(timed_fit(ours, ds, args.steps, args.batch))
        b.append(timed_fit(theirs, ds, args.steps, args.batch))
    ratio = np.median(a) / np.median(b)
    print("fine-tuning examples/s (median of %d): attn_tf MiniLM %.1f, keras-hub BertBackbone %.1f, ratio %.3f "
          "(target >= 0.95) %s" % (args.rounds, np.median(a), np.median(b), ratio, "PASS" if ratio >= 0.95 else "MISS"))
    print("rounds: ours %s; keras-hub %s; load average after: %s" % (
        ", ".join("%.1f" % x for x in a), ", ".join("%.1f" % x for x in b),
        " ".join("%.1f" % x for x in os.getloadavg())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
