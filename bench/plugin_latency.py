"""Latency and size benchmark of the Attention tab.

    python bench/plugin_latency.py [--steps 1000] [--requests 200] [--keep DIR]

Writes one run of a 6-layer x 8-head Transformer over 128 tokens logged at
--steps steps with the TF-free `AttentionEventWriter` (in a temp dir), starts
`tensorboard --samples_per_plugin=attention=0` (the Rust data server, the
default when tensorboard-data-server is installed; the plugin must be
pip-installed) and prints, each with its target and PASS/MISS:

* server p50/p95 of `/layer?format=bin` (one layer of one step, float32) for
  random (step, layer) pairs, sequential requests        (target <= 50 ms)
* time to first render of the tab in headless Chromium: navigation start of
  `/#attention` to the heatmap canvas holding pixels       (target <= 2 s)
* event-file bytes per attention weight written           (target <= 2)
* 50 concurrent `/layer` requests (thread pool): non-200s  (target 0)
"""

import argparse
import concurrent.futures
import glob
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from tb_plugin.local_tensorboard import start_tensorboard  # noqa: E402
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
LAYERS, HEADS, TOKENS = 6, 8, 128
RUN, TAG = "transformer", "attention/probe_000"


class FastCrc32c:
    """CRC32C over large buffers with NumPy, bit-identical to tensorboard's pure-Python one.

    tensorboard's TF-free record writer checksums every record in pure Python
    (~1.5 MB/s here), which would make writing this benchmark's 1.6 GB take
    ~20 minutes. CRC is linear over GF(2): the buffer is cut into equal chunks
    whose CRCs are computed side by side (one NumPy lane per chunk) and then
    chained with the "shift by one chunk" operator. The result is checked
    against the reference implementation before it is used.
    """

    POLY = 0x82F63B78
    CHUNK = 1024

    def __init__(self):
        from tensorboard.compat.tensorflow_stub import pywrap_tensorflow as ref

        self.ref = ref
        table = np.zeros(256, dtype=np.uint32)
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ self.POLY if c & 1 else c >> 1
            table[i] = c
        self.table = table
        self.table_list = [int(x) for x in table]
        # Shift-by-CHUNK-zero-bytes operator as four byte tables.
        basis = []
        for bit in range(32):
            c = 1 << bit
            for _ in range(self.CHUNK):
                c = self.table_list[c & 0xFF] ^ (c >> 8)
            basis.append(c)
        self.shift = []
        for k in range(4):
            t = []
            for x in range(256):
                v = 0
                for b in range(8):
                    if x >> b & 1:
                        v ^= basis[8 * k + b]
                t.append(v)
            self.shift.append(t)

    def crc32c(self, data):
        data = bytes(data)
        n = len(data)
        if n < 64 * 1024:
            return self.ref.crc32c(data)
        m = n // self.CHUNK
        lanes = np.frombuffer(data, dtype=np.uint8, count=m * self.CHUNK).reshape(m, self.CHUNK).T.copy()
        state = np.zeros(m, dtype=np.uint32)
        table = self.table
        for j in range(self.CHUNK):
            state = table[(state ^ lanes[j]) & 0xFF] ^ (state >> 8)
        s = 0xFFFFFFFF
        t0, t1, t2, t3 = self.shift
        for g in state.tolist():
            s = t0[s & 0xFF] ^ t1[(s >> 8) & 0xFF] ^ t2[(s >> 16) & 0xFF] ^ t3[s >> 24] ^ g
        tl = self.table_list
        for b in data[m * self.CHUNK:]:
            s = tl[(s ^ b) & 0xFF] ^ (s >> 8)
        return s ^ 0xFFFFFFFF

    def masked_crc32c(self, data):
        x = self.crc32c(data)
        return (((x >> 15) | (x << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    def install(self):
        """Verifies against the reference, then swaps it into tensorboard's record writer."""
        from tensorboard.summary.writer import record_writer

        rng = np.random.default_rng(1)
        for n in (64 * 1024, 64 * 1024 + 1, 200_003, 1 << 20):
            buf = rng.integers(0, 256, size=n, dtype=np.uint8).tobytes()
            if self.masked_crc32c(buf) != self.ref.masked_crc32c(buf):
                print("fast CRC32C disagrees with the reference; writing at reference speed")
                return False
        record_writer.masked_crc32c = self.masked_crc32c
        return True


def write_run(logdir, steps):
    """Returns (event-file bytes, attention weights written).

    tensorboard's TF-free record writer computes CRC32C in pure Python; see
    `FastCrc32c`. With --keep, a finished logdir is reused.
    """
    marker = os.path.join(logdir, "bench_logdir.json")
    if os.path.exists(marker):
        with open(marker) as f:
            done = json.load(f)
        if done.get("steps") == steps and done.get("shape") == [LAYERS, HEADS, TOKENS, TOKENS]:
            print("reusing the logdir written earlier in %s" % logdir)
            return done["bytes"], done["weights"]
    from tb_plugin import metadata, summary

    FastCrc32c().install()

    rng = np.random.default_rng(0)
    tokens = ["[CLS]"] + ["tok%03d" % i for i in range(TOKENS - 2)] + ["[SEP]"]
    base = rng.normal(size=(LAYERS, HEADS, TOKENS, TOKENS)).astype(np.float32)
    layers = [metadata.make_layer("encoder/block_%d" % l, "self", (HEADS, TOKENS, TOKENS)) for l in range(LAYERS)]
    weights = 0
    run_dir = os.path.join(logdir, RUN)
    with summary.AttentionEventWriter(run_dir) as w:
        for step in range(steps):
            # Cheap per-step variation: a rolled, rescaled copy of the base logits.
            logits = np.roll(base, step % TOKENS, axis=-1) * (1.0 + step / steps)
            logits -= logits.max(-1, keepdims=True)
            a = np.exp(logits)
            a /= a.sum(-1, keepdims=True)
            header = metadata.make_header(
                {"input": tokens}, layers, label="pos", prediction="pos", probabilities=[0.1, 0.9], class_names=["neg", "pos"]
            )
            w.add(header, list(a), step=step, tag=TAG)
            weights += a.size
    size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(run_dir, "events.out.tfevents.*")))
    with open(marker, "w") as f:
        json.dump({"steps": steps, "shape": [LAYERS, HEADS, TOKENS, TOKENS], "bytes": size, "weights": weights}, f)
    return size, weights


def get(base, route, **params):
    url = base + "/data/plugin/attention/" + route + ("?" + urllib.parse.urlencode(params) if params else "")
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        body = e.read()
        status = e.code
    return status, body, time.perf_counter() - t0


def wait_loaded(base, steps, timeout):
    t0 = time.time()
    last = None
    while time.time() - t0 < timeout:
        try:
            status, body, _ = get(base, "steps", run=RUN, tag=TAG)
            if status == 200:
                last = len(json.loads(body)["steps"])
                if last >= steps:
                    return time.time() - t0
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError("only %s of %d steps loaded after %d s" % (last, steps, timeout))


def verdict(ok):
    return "PASS" if ok else "MISS"


def layer_latency(base, steps, n, rng):
    times = []
    for _ in range(n):
        status, body, dt = get(base, "layer", run=RUN, tag=TAG, step=rng.randrange(steps), layer=rng.randrange(LAYERS), format="bin")
        if status != 200:
            raise RuntimeError("/layer answered %s: %r" % (status, body[:200]))
        assert len(body) == HEADS * TOKENS * TOKENS * 4
        times.append(dt * 1000)
    times.sort()
    return statistics.median(times), times[int(round(0.95 * (len(times) - 1)))]


PAINTED_JS = """() => {
    const c = document.querySelector('.hm-canvas');
    if (!c || !c.width) return false;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return Date.now();
    return false;
}"""


def first_render(base, repeats=3):
    """Time to first render, each in a fresh browser context (empty cache).

    Returns a list of dicts (seconds): `total` = navigation start of
    /#attention to pixels on the heatmap canvas; `tensorboard` = navigation
    start to the navigation start of the plugin's iframe (TensorBoard's own
    frontend boot); `plugin` = the rest; `standalone` = the plugin page
    (/data/plugin_entry.html?name=attention) opened alone, navigation to pixels.
    """
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(repeats):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                page.goto(base + "/#attention", wait_until="commit")
                frame = None
                deadline = time.time() + 60
                while frame is None and time.time() < deadline:
                    frame = next((f for f in page.frames if "plugin_entry.html" in f.url), None)
                    if frame is None:
                        page.wait_for_timeout(10)
                painted = frame.wait_for_function(PAINTED_JS, polling="raf", timeout=60000).json_value()
                nav_start = page.evaluate("() => performance.timeOrigin")
                iframe_start = frame.evaluate("() => performance.timeOrigin")
                context.close()

                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                page.goto(base + "/data/plugin_entry.html?name=attention", wait_until="commit")
                alone = page.wait_for_function(PAINTED_JS, polling="raf", timeout=60000).json_value()
                alone_start = page.evaluate("() => performance.timeOrigin")
                context.close()
                results.append({
                    "total": (painted - nav_start) / 1000.0,
                    "tensorboard": (iframe_start - nav_start) / 1000.0,
                    "plugin": (painted - iframe_start) / 1000.0,
                    "standalone": (alone - alone_start) / 1000.0,
                })
        finally:
            browser.close()
    return results


def concurrent_requests(base, steps, n, rng):
    jobs = [dict(run=RUN, tag=TAG, step=rng.randrange(steps), layer=rng.randrange(LAYERS), format="bin") for _ in range(n)]
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(get, base, "layer", **j) for j in jobs]
        results = []
        for f in futures:
            try:
                results.append(f.result()[0])
            except Exception as e:  # noqa: BLE001 - a refused connection counts as an error
                results.append(repr(e))
    return [r for r in results if r != 200], time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=200, help="sequential /layer requests for p50/p95")
    ap.add_argument("--concurrent", type=int, default=50)
    ap.add_argument("--keep", help="write the logdir here and keep it (default: a temp dir, removed)")
    ap.add_argument("--no-browser", action="store_true", help="skip the time-to-first-render measurement")
    args = ap.parse_args()
    rng = random.Random(0)

    logdir = args.keep or tempfile.mkdtemp(prefix="attention_bench_")
    os.makedirs(logdir, exist_ok=True)
    proc = None
    try:
        t0 = time.time()
        size, weights = write_run(logdir, args.steps)
        print("logdir: %d steps of %dx%dx%dx%d weights, %.1f MB of event files (%.0f s)"
              % (args.steps, LAYERS, HEADS, TOKENS, TOKENS, size / 1e6, time.time() - t0))
        proc, base = start_tensorboard(logdir, timeout=180)
        load_s = wait_loaded(base, args.steps, timeout=1200)
        print("tensorboard at %s listed all %d steps %.0f s after start" % (base, args.steps, load_s))

        get(base, "layer", run=RUN, tag=TAG, step=0, layer=0, format="bin")  # first-request warm-up
        p50, p95 = layer_latency(base, args.steps, args.requests, rng)
        warm = sorted(get(base, "layer", run=RUN, tag=TAG, step=args.steps - 1, layer=0, format="bin")[2] * 1000 for _ in range(30))

        rows = []
        rows.append(("server /layer p50 (random steps, %d requests)" % args.requests, "%.1f ms" % p50, "<= 50 ms", p50 <= 50))
        rows.append(("server /layer p95 (random steps)", "%.1f ms" % p95, "<= 50 ms", p95 <= 50))
        rows.append(("  (same layer again, cached: p50)", "%.1f ms" % statistics.median(warm), "-", None))

        if args.no_browser or not os.path.exists(CHROMIUM):
            rows.append(("time to first render (headless Chromium)", "skipped", "<= 2 s", None))
        else:
            runs = first_render(base)
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            rows.append(("time to first render, /#attention -> heatmap pixels", "%.2f s (runs: %s)" % (
                med["total"], ", ".join("%.2f" % r["total"] for r in runs)), "<= 2 s", med["total"] <= 2.0))
            rows.append(("  of which TensorBoard's frontend until the iframe", "%.2f s" % med["tensorboard"], "-", None))
            rows.append(("  of which the tab (iframe start -> pixels)", "%.2f s" % med["plugin"], "-", None))
            rows.append(("  the tab's page alone, navigation -> pixels", "%.2f s (runs: %s)" % (
                med["standalone"], ", ".join("%.2f" % r["standalone"] for r in runs)), "-", None))

        bpw = size / weights
        rows.append(("event-file bytes per attention weight", "%.4f (%d B / %d weights)" % (bpw, size, weights), "<= 2", bpw <= 2.0))

        errors, wall = concurrent_requests(base, args.steps, args.concurrent, rng)
        rows.append(("%d concurrent /layer requests: non-200" % args.concurrent, "%d (all done in %.2f s)" % (len(errors), wall), "0", not errors))
        if errors:
            print("errors:", errors[:10])

        print()
        width = max(len(r[0]) for r in rows)
        for name, value, target, ok in rows:
            print("%-*s  %-34s target %-9s %s" % (width, name, value, target, "" if ok is None else verdict(ok)))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not args.keep:
            shutil.rmtree(logdir, ignore_errors=True)


if __name__ == "__main__":
    main()
