#!/usr/bin/env python
"""Decoding throughput of the exported seq2seq signature (sentences/s).

Exports a trained seq2seq run into a temporary directory once per decoder
and search (`export_run(..., beam_size=K, jit_compile=...)`: the interpreted
tf.while_loop, the export's default, and the XLA-compiled search of
`python -m attn_tf.export --xla`), loads each SavedModel as a server would
(`tf.saved_model.load`, the `serving_default` signature) and times batches of
held-out sources of the run's dataset (the test split of cmudict / de_en /
the --data file), after a warm-up that calls one batch of each padded source
width (XLA compiles once per shape). The output tokens of every decoder are
compared with the interpreted decoder's, batch by batch. Besides sentences/s
(wall clock) it prints the CPU time per batch (all threads), which other
processes on a shared machine disturb less than the wall clock.

    python bench/decode_throughput.py                       # newest seq2seq run under runs/
    python bench/decode_throughput.py --run-dir runs/seq2seq_gru-cmudict-... --beams 1,4
    python bench/decode_throughput.py --decoders xla        # the --xla export only
    python bench/decode_throughput.py --untrained           # no run needed: a fresh cmudict-sized model
    python bench/decode_throughput.py --clients 2           # two requests at once (server throughput)

Target (issue): >= 10,000 sentences/s for greedy GRU decoding at batch 64 on
2 CPU cores. `--untrained` is for a quick look only: an untrained model does
not stop early, so it decodes to the maximum length and is much slower.
"""

import argparse
import glob
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


TARGET_GREEDY = 10000  # sentences/s (issue: greedy GRU at batch 64 on 2 cores)
TARGET_BEAM4 = 4000  # sentences/s (issue: beam 4, same setting)
DECODERS = {"interpreted": False, "xla": True}  # --decoders name -> export_run(jit_compile=...)


def newest_run(logdir):
    runs = []
    for config_path in glob.glob(os.path.join(logdir, "*", "config.json")):
        run = os.path.dirname(config_path)
        try:
            with open(config_path) as f:
                model = json.load(f).get("model", "")
        except (OSError, ValueError):
            continue
        if model.startswith("seq2seq") and os.path.isfile(os.path.join(run, "model.keras")):
            runs.append((model == "seq2seq_gru", os.path.getmtime(os.path.join(run, "model.keras")), run))
    if not runs:
        sys.exit("no finished seq2seq run under %s; train one first: python train.py --model seq2seq_gru" % logdir)
    return max(runs)[2]


def untrained_run(directory):
    """A run directory with an untrained cmudict-sized GRU (for a quick look without training)."""
    from attn_tf.training import run_dir as rd
    from attn_tf.training.seq2seq_trainer import build_seq2seq_model, build_vocabularies, load_seq2seq_data

    config = {"model": "seq2seq_gru", "dataset": "cmudict", "data": None, "seed": 0, "max_length": 64,
              "vocab_size": 20000, "attention": "additive", "beam_size": 1}
    data = load_seq2seq_data(config)
    source_vocab, target_vocab = build_vocabularies(data, config)
    model = build_seq2seq_model(config, source_vocab.size, target_vocab.size)
    source_vocab.save(os.path.join(directory, "source_vocab.json"))
    target_vocab.save(os.path.join(directory, "target_vocab.json"))
    model.save(os.path.join(directory, "model.keras"))
    rd.save_config(directory, config)
    return directory


