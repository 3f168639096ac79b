"""Latency and size benchmark of the Attention tab.

    python bench/plugin_latency.py [--layers 12 --heads 12 --tokens 512] [--steps 5]
                                   [--requests 200] [--keep DIR] [--no-browser]

Writes two runs of `--layers` x `--heads` x `--tokens` softmax attention logged
at --steps steps with the TF-free `AttentionEventWriter` (in a temp dir): one
in the default float16 storage ("transformer"), one in the compact uint8
storage ("compact"). Starts `tensorboard --samples_per_plugin=attention=0`
(the Rust data server, the default when tensorboard-data-server is installed;
the plugin must be pip-installed) and prints, side by side, each with its
target and PASS/MISS:

* server p50/p95 of `/grid` (one layer's thumbnails: what the grid draws) on
  first requests (every (step, layer) once: nothing cached) and repeated,
  next to the full float32 `/layer` the tab fetched before  (target <= 50 ms)
* `/layer?head=&dtype=float16` (the enlarged matrix)
* time to first render in headless Chromium: navigation start of
  `/#attention` to the heatmap canvas holding pixels, and of that the tab's
  own part (iframe start -> pixels)                          (target <= 2 s)
* browser-timed hover redraw on the enlarged matrix (mousemove to the next
  painted frame) and head toggling (head menu change to painted)   (<= 100 ms)
* `/flow` at the full size (exact on a sparsified graph above 12 x 128)  (<= 5 s)
* event-file bytes per attention weight, float16 (<= 2) and uint8 (<= 1)
* 50 concurrent `/grid` requests (thread pool): non-200s     (target 0)

Timings on a shared machine: `uptime` load averages are printed with them.
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
LAYERS, HEADS, TOKENS = 6, 8, 128  # replaced by --layers/--heads/--tokens
RUN, TAG = "transformer", "attention/probe_000"
COMPACT_RUN = "compact"  # the same weights in the uint8 storage


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
    """Returns {run: (event-file bytes, attention weights written)} for both storages.

    tensorboard's TF-free record writer computes CRC32C in pure Python; see
    `FastCrc32c`. With --keep, a finished logdir is reused.
    """
    marker = os.path.join(logdir, "bench_logdir.json")
    if os.path.exists(marker):
        with open(marker) as f:
            done = json.load(f)
        if done.get("steps") == steps and done.get("shape") == [LAYERS, HEADS, TOKENS, TOKENS] and "runs" in done:
            print("reusing the logdir written earlier in %s" % logdir)
            return {k: tuple(v) for k, v in done["runs"].items()}
    from tb_plugin import metadata, summary

    FastCrc32c().install()

    rng = np.random.default_rng(0)
    tokens = ["[CLS]"] + ["tok%03d" % i for i in range(TOKENS - 2)] + ["[SEP]"]
    # Logits with a spread of sharpness per head (trained heads range from
    # near-uniform to one-token): the uint8 size depends on it.
    sharp = rng.uniform(0.5, 4.0, size=(LAYERS, HEADS, 1, 1)).astype(np.float32)
    layers = [metadata.make_layer("encoder/block_%d" % l, "self", (HEADS, TOKENS, TOKENS)) for l in range(LAYERS)]
    weights = 0
    writers = {RUN: summary.AttentionEventWriter(os.path.join(logdir, RUN)),
               COMPACT_RUN: summary.AttentionEventWriter(os.path.join(logdir, COMPACT_RUN), storage="uint8")}
    try:
        for step in range(steps):
            header = metadata.make_header(
                {"input": tokens}, layers, label="pos", prediction="pos", probabilities=[0.1, 0.9], class_names=["neg", "pos"]
            )
            arrays = []
            for l in range(LAYERS):  # one layer at a time: 12 x 512 x 512 float32 is 12 MB
                logits = rng.normal(size=(HEADS, TOKENS, TOKENS)).astype(np.float32) * sharp[l]
                logits -= logits.max(-1, keepdims=True)
                a = np.exp(logits)
                a /= a.sum(-1, keepdims=True)
                arrays.append(a.astype(np.float16))
            for w in writers.values():
                w.add(header, arrays, step=step, tag=TAG)
            weights += LAYERS * HEADS * TOKENS * TOKENS
    finally:
        for w in writers.values():
            w.close()
    runs = {}
    for run in writers:
        size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(logdir, run, "events.out.tfevents.*")))
        runs[run] = (size, weights)
    with open(marker, "w") as f:
        json.dump({"steps": steps, "shape": [LAYERS, HEADS, TOKENS, TOKENS], "runs": runs}, f)
    return runs


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


def wait_loaded(base, steps, timeout, run=RUN):
    t0 = time.time()
    last = None
    while time.time() - t0 < timeout:
        try:
            status, body, _ = get(base, "steps", run=run, tag=TAG)
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
    return p50_p95(times)


def p50_p95(times):
    times = sorted(times)
    return statistics.median(times), times[int(round(0.95 * (len(times) - 1)))]


def timed(base, route, expect_bytes=None, **params):
    status, body, dt = get(base, route, **params)
    if status != 200:
        raise RuntimeError("/%s answered %s: %r" % (route, status, body[:300]))
    if expect_bytes is not None and len(body) != expect_bytes:
        raise RuntimeError("/%s sent %d bytes, expected %d" % (route, len(body), expect_bytes))
    return dt * 1000


def grid_latency(base, run, steps, size, rng):
    """(cold p50/p95 over every (step, layer) once, warm p50/p95 repeating them)."""
    pairs = [(s, l) for s in range(steps) for l in range(LAYERS)]
    rng.shuffle(pairs)
    cells = min(size, TOKENS)
    nbytes = (HEADS + 1) * cells * cells
    cold = [timed(base, "grid", nbytes, run=run, tag=TAG, step=s, layer=l, size=size) for s, l in pairs]
    warm = [timed(base, "grid", nbytes, run=run, tag=TAG, step=s, layer=l, size=size) for s, l in pairs]
    return p50_p95(cold), p50_p95(warm)


PAINTED_JS = """() => {
    const c = document.querySelector('.hm-canvas');
    if (!c || !c.width) return false;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return Date.now();
    return false;
}"""


FRAME_JS = "() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)))"

HOVER_JS = """async (n) => {
    const frame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    const ov = document.querySelector('.matrix-view .matrix-overlay');
    const r = ov.getBoundingClientRect();
    await frame();
    const out = [];
    for (let k = 0; k < n; k++) {
        const x = r.left + (((k * 37) % 97) + 0.5) / 97 * r.width;
        const y = r.top + (((k * 53) % 89) + 0.5) / 89 * r.height;
        const t0 = performance.now();
        ov.dispatchEvent(new MouseEvent('mousemove', {clientX: x, clientY: y, bubbles: true}));
        await frame();  // the handler ran and the frame with the new outline/tooltip was painted
        out.push(performance.now() - t0);
    }
    return out;
}"""

TOGGLE_JS = """async (n) => {
    const frame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    const app = document.querySelector('#attn-app');
    const out = [];
    for (let k = 0; k < n; k++) {
        const sel = document.querySelector('#head-select');
        const values = [...sel.options].map((o) => o.value);
        const v = values[(k * 5 + 3) % values.length];
        if (v === sel.value) continue;
        const t0 = performance.now();
        sel.value = v;
        sel.dispatchEvent(new Event('change'));
        while (app.dataset.state !== 'ready') await new Promise((r) => setTimeout(r, 1));
        await frame();
        out.push(performance.now() - t0);
    }
    return out;
}"""


def first_render(base, repeats=3, interactions=True):
    """Time to first render, each in a fresh browser context (empty cache).

    Returns (list of dicts in seconds, dict of interaction times in ms):
    `total` = navigation start of /#attention to pixels on the heatmap
    canvas; `tensorboard` = navigation start to the navigation start of the
    plugin's iframe (TensorBoard's own frontend boot); `plugin` = the rest
    (the tab's own time); `standalone` = the plugin page
    (/data/plugin_entry.html?name=attention) opened alone, navigation to
    pixels. Interactions (on the standalone page of the last repeat):
    `hover` = mousemove on the enlarged matrix to the next painted frame;
    `toggle` = a head menu change to the redrawn matrix painted, measured 3 s
    after the first render (by then the tab has prefetched the selected
    layer's other heads, as it does for a user).
    """
    from playwright.sync_api import sync_playwright

    results = []
    inter = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for rep in range(repeats):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                page.goto(base + "/#attention", wait_until="commit")
                frame = None
                deadline = time.time() + 60
                while frame is None and time.time() < deadline:
                    frame = next((f for f in page.frames if "plugin_entry.html" in f.url), None)
                    if frame is None:
                        page.wait_for_timeout(10)
                painted = frame.wait_for_function(PAINTED_JS, polling="raf", timeout=120000).json_value()
                nav_start = page.evaluate("() => performance.timeOrigin")
                iframe_start = frame.evaluate("() => performance.timeOrigin")
                context.close()

                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                page.goto(base + "/data/plugin_entry.html?name=attention", wait_until="commit")
                alone = page.wait_for_function(PAINTED_JS, polling="raf", timeout=120000).json_value()
                alone_start = page.evaluate("() => performance.timeOrigin")
                if interactions and rep == repeats - 1:
                    page.wait_for_function("() => document.querySelector('#attn-app').dataset.state === 'ready'", timeout=120000)
                    inter["hover"] = page.evaluate(HOVER_JS, 60)
                    # A user looks before toggling: let the prefetch of the layer's heads finish.
                    page.wait_for_timeout(3000)
                    inter["toggle"] = page.evaluate(TOGGLE_JS, 12)
                    inter["scaled"] = page.evaluate("() => !document.querySelector('#hm-grid [data-pending]') && "
                                                    "document.querySelectorAll('.hm-canvas').length")
                context.close()
                results.append({
                    "total": (painted - nav_start) / 1000.0,
                    "tensorboard": (iframe_start - nav_start) / 1000.0,
                    "plugin": (painted - iframe_start) / 1000.0,
                    "standalone": (alone - alone_start) / 1000.0,
                })
        finally:
            browser.close()
    return results, inter


def load_average():
    try:
        return "load average %s (%d CPUs)" % (" ".join(open("/proc/loadavg").read().split()[:3]), os.cpu_count() or 0)
    except OSError:
        return "load average unknown"


def concurrent_requests(base, steps, n, rng):
    jobs = [dict(run=RUN, tag=TAG, step=rng.randrange(steps), layer=rng.randrange(LAYERS)) for _ in range(n)]
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(get, base, "grid", **j) for j in jobs]
        results = []
        for f in futures:
            try:
                results.append(f.result()[0])
            except Exception as e:  # noqa: BLE001 - a refused connection counts as an error
                results.append(repr(e))
    return [r for r in results if r != 200], time.perf_counter() - t0


def main():
    global LAYERS, HEADS, TOKENS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=LAYERS)
    ap.add_argument("--heads", type=int, default=HEADS)
    ap.add_argument("--tokens", type=int, default=TOKENS)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--requests", type=int, default=60, help="sequential full /layer requests for p50/p95")
    ap.add_argument("--grid-size", type=int, default=64, help="thumbnail cells per side asked of /grid")
    ap.add_argument("--concurrent", type=int, default=50)
    ap.add_argument("--keep", help="write the logdir here and keep it (default: a temp dir, removed)")
    ap.add_argument("--no-browser", action="store_true", help="skip the browser measurements")
    ap.add_argument("--no-flow", action="store_true", help="skip the /flow measurement")
    args = ap.parse_args()
    LAYERS, HEADS, TOKENS = args.layers, args.heads, args.tokens
    rng = random.Random(0)

    logdir = args.keep or tempfile.mkdtemp(prefix="attention_bench_")
    os.makedirs(logdir, exist_ok=True)
    proc = None
    try:
        t0 = time.time()
        runs = write_run(logdir, args.steps)
        for run, (size, weights) in runs.items():
            print("logdir %s: %d steps of %dx%dx%dx%d weights, %.1f MB of event files"
                  % (run, args.steps, LAYERS, HEADS, TOKENS, TOKENS, size / 1e6))
        print("written in %.0f s" % (time.time() - t0))
        proc, base = start_tensorboard(logdir, timeout=180)
        load_s = max(wait_loaded(base, args.steps, timeout=1800, run=run) for run in runs)
        print("tensorboard at %s listed all %d steps %.0f s after start" % (base, args.steps, load_s))
        print("before the timings: " + load_average())

        rows = []
        get(base, "layer", run=RUN, tag=TAG, step=0, layer=0, format="bin")  # first-request warm-up
        (g50, g95), (w50, w95) = grid_latency(base, RUN, args.steps, args.grid_size, rng)
        rows.append(("server /grid p50, first request of each (step, layer)", "%.1f ms (p95 %.1f)" % (g50, g95), "<= 50 ms", g50 <= 50))
        rows.append(("server /grid p50, repeated (cached thumbnails)", "%.1f ms (p95 %.1f)" % (w50, w95), "<= 50 ms", w50 <= 50))
        (c50, c95), _ = grid_latency(base, COMPACT_RUN, args.steps, args.grid_size, rng)
        rows.append(("  the same from the uint8 run, first requests", "%.1f ms (p95 %.1f)" % (c50, c95), "-", None))
        head_ms = [timed(base, "layer", TOKENS * TOKENS * 2, run=RUN, tag=TAG, step=rng.randrange(args.steps),
                         layer=rng.randrange(LAYERS), head=rng.randrange(HEADS), dtype="float16") for _ in range(30)]
        h50, h95 = p50_p95(head_ms)
        rows.append(("server /layer?head=&dtype=float16 (enlarged matrix) p50", "%.1f ms (p95 %.1f)" % (h50, h95), "-", None))
        p50, p95 = layer_latency(base, args.steps, args.requests, rng)
        rows.append(("server full /layer float32 p50 (what the tab fetched before)", "%.1f ms (p95 %.1f)" % (p50, p95), "-", None))
        rows.append(("  ratio full /layer p50 / first-request /grid p50", "%.1fx" % (p50 / g50 if g50 else float("nan")), "-", None))

        if args.no_browser or not os.path.exists(CHROMIUM):
            rows.append(("time to first render (headless Chromium)", "skipped", "<= 2 s", None))
        else:
            render, inter = first_render(base)
            med = {k: statistics.median(r[k] for r in render) for k in render[0]}
            rows.append(("time to first render, /#attention -> heatmap pixels", "%.2f s (runs: %s)" % (
                med["total"], ", ".join("%.2f" % r["total"] for r in render)), "-", None))
            rows.append(("  of which TensorBoard's frontend until the iframe", "%.2f s" % med["tensorboard"], "-", None))
            rows.append(("  of which the tab (iframe start -> pixels)", "%.2f s (runs: %s)" % (
                med["plugin"], ", ".join("%.2f" % r["plugin"] for r in render)), "<= 2 s", med["plugin"] <= 2.0))
            rows.append(("  the tab's page alone, navigation -> pixels", "%.2f s (runs: %s)" % (
                med["standalone"], ", ".join("%.2f" % r["standalone"] for r in render)), "-", None))
            if inter.get("hover"):
                a, b = p50_p95(inter["hover"])
                rows.append(("hover redraw, enlarged matrix (browser-timed) p50", "%.1f ms (p95 %.1f, %d moves)" % (a, b, len(inter["hover"])), "<= 100 ms", a <= 100))
            if inter.get("toggle"):
                a, b = p50_p95(inter["toggle"])
                rows.append(("head toggling, new head fetched + drawn p50", "%.1f ms (p95 %.1f, %d changes)" % (a, b, len(inter["toggle"])), "<= 100 ms", a <= 100))
            rows.append(("  thumbnails drawn in the grid", str(inter.get("scaled")), "-", None))

        if not args.no_flow:
            flow_s = []
            for position in (TOKENS // 2, TOKENS - 1):
                status, body, dt = get(base, "flow", run=RUN, tag=TAG, step=args.steps - 1, position=position)
                if status != 200:
                    rows.append(("/flow at %d layers x %d tokens" % (LAYERS, TOKENS), "HTTP %d: %s" % (status, body[:120]), "<= 5 s", False))
                    break
                info = json.loads(body)
                flow_s.append(dt)
            if flow_s:
                rows.append(("/flow at %d layers x %d tokens, first request (max of %d)" % (LAYERS, TOKENS, len(flow_s)),
                             "%.2f s (%s; %s, %s/%s values certified exact)" % (
                                 max(flow_s), ", ".join("%.2f" % t for t in flow_s), info.get("method"),
                                 info.get("certified", "all"), info.get("tokens", TOKENS)),
                             "<= 5 s", max(flow_s) <= 5.0))

        for run, limit in ((RUN, None), (COMPACT_RUN, 1.0)):
            # float16 is 2 bytes per weight plus headers (the exact default).
            size, weights = runs[run]
            bpw = size / weights
            rows.append(("event-file bytes per weight, %s" % ("float16 (default)" if run == RUN else "uint8 (--attention-storage uint8)"),
                         "%.4f (%d B / %d weights)" % (bpw, size, weights), "-" if limit is None else "<= %g" % limit,
                         None if limit is None else bpw <= limit))

        errors, wall = concurrent_requests(base, args.steps, args.concurrent, rng)
        rows.append(("%d concurrent /grid requests: non-200" % args.concurrent, "%d (all done in %.2f s)" % (len(errors), wall), "0", not errors))
        if errors:
            print("errors:", errors[:10])

        print()
        print("%d layers x %d heads x %d tokens, %d steps; after the timings: %s" % (LAYERS, HEADS, TOKENS, args.steps, load_average()))
        width = max(len(r[0]) for r in rows)
        for name, value, target, ok in rows:
            print("%-*s  %-44s target %-9s %s" % (width, name, value, target, "" if ok is None else verdict(ok)))
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
