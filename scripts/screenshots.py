"""Screenshots of every view of the Attention tab, for docs/img/.

    python scripts/screenshots.py                 # synthetic logdir in a temp dir
    python scripts/screenshots.py --logdir DIR    # your own runs (first run/tag of each kind)

Starts `tensorboard --samples_per_plugin=attention=0` (the plugin must be
pip-installed: `pip install -e .`), drives headless Debian Chromium through
Playwright and writes one PNG per view into --out (default docs/img/).

The synthetic logdir imitates what attn-tf logs: a 6-layer x 8-head
Transformer classifier, a BiLSTM with attention pooling and a seq2seq model
with cross-attention, each over 11 steps in which heads sharpen into the usual
patterns (previous/next token, first-token sink, [SEP], content words).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
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

REVIEW = (
    "[CLS] the film 's quiet , patient storytelling pays off in a final act that is genuinely moving . [SEP]"
).split()
SENTIMENT = {"quiet": 0.6, "patient": 1.0, "pays": 1.2, "off": 0.8, "genuinely": 1.4, "moving": 2.0}
SOURCE = "the cat sat on the mat .".split()
TARGET = "<s> le chat était assis sur le tapis .".split()
ALIGN = [0, 0, 1, 2, 2, 3, 4, 5, 6]  # target position -> source position
STEPS = list(range(0, 2001, 200))


# --------------------------------------------------------------------- synthetic data


def _softmax(x, axis=-1):
    x = x - x.max(axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis, keepdims=True)


def _self_patterns(tokens, causal=False):
    n = len(tokens)
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    content = np.array([SENTIMENT.get(t, 0.0) for t in tokens])
    punct = np.array([1.0 if t in {",", ".", "[SEP]"} else 0.0 for t in tokens])
    pats = {
        "previous": (j == i - 1) * 1.0,
        "next": (j == i + 1) * 1.0,
        "self": (j == i) * 1.0,
        "first": np.broadcast_to((j == 0) * 1.0, (n, n)),
        "sep": np.broadcast_to((j == n - 1) * 1.0, (n, n)),
        "content": np.broadcast_to(content[None, :], (n, n)),
        "punct": np.broadcast_to(punct[None, :], (n, n)),
        "local": np.exp(-np.abs(i - j) / 1.5),
    }
    if causal:
        pats.pop("next")
        pats.pop("sep")
    return pats


def _layer(rng, base, pats, order, progress, causal=False):
    n_q, n_k = base.shape[1:]
    heads = []
    for h, name in enumerate(order):
        target = pats[name]
        sharp = 0.3 + 7.0 * progress
        logits = 0.9 * base[h] + sharp * target + rng.normal(scale=0.25, size=(n_q, n_k))
        if causal:
            logits = np.where(np.arange(n_k)[None, :] > np.arange(n_q)[:, None], -1e9, logits)
        heads.append(_softmax(logits))
    return np.stack(heads).astype(np.float32)


def write_synthetic(root):
    from tb_plugin import metadata, summary

    rng = np.random.default_rng(7)
    names = ["previous", "first", "content", "self", "local", "sep", "next", "punct"]
    n = len(REVIEW)
    base = rng.normal(size=(6, 8, n, n))
    with summary.AttentionEventWriter(os.path.join(root, "transformer")) as w:
        for k, step in enumerate(STEPS):
            prog = k / (len(STEPS) - 1)
            pats = _self_patterns(REVIEW)
            arrays = [_layer(rng, base[l], pats, names[l % 8:] + names[:l % 8], prog) for l in range(6)]
            layers = [metadata.make_layer("encoder/block_%d" % l, "self", a.shape) for l, a in enumerate(arrays)]
            p = 1 / (1 + np.exp(-(6 * prog - 2)))
            header = metadata.make_header(
                {"input": REVIEW}, layers, text=" ".join(REVIEW[1:-1]), label="positive",
                prediction="positive" if p > 0.5 else "negative", probabilities=[1 - p, p],
                class_names=["negative", "positive"],
            )
            w.add(header, arrays, step=step, tag=metadata.probe_tag(0))

    words = REVIEW[1:-1]
    content = np.array([SENTIMENT.get(t, 0.0) for t in words])
    noise = rng.normal(scale=0.6, size=len(words))
    with summary.AttentionEventWriter(os.path.join(root, "bilstm")) as w:
        for k, step in enumerate(STEPS):
            prog = k / (len(STEPS) - 1)
            a = _softmax(noise * (1 - 0.6 * prog) + 2.2 * prog * content)[None, None, :].astype(np.float32)
            layers = [metadata.make_layer("attention_pooling", "pooling", a.shape, query=None, key="input")]
            p = 0.35 + 0.6 * prog
            header = metadata.make_header(
                {"input": words}, layers, text=" ".join(words), label="positive",
                prediction="positive" if p > 0.5 else "negative", probabilities=[1 - p, p],
                class_names=["negative", "positive"],
            )
            w.add(header, [a], step=step, tag=metadata.probe_tag(0))

    ns, nt = len(SOURCE), len(TARGET)
    align = np.zeros((nt, ns))
    align[np.arange(nt), ALIGN] = 1.0
    shifted = np.zeros((nt, ns))
    shifted[np.arange(nt), np.minimum(np.array(ALIGN) + 1, ns - 1)] = 1.0
    cross_pats = {
        "align": align,
        "next": shifted,
        "first": np.broadcast_to((np.arange(ns) == 0) * 1.0, (nt, ns)),
        "local": np.exp(-np.abs(np.arange(nt)[:, None] * (ns / nt) - np.arange(ns)[None, :]) / 1.5),
    }
    eb = rng.normal(size=(2, 4, ns, ns))
    db = rng.normal(size=(2, 4, nt, nt))
    cb = rng.normal(size=(2, 4, nt, ns))
    with summary.AttentionEventWriter(os.path.join(root, "seq2seq")) as w:
        for k, step in enumerate(STEPS):
            prog = k / (len(STEPS) - 1)
            arrays, layers = [], []
            for l in range(2):
                a = _layer(rng, eb[l], _self_patterns(SOURCE), ["previous", "self", "next", "first"][l:] + ["previous", "self", "next", "first"][:l], prog)
                arrays.append(a)
                layers.append(metadata.make_layer("encoder/block_%d" % l, "self", a.shape, "source", "source"))
            for l in range(2):
                a = _layer(rng, db[l], _self_patterns(TARGET, causal=True), ["previous", "self", "first", "local"], prog, causal=True)
                arrays.append(a)
                layers.append(metadata.make_layer("decoder/block_%d/self" % l, "causal", a.shape, "target", "target"))
                c = _layer(rng, cb[l], cross_pats, ["align", "local", "next", "align"] if l else ["align", "first", "local", "next"], prog)
                arrays.append(c)
                layers.append(metadata.make_layer("decoder/block_%d/cross" % l, "cross", c.shape, "target", "source"))
            header = metadata.make_header({"source": SOURCE, "target": TARGET}, layers, text=" ".join(SOURCE))
            w.add(header, arrays, step=step, tag=metadata.probe_tag(0))


# ------------------------------------------------------------------------ tensorboard


def wait_for_runs(base, runs, timeout=120):
    import json

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(base + "/data/plugin/attention/tags", timeout=10) as r:
                tags = json.loads(r.read())
            if all(run in tags for run in runs):
                return tags
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("tensorboard never listed the runs %s" % runs)


# --------------------------------------------------------------------------- browser


class Shooter:
    def __init__(self, browser, base, out):
        self.base = base
        self.out = out
        self.page = browser.new_page(viewport={"width": 1440, "height": 960}, device_scale_factor=1)
        self.page.on("pageerror", lambda e: print("page error:", e, file=sys.stderr))
        self.page.on("dialog", lambda d: (print("unexpected dialog:", d.message, file=sys.stderr), d.dismiss()))
        self.page.goto(base + "/data/plugin_entry.html?name=attention")
        self.wait()

    def wait(self, **attrs):
        cond = " && ".join(["a.dataset.state === 'ready'"] + ["a.dataset.%s === %r" % (k, str(v)) for k, v in attrs.items()])
        self.page.wait_for_function("() => { const a = document.querySelector('#attn-app'); return a && %s; }" % cond, timeout=60000)
        self.page.wait_for_timeout(250)

    def run(self, run):
        self.page.select_option("#run-select", run)
        self.wait(renderedRun=run)

    def view(self, name):
        self.page.click("button[data-view=%s]" % name)
        self.wait(renderedView=name)

    def hover_strongest_cell(self, matrix, row_fraction):
        """Hovers the strongest key of one query row of a matrix view.

        Args:
            matrix: JavaScript expression of the matrix view (e.g. window.attentionApp.views.cross.matrix).
            row_fraction: which query row, as a fraction of the rows (0.5 = the middle one).
        """
        self.page.evaluate(
            """([expr, f]) => { const v = eval(expr); const s = v.spec;
               const i = Math.min(s.Q - 1, Math.floor(s.Q * f)); let j = 0;
               for (let k = 1; k < s.K; k++) if (s.m[i * s.K + k] > s.m[i * s.K + j]) j = k;
               v.hoverCell(i, j); }""", [matrix, row_fraction])

    def hover_strongest_pooled(self):
        """Hovers the token with the largest pooling weight (pooling text of the heatmaps view)."""
        strongest = self.page.evaluate(
            """async () => { const L = await window.attentionApp.layers(); const d = L[0].data; let j = 0;
               for (let k = 1; k < d.length; k++) if (d[k] > d[j]) j = k; return j; }""")
        self.page.hover('.pool-tok[data-index="%d"]' % strongest)
        self.page.wait_for_timeout(200)

    def head_view_and_flows(self, head_view, head_view_hover, flows, hover_fraction):
        """Shoots the head view of the selected layer, again with one query token hovered, then the flows view.

        Args:
            head_view, head_view_hover, flows: the three PNG names.
            hover_fraction: which query token to hover, as a fraction of the tokens.
        """
        self.view("headview")
        self.shot(head_view, ".headview .panel")
        n = self.page.locator('.hv-tok[data-side="q"]').count()
        self.page.hover('.hv-tok[data-side="q"][data-index="%d"]' % int(n * hover_fraction))
        self.page.wait_for_timeout(200)
        self.shot(head_view_hover, ".headview .panel", extra=".tooltip")
        self.page.mouse.move(0, 0)
        self.view("flows")
        self.page.wait_for_function("() => document.querySelectorAll('#flow-bars .bar.flow').length > 0", timeout=120000)
        self.shot(flows, ".view.flows")

    def shot(self, name, selector=None, pad=8, extra=None):
        path = os.path.join(self.out, name)
        if selector is None:
            self.page.screenshot(path=path, full_page=True)
        else:
            box = self.page.locator(selector).first.bounding_box()
            if extra:
                eb = self.page.locator(extra).bounding_box()
                if eb:
                    x1 = max(box["x"] + box["width"], eb["x"] + eb["width"])
                    y1 = max(box["y"] + box["height"], eb["y"] + eb["height"])
                    box = {"x": min(box["x"], eb["x"]), "y": min(box["y"], eb["y"])}
                    box["width"], box["height"] = x1 - box["x"], y1 - box["y"]
            self.page.screenshot(
                path=path,
                full_page=True,
                clip={"x": max(0, box["x"] - pad), "y": max(0, box["y"] - pad), "width": box["width"] + 2 * pad, "height": box["height"] + 2 * pad},
            )
        print("wrote", os.path.relpath(path, REPO))


def tensorboard_page(browser, base, path, run=None, tag=None, prepare=None):
    """Screenshot of the whole TensorBoard page with the Attention tab open on `run` (and probe `tag`).

    Args:
        browser: a Playwright browser.
        base: TensorBoard's base URL.
        path: the PNG to write.
        run: the run to select (default: the tab's first).
        tag: the probe example of that run to select (default: the tab's choice).
        prepare: called with the tab's frame before the screenshot (e.g. to click a matrix), or None.
    """
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(base + "/#attention")
    frame = None
    for _ in range(300):
        frame = next((f for f in page.frames if "plugin_entry.html" in f.url), None)
        if frame:
            break
        page.wait_for_timeout(100)
    frame.wait_for_selector("#attn-app[data-state=ready]", state="attached", timeout=60000)
    for sel, value, attr in (("#run-select", run, "renderedRun"), ("#tag-select", tag, "renderedTag")):
        if value:
            frame.select_option(sel, value)
            frame.wait_for_function(
                "([k, v]) => { const a = document.querySelector('#attn-app'); return a.dataset.state === 'ready' && a.dataset[k] === v; }",
                arg=[attr, value], timeout=60000)
    if prepare:
        prepare(frame)
    page.wait_for_timeout(500)
    page.screenshot(path=path)
    print("wrote", os.path.relpath(path, REPO))
    page.close()


def shoot(base, out, runs):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # 1. The tab inside TensorBoard.
            tensorboard_page(browser, base, os.path.join(out, "heatmaps.png"), runs["transformer"])

            s = Shooter(browser, base, out)
            if runs["transformer"]:
                s.run(runs["transformer"])
                # 2. Enlarged heatmap of one head, hovering a cell.
                s.page.click('.hm-canvas[data-layer="2"][data-head="2"]')
                s.wait()
                s.hover_strongest_cell("window.attentionApp.views.heatmaps.detail", 0.7)
                s.shot("heatmap_enlarged_hover.png", "#hm-detail", extra=".tooltip")
                s.page.evaluate("() => window.attentionApp.views.heatmaps.detail.onLeave()")
                # 4. Head view with one token hovered; 5. flows into position 0 ([CLS]).
                s.page.select_option("#layer-select", "1")
                s.head_view_and_flows("head_view.png", "head_view_hover.png", "flows.png", 0.75)
                # 6. Evolution: statistics and the step difference.
                s.page.select_option("#layer-select", "0")
                s.view("evolution")
                s.shot("evolution.png", ".view.evolution")
            if runs["pooling"]:
                s.run(runs["pooling"])
                s.view("heatmaps")
                s.hover_strongest_pooled()
                s.shot("pooling_text.png", ".panel.pooling", extra=".tooltip")
                s.page.mouse.move(0, 0)
            if runs["cross"]:
                s.run(runs["cross"])
                s.view("cross")
                s.hover_strongest_cell("window.attentionApp.views.cross.matrix", 0.5)
                s.shot("cross_attention.png", ".view.cross", extra=".tooltip")
        finally:
            browser.close()


def pick_runs(base, tags):
    """The first run of each kind (self-attention, pooling, cross) by reading one header each."""
    import json

    found = {"transformer": None, "pooling": None, "cross": None}
    for run in sorted(tags):
        for tag in sorted(tags[run]):
            q = urllib.parse.urlencode({"run": run, "tag": tag, "step": tags[run][tag]["max_step"]})
            with urllib.request.urlopen(base + "/data/plugin/attention/header?" + q, timeout=30) as r:
                kinds = {l["kind"] for l in json.loads(r.read())["layers"]}
            if "cross" in kinds and not found["cross"]:
                found["cross"] = run
            elif kinds == {"pooling"} and not found["pooling"]:
                found["pooling"] = run
            elif kinds <= {"self", "causal"} and not found["transformer"]:
                found["transformer"] = run
            break
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--logdir", help="an existing logdir; default: write a synthetic one to a temp dir")
    ap.add_argument("--out", default=os.path.join(REPO, "docs", "img"))
    args = ap.parse_args()
    if not os.path.exists(CHROMIUM):
        sys.exit("needs Debian chromium at %s (apt-get install chromium)" % CHROMIUM)
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="attention_screens_") as tmp:
        logdir = args.logdir
        if not logdir:
            logdir = tmp
            write_synthetic(logdir)
        proc, base = start_tensorboard(logdir)
        try:
            tags = wait_for_runs(base, ["transformer", "bilstm", "seq2seq"] if not args.logdir else [])
            if args.logdir:
                time.sleep(3)
                tags = wait_for_runs(base, [])
            runs = pick_runs(base, tags)
            print("runs:", runs)
            shoot(base, args.out, runs)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
