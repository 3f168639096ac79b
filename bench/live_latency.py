"""Latency of a typed text in the Attention tab, request to drawn canvas, and TensorBoard's memory.

    python bench/live_latency.py [--texts 20] [--memory-texts 50] [--keep DIR]

Builds two exported runs at the project's default sizes (64 tokens), untrained
(latency does not depend on the weights): a BiLSTM (bilstm_attention defaults)
and a 6-layer Transformer (transformer defaults, num_layers=6: 6 blocks x 4
heads), each exported as train.py does and recorded in its results.json.
Starts `tensorboard` (Rust data server, the plugin from its entry point),
opens the tab in headless Chromium and, per model, in the page:

* types a text and measures from the request (POST ./live) to the heatmap
  view's canvas drawn (the next animation frame after the view's update):
  the first text includes the model load (reported separately: the server's
  load + warm-up time), then --texts different texts   (targets: BiLSTM
  p50 <= 300 ms, 6-layer Transformer p50 <= 1000 ms, after load);
* the resident memory (VmRSS) of the TensorBoard process after both models
  are loaded and after --memory-texts more different texts (bound: growth
  <= 200 MB; the plugin's result cache is capped at 64 MB, live.RESULT_CACHE_BYTES).

Prints each figure with its target, the ratio to it and PASS/MISS, and the
load average (the machine is shared: timings under load).
"""

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from tb_plugin.local_tensorboard import start_tensorboard  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
WORDS = ("the film was great fun and the plot was not boring but the acting was bad a movie with "
         "wonderful music terrible dialogue slow pacing brilliant ending").split()
MAX_LENGTH = 64
TARGETS_MS = {"bilstm": 300.0, "transformer6": 1000.0}
MEMORY_BOUND_MB = 200.0


def build_runs(root):
    """Two exported runs under root/logs (results.json "export" as train.py writes it)."""
    import keras
    import numpy as np

    from attn_tf.data import TextVectorizer
    from attn_tf.export import export_run
    from attn_tf.models import build_classifier
    from tb_plugin import metadata, summary

    rng = random.Random(0)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 40))) for _ in range(200)]
    runs = {}
    for name, kind, sizes in [("bilstm", "bilstm_attention", {}), ("transformer6", "transformer", {"num_layers": 6})]:
        run = os.path.join(root, "logs", name)
        os.makedirs(run)
        vec = TextVectorizer.adapt(texts, max_length=MAX_LENGTH, min_count=1)
        vec.save(os.path.join(run, "vectorizer.json"))
        keras.utils.set_random_seed(0)
        model = build_classifier(kind, vocab_size=vec.vocabulary_size, num_classes=2, max_length=MAX_LENGTH, **sizes)
        model.save(os.path.join(run, "model.keras"))
        with open(os.path.join(run, "config.json"), "w") as f:
            json.dump({"model": kind, "dataset": name, "max_length": MAX_LENGTH, "class_names": ["neg", "pos"]}, f)
        start = time.perf_counter()
        info = export_run(run, base_dir=os.path.join(root, "saved_models"), log=lambda *a: None)
        print("exported %s in %.1f s -> %s" % (name, time.perf_counter() - start, info["path"]), flush=True)
        with open(os.path.join(run, "results.json"), "w") as f:
            json.dump({"model": kind, "export": info}, f)
        # One probe summary, so that the run is a TensorBoard run (as train.py's attention/ is).
        layer = metadata.make_layer("attention_pooling", "pooling", (1, 1, 2), query=None)
        header = metadata.make_header({"input": ["a", "b"]}, [layer])
        with summary.AttentionEventWriter(os.path.join(run, "attention")) as w:
            w.add(header, [np.full((1, 1, 2), 0.5, np.float32)], step=0, tag=metadata.probe_tag(0))
        runs[name] = name + "/attention"
    return runs


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


