#!/usr/bin/env python
"""Serving speed of the exported SavedModel, measured side by side in one run.

(a) throughput at batch 64 of the loaded `serving_default` signature (raw strings in, tokenizer
    inside) over the in-memory Keras model on the same texts. Keras side = TextVectorizer + the
    model (comparable work), at its fastest: the vectorizer inside a tf.function (as in the tf.data
    pipeline) and Keras' compiled `model.predict_on_batch`. Target: ratio >= 0.9.
    Also shown: the naive in-memory path, an eager `vectorizer(texts)` call (tensorflow-text
    tokenizers are slow eagerly: ~0.1 s a call) + predict_on_batch.
(b) p50 latency at batch 1 of the signature (p90, and the Keras side, for context).

Rounds alternate A, B, ... so drift on a shared machine hits both sides; medians are reported.

    python bench/serving_latency.py [RUN_DIR] [--batches 20] [--rounds 5] [--requests 200]

RUN_DIR defaults to the newest finished run under runs/ (one with model.keras); with none, a small
bilstm_attention run is trained on a generated dataset first (about a minute).
"""

import argparse
import glob
import os
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402


def newest_run(logdir):
    runs = [os.path.dirname(p) for p in glob.glob(os.path.join(logdir, "*", "model.keras"))]
    runs = [r for r in runs if os.path.isfile(os.path.join(r, "vectorizer.json"))
            and os.path.isfile(os.path.join(r, "config.json"))
            and _is_classifier(r)]
    return max(runs, key=lambda r: os.path.getmtime(os.path.join(r, "model.keras"))) if runs else None


def _is_classifier(run):
    import json

    with open(os.path.join(run, "config.json")) as f:
        return json.load(f).get("model") in ("bilstm_attention", "transformer")


def train_small(tmp):
    import train as train_script

    sys.path.insert(0, os.path.join(ROOT, "tests", "training"))
    from synthetic import write_csv

    csv_path = write_csv(os.path.join(tmp, "reviews.csv"), n=2000)
    code = train_script.main(["--data", csv_path, "--text-column", "review", "--label-column", "sentiment",
                              "--logdir", os.path.join(tmp, "runs"), "--epochs", "1", "--verbose", "0",
                              "--no-export", "--probe-examples", "1"])
    if code != 0:
        sys.exit("training the small benchmark run failed")
    return newest_run(os.path.join(tmp, "runs"))


