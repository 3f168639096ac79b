#!/usr/bin/env python
"""Serving speed and response sizes of an exported classifier, measured side by side in one run.

(a) throughput at batch 64 (texts/s, raw strings in, tokenizer inside) of the loaded signatures
      predict           no attention (Transformer blocks on keras.ops.dot_product_attention)
      serving_default   prediction + one [B, T] explanation
      attention         the full tensors (layers/heads empty = all)
    beside
      keras             the plain in-memory Keras model: the tokenizer inside a tf.function (as in the
                        tf.data pipeline) + compiled `model.predict_on_batch` (its attention computed, unused)
      before            the serving_default of the previous export format (every output incl. the full
                        [B, L, H, T, T] attention), rebuilt here and exported/loaded the same way.
    Targets: predict / keras >= 1.0; attention / before ~ 1.0 (the full form is not slower than it was).
(b) bytes per example at that batch: response of every signature as TensorProtos (the gRPC payload) and as
    TF Serving REST JSON (row format; float32 written in their shortest round-trip decimal form, the JSON
    built here, not by a server), and the request. Target: serving_default <= 4 x T floats (16 T bytes).
(c) p50 latency at batch 1 (predict, serving_default, keras).

Rounds alternate the sides so drift on a shared machine hits all of them; medians are reported, with the
load average.

    python bench/serving_latency.py [RUN_DIR] [--train-model transformer] [--batches 20] [--rounds 5]

RUN_DIR defaults to the newest finished classifier run under runs/; with none, a small run is trained
first (--train-model, default bilstm_attention; --dataset movie_reviews by default, a few hundred steps,
its default sizes: what the bytes depend on).
"""

import argparse
import glob
import json
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

CLASSIFIERS = ("bilstm_attention", "transformer", "minilm")


def newest_run(logdir):
    runs = [os.path.dirname(p) for p in glob.glob(os.path.join(logdir, "*", "model.keras"))]
    runs = [r for r in runs if os.path.isfile(os.path.join(r, "vectorizer.json"))
            and os.path.isfile(os.path.join(r, "config.json")) and _is_classifier(r)]
    return max(runs, key=lambda r: os.path.getmtime(os.path.join(r, "model.keras"))) if runs else None


def _is_classifier(run):
    with open(os.path.join(run, "config.json")) as f:
        return json.load(f).get("model") in CLASSIFIERS


def train_small(tmp, model, dataset, steps):
    import train as train_script

    code = train_script.main(["--model", model, "--dataset", dataset, "--logdir", os.path.join(tmp, "runs"),
                              "--epochs", "1", "--max-steps", str(steps), "--verbose", "0", "--no-export",
                              "--probe-examples", "1"])
    if code != 0:
        sys.exit("training the small benchmark run failed")
    return newest_run(os.path.join(tmp, "runs"))


def bench_texts(run, n):
    """Texts of the run's own test split when it can be loaded, else sentences of vocabulary words."""
    from attn_tf.export.run import RunDir

    from attn_tf.data.run_data import load_classification_data as load_data
    try:
        texts = list(load_data(RunDir(run).config).test_texts)
    except Exception:  # noqa: BLE001 - the data may be gone; fall back to generated texts
        texts = []
    if not texts:
        from attn_tf.export.classifier import load_tokenizer

        vocab = load_tokenizer(RunDir(run)).vocabulary[2:] or ["word"]
        rng = np.random.default_rng(0)
        texts = [" ".join(rng.choice(vocab, size=rng.integers(5, 40))) for _ in range(512)]
    reps = -(-n // len(texts))
    return (texts * reps)[:n]


def legacy_export(model, tokenizer, class_names, path):
    """The previous serving_default (full attention as "attention"), exported the same way; its signature."""
    import keras
    import tensorflow as tf

    from attn_tf.export.classifier import INPUT, make_signatures

    full = make_signatures(model, tokenizer, class_names)["attention"]
    none = tf.constant([], tf.int32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT)])
    def before(text):  # outputs as the old export had them: probabilities, label, tokens, token_count, attention
        return full(text, none, none)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(tokenizer)
    archive.add_endpoint("serving_default", before)
    archive.write_out(path, verbose=False)
    return tf.saved_model.load(path).signatures["serving_default"]


def _json_value(v):
    if isinstance(v, np.ndarray):
        return [_json_value(x) for x in v]
    if isinstance(v, (bytes, np.bytes_)):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.floating):
        return float(str(np.float32(v)))  # shortest decimal that round-trips the float32
    if isinstance(v, np.integer):
        return int(v)
    return v


def response_bytes(outputs):
    """(TensorProto bytes, REST JSON row-format bytes) of one response, in total."""
    import tensorflow as tf

    proto = sum(tf.make_tensor_proto(v).ByteSize() for v in outputs.values())
    b = len(next(iter(outputs.values())))
    rows = [{k: _json_value(v[i]) for k, v in outputs.items()} for i in range(b)]
    rest = len(json.dumps({"predictions": rows}, separators=(",", ":")).encode("utf-8"))
    return proto, rest


