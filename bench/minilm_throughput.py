#!/usr/bin/env python
"""MiniLM fine-tuning throughput: attn-tf's layers vs keras-hub's BertBackbone, side by side in one run.

Both sides are all-MiniLM-L6-v2 (6 layers, 12 heads, hidden 384, exact GELU,
eps 1e-12) with the SAME weights (ours loaded from model.safetensors, copied
variable by variable into keras-hub's BertBackbone, and checked: the
probabilities must agree within 1e-2 before anything is timed; keras-hub's
BERT uses the tanh GELU approximation, ours the exact erf form), the same head
(masked mean pooling -> dropout 0.1 -> Dense softmax), the same optimizer
(Adam), the same compile settings and the same batches of token ids.

Timing: each round runs `--steps` optimizer steps (Keras' own compiled train
step, `train_on_batch`) of each model, in the order ours, keras-hub in even
rounds and keras-hub, ours in odd ones (ABBA), so drift on a shared machine
hits both alike. Each round gives a ratio (ours / keras-hub examples/s) by
wall clock and by CPU time (the process's CPU seconds: on a machine shared
with other jobs the wall clock mostly measures the other jobs, the CPU time
the work itself); the medians of the per-round ratios are reported, with the
load average before and after. Target: ours / keras-hub >= 0.95.

keras-hub is only a bench extra (pip install -e '.[bench]'); it installs
beside keras==3.15.1 / TensorFlow 2.21 without changing them (checked with
keras-hub 0.32.0).

    python bench/minilm_throughput.py [--batch 32] [--length 64] [--steps 3] [--rounds 8]
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
    """`n` batches (ids [batch, length] 0-padded to random lengths, labels), and 4 rows to compare outputs."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 30000, size=(n * batch, length)).astype("int32")
    lengths = rng.integers(8, length + 1, size=len(ids))  # realistic padding
    ids[:, 0] = 101
    ids[np.arange(len(ids)), lengths - 1] = 102
    ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
    labels = rng.integers(0, CLASSES, size=len(ids)).astype("int32")
    return [(ids[i:i + batch], labels[i:i + batch]) for i in range(0, len(ids), batch)], ids[:4]


def compile_(m):
    m.compile(keras.optimizers.Adam(2e-5), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def timed_steps(model, batches):
    """(examples/s by wall clock, examples/s per CPU second) of `model.train_on_batch` over `batches`."""
    n = sum(len(x) for x, _ in batches)
    wall, cpu = time.perf_counter(), time.process_time()
    for x, y in batches:
        model.train_on_batch(x, y)
    return n / (time.perf_counter() - wall), n / (time.process_time() - cpu)


def load():
    return " ".join("%.1f" % x for x in os.getloadavg())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--length", type=int, default=64)
    p.add_argument("--steps", type=int, default=3, help="optimizer steps per model and round")
    p.add_argument("--rounds", type=int, default=8)
    args = p.parse_args()
    try:
        import keras_hub
    except ImportError as e:
        print("keras-hub is not installed (%s): pip install -e '.[bench]'" % e, file=sys.stderr)
        return 2
    keras.utils.set_random_seed(0)
    print("tensorflow %s, keras %s, keras-hub %s, %d CPU cores, load average %s; batch %d x %d tokens, "
          "%d steps x %d rounds" % (tf.__version__, keras.__version__, keras_hub.__version__, os.cpu_count(),
                                    load(), args.batch, args.length,
                                    args.steps, args.rounds))
    model = minilm_classifier(CLASSES, max_length=args.length)
    ours = keras.Model(model.input, model.output["probabilities"])
    theirs, _ = keras_hub_classifier(model, args.length)
    if min(args.batch, args.length, args.steps, args.rounds) < 1 or args.length < 8:
        p.error("--batch, --steps and --rounds must be >= 1 and --length >= 8")
    steps, probe = batches(max(args.steps, 2), args.batch, args.length)
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
    for m in (ours, theirs):  # trace and warm up
        timed_steps(m, steps[:2])
    rates = {"ours": [], "keras-hub": []}
    ratios = []  # (wall, cpu) per round
    for r in range(args.rounds):
        order = (("ours", ours), ("keras-hub", theirs))
        got = {}
        for name, m in order if r % 2 == 0 else order[::-1]:
            got[name] = timed_steps(m, steps[:args.steps])
            rates[name].append(got[name])
        ratios.append((got["ours"][0] / got["keras-hub"][0], got["ours"][1] / got["keras-hub"][1]))
    ours_rate, hub_rate, ratios = np.median(rates["ours"], 0), np.median(rates["keras-hub"], 0), np.array(ratios)
    for i, what in enumerate(("wall clock", "CPU time")):
        ratio = float(np.median(ratios[:, i]))
        print("fine-tuning examples/s by %s (median of %d rounds): attn_tf MiniLM %.2f, keras-hub BertBackbone "
              "%.2f; median per-round ratio %.3f (rounds %s; target >= 0.95) %s" % (
                  what, args.rounds, ours_rate[i], hub_rate[i], ratio,
                  " ".join("%.2f" % x for x in ratios[:, i]), "PASS" if ratio >= 0.95 else "MISS"))
    print("(per CPU second: examples per second of this process's CPU time, all threads.) "
          "load average after: %s" % load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