def bench_texts(run, n):
    """Texts of the run's own test split when it can be loaded, else sentences of vocabulary words."""
    from attn_tf.export.run import RunDir
    from attn_tf.training.trainer import load_data

    try:
        texts = list(load_data(RunDir(run).config).test_texts)
    except Exception:  # noqa: BLE001 - the data may be gone; fall back to generated texts
        texts = []
    if not texts:
        from attn_tf.data import TextVectorizer

        vocab = TextVectorizer.load(os.path.join(run, "vectorizer.json")).vocabulary[2:] or ["word"]
        rng = np.random.default_rng(0)
        texts = [" ".join(rng.choice(vocab, size=rng.integers(5, 40))) for _ in range(512)]
    reps = -(-n // len(texts))
    return (texts * reps)[:n]


def timed(fn, arg):
    t = time.perf_counter()
    fn(arg)
    return time.perf_counter() - t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", nargs="?", default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=20, help="batches per round and side (default 20)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--requests", type=int, default=200, help="batch-1 requests for the latency (default 200)")
    args = p.parse_args(argv)
    import tensorflow_text  # noqa: F401

    tmp = tempfile.mkdtemp(prefix="serving_bench_")
    try:
        return _bench(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _bench(args, tmp):
    import keras
    import tensorflow as tf

    from attn_tf.data import TextVectorizer
    from attn_tf.export import export_run
    from attn_tf.export.run import RunDir

    run = args.run_dir or newest_run(os.path.join(ROOT, "runs")) or train_small(tmp)
    summary = export_run(run, base_dir=os.path.join(tmp, "saved_models"), log=lambda *a: None)
    signature = tf.saved_model.load(summary["path"]).signatures["serving_default"]

    vectorizer = TextVectorizer.load(os.path.join(run, "vectorizer.json"))
    model = RunDir(run).load_keras_model()

    B = args.batch_size
    texts = bench_texts(run, B * args.batches)
    batches = [tf.constant(texts[i:i + B]) for i in range(0, len(texts), B)]

    def run_signature(batch):
        return signature(text=batch)["probabilities"].numpy()

    vectorize = tf.function(vectorizer.__call__, input_signature=[tf.TensorSpec([None], tf.string)])

    def run_keras_predict(batch):
        ids, _ = vectorize(batch)
        return model.predict_on_batch(ids)["probabilities"]

    def run_keras_eager_vectorizer(batch):
        ids, _ = vectorizer(batch)
        return model.predict_on_batch(ids)["probabilities"]

    sides = {"signature": run_signature, "keras": run_keras_predict,
             "keras, eager vectorizer": run_keras_eager_vectorizer}
    # Same answers (up to float rounding) before timing anything.
    ref = run_keras_predict(batches[0])
    diff = float(np.abs(run_signature(batches[0]) - ref).max())
    assert diff <= 1e-5, "signature and Keras model disagree by %g" % diff
    for fn in sides.values():  # warm up (tracing, table init, thread pools)
        for b in batches[:3]:
            fn(b)

    rates = {k: [] for k in sides}
    cpu_rates = {k: [] for k in sides}  # texts per CPU-second of this process: steadier on a shared machine
    for _ in range(args.rounds):
        for name, fn in sides.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            for b in batches:
                fn(b)
            rates[name].append(len(texts) / (time.perf_counter() - start))
            cpu_rates[name].append(len(texts) / (time.process_time() - cpu_start))
    med = {k: statistics.median(v) for k, v in rates.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu_rates.items()}

    singles = [tf.constant([t]) for t in texts[: args.requests]]
    lat = {"signature": [], "keras": []}
    for x in singles:  # interleaved
        lat["signature"].append(timed(run_signature, x))
        lat["keras"].append(timed(run_keras_predict, x))
    pct = {k: (np.percentile(v, 50) * 1e3, np.percentile(v, 90) * 1e3) for k, v in lat.items()}

    cfg = RunDir(run).config
    print("run: %s (%s, max_length %d, %d classes); exported to a temporary directory" % (
        run, cfg["model"], vectorizer.max_length, len(summary["class_names"])))
    print("device: %s; TF %s, Keras %s; %d texts, %d rounds" % (
        "GPU" if tf.config.list_logical_devices("GPU") else "CPU (%d cores)" % os.cpu_count(),
        tf.__version__, keras.__version__, len(texts), args.rounds))
    print("throughput at batch %d, median of rounds (texts per wall-clock s | per CPU-s of this process):" % B)
    for name in sides:
        print("  %-24s %7.0f | %7.0f   wall rounds: %s" % (
            name, med[name], cpu_med[name], " ".join("%.0f" % r for r in rates[name])))
    for label, m in (("wall", med), ("CPU", cpu_med)):
        ratio = m["signature"] / m["keras"]
        print("  signature / keras (%s) = %.2f (target >= 0.9: %s);  / keras with eager vectorizer = %.2f" % (
            label, ratio, "met" if ratio >= 0.9 else "NOT met", m["signature"] / m["keras, eager vectorizer"]))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print("  (load average %.1f on %d cores: wall-clock numbers are noisy when it exceeds the cores)" % (
        load, os.cpu_count()))
    print("latency at batch 1 over %d requests (ms):" % len(singles))
    for name, (p50, p90) in pct.items():
        print("  %-24s p50 %6.2f   p90 %6.2f" % (name, p50, p90))
    return 0


if __name__ == "__main__":
    sys.exit(main())