def warmup_batches(run, batches):
    """Indexes of one batch per (rows, padded source width): the shapes XLA compiles for."""
    from attn_tf.data.seq2seq_vocab import SequenceVocabulary
    from attn_tf.decoding.compiled import SOURCE_BUCKET

    vocab = SequenceVocabulary.load(os.path.join(run, "source_vocab.json"))
    first = {}
    for i, b in enumerate(batches):
        width = int(vocab.encode(b)[0].shape[1])
        first.setdefault((len(b), -(-max(width, 1) // SOURCE_BUCKET)), i)
    return sorted(first.values())


def measure(signature, batches, seconds, warmup, clients=1):
    """Sentences/s over passes of `batches` (at least one, until `seconds`) and the first pass's tokens.

    `clients` > 1: that many threads call the signature at once, each on its share of the batches (a
    server answering concurrent requests; TensorFlow releases the GIL while a call runs), after one
    untimed pass in order that gives the tokens.
    """
    import threading

    import tensorflow as tf

    tensors = [tf.constant(b, tf.string) for b in batches]
    for i in warmup:
        signature(text=tensors[i])
    tokens = [] if clients == 1 else [signature(text=t)["tokens"] for t in tensors]
    counts = [[0, 0, 0] for _ in range(clients)]  # per client: batches, sentences, output steps
    load = os.getloadavg()[0]
    start, cpu_start = time.perf_counter(), time.process_time()

    def client(k):
        mine = tensors[k::clients] or tensors[:1]
        while True:
            for t in mine:
                out = signature(text=t)
                counts[k][0] += 1
                counts[k][1] += int(t.shape[0])
                counts[k][2] += int(out["tokens"].shape[1])
                if clients == 1 and len(tokens) < len(tensors):
                    tokens.append(out["tokens"])
            if time.perf_counter() - start >= seconds:
                return

    if clients == 1:
        client(0)
    else:
        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    elapsed = time.perf_counter() - start
    done, sentences, out_tokens = (sum(c[i] for c in counts) for i in range(3))
    cpu_ms = (time.process_time() - cpu_start) / max(done, 1) * 1e3
    return {"sentences_per_s": sentences / elapsed, "batches": done, "seconds": elapsed, "cpu_ms_per_batch": cpu_ms,
            "mean_steps": out_tokens / max(done, 1), "load": (load + os.getloadavg()[0]) / 2,
            "clients": clients}, tokens


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", default=None, help="a finished seq2seq run (default: newest under --logdir)")
    p.add_argument("--logdir", default="runs")
    p.add_argument("--untrained", action="store_true", help="use a fresh, untrained cmudict-sized GRU")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--beams", default="1,4", help="comma-separated beam sizes (1 = greedy)")
    p.add_argument("--decoders", default="interpreted,xla",
                   help="comma-separated: interpreted (the tf.while_loop, before the speed-up), xla (the "
                        "XLA-compiled search of export --xla)")
    p.add_argument("--max-batches", type=int, default=100, help="distinct batches of held-out sources")
    p.add_argument("--seconds", type=float, default=10.0, help="timed seconds per beam size")
    p.add_argument("--threads", type=int, default=0,
                   help="TensorFlow intra- and inter-op threads (default 0: TensorFlow's choice)")
    p.add_argument("--clients", type=int, default=1,
                   help="concurrent callers of the signature (default 1: one call at a time; 2 on 2 cores: "
                        "a server answering two requests at once)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.clients < 1:
        p.error("--clients must be >= 1, got %d" % args.clients)
    decoders = [d.strip() for d in args.decoders.split(",") if d.strip()]
    unknown = [d for d in decoders if d not in DECODERS]
    if unknown or not decoders:
        p.error("--decoders: unknown %s (choose from %s)" % (", ".join(unknown) or "(none)", ", ".join(DECODERS)))

    import numpy as np
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import tensorflow_text  # noqa: F401  (ops of the signature)

    from attn_tf.data.seq2seq_datasets import group_references
    from attn_tf.export import export_run
    from attn_tf.training import run_dir as rd
    from attn_tf.training.seq2seq_trainer import load_seq2seq_data

    tmp = tempfile.mkdtemp(prefix="decode-bench-")
    run = untrained_run(os.path.join(tmp, "run")) if args.untrained else (args.run_dir or newest_run(args.logdir))
    config = rd.load_config(run) if not args.untrained else json.load(open(os.path.join(run, "config.json")))
    data = load_seq2seq_data(config)
    sources, _ = group_references(data.test_sources, data.test_targets)
    rng = np.random.default_rng(0)
    sources = [sources[i] for i in rng.permutation(len(sources))]
    n = max(len(sources) // args.batch_size, 1)
    batches = [sources[i * args.batch_size:(i + 1) * args.batch_size] for i in range(min(n, args.max_batches))]
    warmup = warmup_batches(run, batches)

    rows = []
    for beam in [int(b) for b in args.beams.split(",")]:
        first_tokens = None
        for decoder in decoders:
            info = export_run(run, base_dir=os.path.join(tmp, "saved"), name="bench_beam%d_%s" % (beam, decoder),
                              log=lambda *a: None, beam_size=beam, jit_compile=DECODERS[decoder])
            signature = tf.saved_model.load(info["path"]).signatures["serving_default"]
            result, tokens = measure(signature, batches, args.seconds, warmup, clients=args.clients)
            if first_tokens is None:
                first_tokens, same = (decoder, tokens), None
            else:
                same = all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(first_tokens[1], tokens))
            result.update(beam_size=beam, decoding="greedy" if beam == 1 else "beam %d" % beam, decoder=decoder,
                          same_tokens_as=first_tokens[0] if same is not None else None, same_tokens=same)
            rows.append(result)
            if not args.json:
                print("%-8s %-11s %8.0f sentences/s  (%d batches of %d in %.1f s, %.1f ms of CPU per batch, "
                      "%.1f decode steps per batch, load %.1f)%s" % (
                          result["decoding"], decoder, result["sentences_per_s"], result["batches"],
                          args.batch_size, result["seconds"], result["cpu_ms_per_batch"], result["mean_steps"],
                          result["load"],
                          "" if same is None else "; same tokens as %s: %s" % (first_tokens[0], same)),
                      flush=True)
    summary = {
        "run": run, "model": config["model"], "dataset": config.get("dataset") or config.get("data"),
        "batch_size": args.batch_size, "cpu_count": os.cpu_count(), "threads": args.threads or "default",
        "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU", "results": rows,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print("\n| model | dataset | decoding | decoder | batch | sentences/s | CPU ms / batch | load | same tokens |\n"
              "|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print("| %s | %s | %s | %s | %d | %.0f | %.1f | %.1f | %s |" % (
                summary["model"], summary["dataset"], r["decoding"], r["decoder"], args.batch_size,
                r["sentences_per_s"], r["cpu_ms_per_batch"], r["load"],
                "-" if r["same_tokens"] is None else r["same_tokens"]))
        print()
        for r in rows:
            target = {1: TARGET_GREEDY, 4: TARGET_BEAM4}.get(r["beam_size"])
            base = next(b for b in rows if b["beam_size"] == r["beam_size"])
            print("%s %s: %.2f of the target %s%s" % (
                r["decoding"], r["decoder"], r["sentences_per_s"] / target if target else float("nan"),
                "(%d sentences/s, seq2seq_gru, batch 64, 2 cores: %s)" % (
                    target, "met" if r["sentences_per_s"] >= target else "MISSED") if target else "(none)",
                "" if base is r else "; %.2fx %s" % (r["sentences_per_s"] / base["sentences_per_s"],
                                                     base["decoder"])))
        print("\n(%s, %d CPU cores visible, TensorFlow threads: %s; exported SavedModel, serving_default "
              "signature; %d concurrent client%s)" % (summary["device"], summary["cpu_count"], summary["threads"],
                                                    args.clients, "" if args.clients == 1 else "s"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