TYPE_AND_DRAW = """async ({run, text}) => {
  const app = window.attentionApp, panel = app.livePanel;
  panel.runSel.value = run;
  panel.text.value = text;
  const t0 = performance.now();
  await panel.run();                       // POST ./live, decode, showLive -> the view's update
  await new Promise((r) => requestAnimationFrame(() => r()));
  const ms = performance.now() - t0;
  const ok = app.appNode.dataset.state === "ready" && document.querySelectorAll("canvas.hm-canvas, .pool-tok").length > 0;
  return {ms, ok, status: panel.status.textContent, load: panel.answer ? panel.answer.load_seconds : null,
          inference: panel.answer ? panel.answer.inference_seconds : null};
}"""


def text_for(rng, n_words):
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--texts", type=int, default=20, help="timed texts per model after the load (default 20)")
    p.add_argument("--memory-texts", type=int, default=50, help="texts for the memory check (default 50)")
    p.add_argument("--keep", help="build the runs in this directory and keep them (default: a temp dir)")
    args = p.parse_args(argv)

    from playwright.sync_api import sync_playwright

    root = args.keep or tempfile.mkdtemp(prefix="live_latency_")
    if not os.path.isdir(os.path.join(root, "logs")):
        runs = build_runs(root)
    else:
        runs = {"bilstm": "bilstm/attention", "transformer6": "transformer6/attention"}
    proc, base = start_tensorboard(os.path.join(root, "logs"))
    rng = random.Random(1)
    results = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(base + "/data/plugin_entry.html?name=attention")
            page.wait_for_selector("#attn-app[data-state=ready]", state="attached", timeout=120000)
            page.click("#live-toggle")
            page.wait_for_function("() => document.querySelectorAll('#live-run-select option').length === 2",
                                   timeout=60000)
            rss_start = rss_mb(proc.pid)
            for name, run in runs.items():
                first = page.evaluate(TYPE_AND_DRAW, {"run": run, "text": text_for(rng, 20)})
                assert first["ok"], first
                timed = []
                for i in range(args.texts):
                    r = page.evaluate(TYPE_AND_DRAW, {"run": run, "text": text_for(rng, 8 + (i * 7) % 50)})
                    assert r["ok"], r
                    timed.append(r)
                ms = sorted(r["ms"] for r in timed)
                results[name] = {"first_ms": first["ms"], "load_s": first["load"],
                                 "p50": statistics.median(ms), "p95": ms[int(0.95 * (len(ms) - 1))],
                                 "server_ms": statistics.median(r["inference"] * 1000 for r in timed)}
            rss_loaded = rss_mb(proc.pid)
            names = list(runs)
            for i in range(args.memory_texts):
                run = runs[names[i % len(names)]]
                r = page.evaluate(TYPE_AND_DRAW, {"run": run, "text": "%d %s" % (i, text_for(rng, 30))})
                assert r["ok"], r
            rss_end = rss_mb(proc.pid)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    print("\nTyped text -> drawn canvas, headless Chromium, heatmaps view (load average %s)"
          % " ".join("%.2f" % x for x in os.getloadavg()))
    for name, r in results.items():
        target = TARGETS_MS[name]
        print("  %-13s model load (server: load + warm-up) %.1f s; first text %.0f ms" % (name, r["load_s"] or float("nan"), r["first_ms"]))
        print("  %-13s after load: p50 %.0f ms, p95 %.0f ms (server inference p50 %.0f ms); target p50 <= %.0f ms: "
              "ratio %.2f %s" % (name, r["p50"], r["p95"], r["server_ms"], target, r["p50"] / target,
                                 "PASS" if r["p50"] <= target else "MISS"))
    growth = rss_end - rss_loaded
    print("  memory: TensorBoard RSS %.0f MB before the models, %.0f MB with both loaded, %.0f MB after %d more "
          "texts: growth %.0f MB, bound %.0f MB: %s" % (rss_start, rss_loaded, rss_end, args.memory_texts, growth,
                                                       MEMORY_BOUND_MB, "PASS" if growth <= MEMORY_BOUND_MB else "MISS"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