def request_bytes(texts):
    import tensorflow as tf

    proto = tf.make_tensor_proto(np.array(texts, dtype=object)).ByteSize()
    rest = len(json.dumps({"instances": texts}, separators=(",", ":")).encode("utf-8"))
    return proto, rest


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", nargs="?", default=None)
    p.add_argument("--train-model", default="bilstm_attention", choices=CLASSIFIERS[:2],
                   help="model of the run trained when there is none (default bilstm_attention)")
    p.add_argument("--dataset", default="movie_reviews", help="dataset of that run (default movie_reviews)")
    p.add_argument("--train-steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=20, help="batches per round and side (default 20)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--requests", type=int, default=100, help="batch-1 requests for the latency (default 100)")
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

    from attn_tf.export import export_run
    from attn_tf.export.classifier import load_tokenizer
    from attn_tf.export.run import RunDir

    run = args.run_dir or newest_run(os.path.join(ROOT, "runs")) or train_small(
        tmp, args.train_model, args.dataset, args.train_steps)
    summary = export_run(run, base_dir=os.path.join(tmp, "saved_models"), log=lambda *a: None)
    loaded = tf.saved_model.load(summary["path"])
    sig = {name: loaded.signatures[name] for name in ("predict", "serving_default", "attention")}

    tokenizer = load_tokenizer(RunDir(run))
    model = RunDir(run).load_keras_model()
    before_sig = legacy_export(model, tokenizer, summary["class_names"], os.path.join(tmp, "before"))

    B = args.batch_size
    T = int(tokenizer.max_length)
    texts = bench_texts(run, B * args.batches)
    batches = [tf.constant(texts[i:i + B]) for i in range(0, len(texts), B)]
    none = tf.constant([], tf.int32)
    vectorize = tf.function(tokenizer.__call__, input_signature=[tf.TensorSpec([None], tf.string)])

    def run_keras(batch):
        ids, _ = vectorize(batch)
        return model.predict_on_batch(ids)["probabilities"]

    sides = {
        "predict": lambda b: sig["predict"](text=b)["probabilities"].numpy(),
        "keras": run_keras,
        "serving_default": lambda b: sig["serving_default"](text=b)["explanation"].numpy(),
        "attention (full)": lambda b: sig["attention"](text=b, layers=none, heads=none)["attention"].numpy(),
        "before (full)": lambda b: before_sig(text=b)["attention"].numpy(),
    }
    # Same answers (up to float rounding) before timing anything.
    ref = np.asarray(run_keras(batches[0]))
    for name in ("predict", "serving_default"):
        got = sig[name](text=batches[0])["probabilities"].numpy()
        diff = float(np.abs(got - ref).max())
        assert diff <= 1e-5, "%s and the Keras model disagree by %g" % (name, diff)
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
    lat = {"predict": [], "serving_default": [], "keras": []}
    for x in singles:  # interleaved
        for name in lat:
            start = time.perf_counter()
            sides[name](x)
            lat[name].append(time.perf_counter() - start)

    sizes = {"predict": sig["predict"](text=batches[0]),
             "serving_default": sig["serving_default"](text=batches[0]),
             "attention (full)": sig["attention"](text=batches[0], layers=none, heads=none)}
    n_layers = sizes["attention (full)"]["attention"].shape
    if len(n_layers) == 5:
        sizes["attention, 1 layer x 1 head"] = sig["attention"](
            text=batches[0], layers=tf.constant([n_layers[1] - 1]), heads=tf.constant([0]))
    sizes = {k: {n: v.numpy() for n, v in out.items()} for k, out in sizes.items()}

    cfg = RunDir(run).config
    attention_shape = list(sizes["attention (full)"]["attention"].shape[1:])
    print("run: %s (%s, T = max_length %d, %d classes; full attention per example %s = %d floats); exported to "
          "a temporary directory" % (run, cfg["model"], T, len(summary["class_names"]), attention_shape,
                                     int(np.prod(attention_shape))))
    print("device: %s; TF %s, Keras %s; %d texts per side and round, %d rounds" % (
        "GPU" if tf.config.list_logical_devices("GPU") else "CPU (%d cores)" % os.cpu_count(),
        tf.__version__, keras.__version__, len(texts), args.rounds))
    print("throughput at batch %d, median of rounds (texts per wall-clock s | per CPU-s of this process):" % B)
    for name in sides:
        print("  %-28s %7.0f | %7.0f   wall rounds: %s" % (
            name, med[name], cpu_med[name], " ".join("%.0f" % r for r in rates[name])))
    for label, m in (("wall", med), ("CPU", cpu_med)):
        ratio = m["predict"] / m["keras"]
        full = m["attention (full)"] / m["before (full)"]
        print("  predict / keras (%s) = %.2f (target >= 1.0: %s);  attention / before (%s) = %.2f "
              "(target ~1.0: the full form as fast as before);  serving_default / keras = %.2f" % (
                  label, ratio, "met" if ratio >= 1.0 else "NOT met", label, full, m["serving_default"] / m["keras"]))
    load = os.getloadavg()
    print("  (load average %.1f %.1f %.1f on %d cores: wall-clock numbers are noisy when it exceeds the cores)" % (
        load[0], load[1], load[2], os.cpu_count()))

    req_proto, req_rest = request_bytes(texts[:B])
    print("bytes per example at batch %d (T = %d; target for serving_default: <= 4 x T floats = %d bytes):" % (
        B, T, 16 * T))
    print("  %-28s %9s %9s   %s" % ("", "gRPC", "REST JSON", "(TensorProto bytes | JSON row format; /4 = floats)"))
    print("  %-28s %9.0f %9.0f" % ("request (text)", req_proto / B, req_rest / B))
    for name, out in sizes.items():
        proto, rest = response_bytes(out)
        verdict = ""
        if name == "serving_default":
            verdict = "  gRPC %.1f x T floats (target <= 4: %s); JSON %.1f x T" % (
                proto / B / 4 / T, "met" if proto / B <= 16 * T else "NOT met", rest / B / 4 / T)
        print("  %-28s %9.0f %9.0f%s" % ("response: " + name, proto / B, rest / B, verdict))
    print("latency at batch 1 over %d requests (ms):" % len(singles))
    for name, v in lat.items():
        print("  %-28s p50 %6.2f   p90 %6.2f" % (name, np.percentile(v, 50) * 1e3, np.percentile(v, 90) * 1e3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
