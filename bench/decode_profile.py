#!/usr/bin/env python
"""Where the time of a seq2seq decode goes on this CPU, measured side by side.

Explains bench/decode_throughput.py: prints (1) the cost of single small
TensorFlow ops inside a tf.while_loop (the executor overhead every decode step
pays per op) next to the matmuls of the GRU, and (2) the per-batch time of
each stage of decoding a trained run: tokenising, encoding, the whole greedy
decode, and the same search compiled whole with XLA
(`decode(..., jit_compile=True)`, checked to give identical ids).

    python bench/decode_profile.py --run-dir runs/seq2seq_gru-cmudict-...
    python bench/decode_profile.py --ops-only       # part (1) only, no run needed
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ITERATIONS = 100


def per_call(fn, args, seconds):
    """Mean seconds per call of fn over `args` (each warmed up first)."""
    for a in args:
        fn(*a)
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        for a in args:
            fn(*a)
            calls += 1
    return (time.perf_counter() - start) / calls


def op_costs(seconds):
    """(name, microseconds per loop iteration) of one op in a tf.while_loop of ITERATIONS."""
    import tensorflow as tf

    def looped(step, init):
        return tf.function(lambda: tf.while_loop(lambda i, a: i < ITERATIONS, lambda i, a: (i + 1, step(a)),
                                                 (0, init))[1])

    h, w = tf.random.normal([64, 256]), tf.random.normal([256, 768])
    x2, w2 = tf.random.normal([2, 64, 128]), tf.random.normal([2, 128, 384])
    cases = [
        ("empty iteration (loop counter only)", lambda a: a, tf.zeros([64, 256])),
        ("tanh [64, 256]", tf.tanh, tf.zeros([64, 256])),
        ("sigmoid [2, 64, 128]", tf.sigmoid, tf.zeros([2, 64, 128])),
        ("softmax [64, 14]", tf.nn.softmax, tf.zeros([64, 14])),
        ("matmul [64,256]x[256,768] (decoder GRU)", lambda a: a + tf.matmul(h, w), tf.zeros([64, 768])),
        ("batched matmul [2,64,128]x[2,128,384] (encoder GRU)", lambda a: a + tf.matmul(x2, w2),
         tf.zeros([2, 64, 384])),
    ]
    rows = []
    for name, step, init in cases:
        rows.append((name, per_call(looped(step, init), [()], seconds) / ITERATIONS * 1e6))
    return rows


def stage_costs(run_dir, batch_size, seconds):
    import numpy as np
    import tensorflow as tf

    from attn_tf.data.seq2seq_datasets import group_references
    from attn_tf.decoding import decode
    from attn_tf.training.seq2seq_trainer import decode_max_length, load_run, load_seq2seq_data

    config, model, source_vocab, _ = load_run(run_dir)
    data = load_seq2seq_data(config)
    sources, _ = group_references(data.test_sources, data.test_targets)
    sources = [sources[i] for i in np.random.default_rng(0).permutation(len(sources))]
    batches = [sources[i:i + batch_size] for i in range(0, min(len(sources), 50 * batch_size), batch_size)]
    texts = [(tf.constant(b),) for b in batches]
    ids = [(source_vocab.encode(t)[0],) for (t,) in texts]
    max_length = decode_max_length(config)
    ids_spec = [tf.TensorSpec([None, None], tf.int32)]

    tokenize = tf.function(lambda t: source_vocab.encode(t)[0], input_signature=[tf.TensorSpec([None], tf.string)])
    encode = tf.function(lambda x: model.encode(x)["memory"], input_signature=ids_spec)
    greedy = tf.function(lambda x: decode(model, x, max_length)["ids"], input_signature=ids_spec)
    rows = [("tokenise (tensorflow-text)", per_call(tokenize, texts, seconds)),
            ("encode (fused BiGRU loop)" if config["model"] == "seq2seq_gru" else "encode",
             per_call(encode, ids, seconds)),
            ("greedy decode (encode + decoder loop)", per_call(greedy, ids, seconds))]
    reference = [greedy(*a).numpy() for a in ids]

    # The whole search (encoder, loop, early exit) as one XLA executable
    # (attn_tf.decoding.compiled); the first call of each padded shape compiles.
    xla = tf.function(lambda x: decode(model, x, max_length, jit_compile=True)["ids"], input_signature=ids_spec)
    rows.append(("greedy decode, whole search XLA-compiled", per_call(xla, ids, seconds)))
    same = all(np.array_equal(r, xla(*a).numpy()) for r, a in zip(reference, ids))
    return rows, same, len(ids)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", help="a finished seq2seq run (train.py --model seq2seq_gru ...)")
    p.add_argument("--ops-only", action="store_true", help="only the per-op costs (no run needed)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    args = p.parse_args(argv)
    if not args.ops_only and not args.run_dir:
        p.error("--run-dir RUN is required (or --ops-only)")

    print("One op inside a tf.while_loop (%d iterations), per iteration:" % ITERATIONS)
    ops = op_costs(args.seconds)
    base = ops[0][1]
    for name, us in ops:
        print("  %-55s %7.1f us  (%.1fx the empty iteration)" % (name, us, us / base))
    if args.ops_only:
        return 0
    rows, same, n = stage_costs(args.run_dir, args.batch_size, args.seconds)
    print("\nStages of decoding %d batches of %d held-out sources, per batch:" % (n, args.batch_size))
    greedy = rows[2][1]
    for name, s in rows:
        print("  %-55s %7.2f ms  (%.2fx greedy decode; %.0f sentences/s)" % (
            name, s * 1e3, s / greedy, args.batch_size / s))
    print("  XLA-compiled decode gives identical ids: %s" % same)
    return 0


if __name__ == "__main__":
    sys.exit(main())
