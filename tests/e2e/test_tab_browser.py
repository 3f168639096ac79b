"""The Attention tab in a real browser against a real `tensorboard` process.

Starts `tensorboard` (with the pip-installed plugin, Rust data server default)
on a small logdir written with the TF-free `AttentionEventWriter`, opens
`/#attention` in headless Debian Chromium through Playwright and checks what a
user sees: heatmap pixels, token labels as text, a step change redrawing, and
that a token holding HTML stays inert text. Also once under `--path_prefix`.

Needs /usr/bin/chromium (`apt-get install chromium`) and the `playwright`
Python package (its own browser download is not used); skipped otherwise.
"""

import importlib.metadata
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EVIL = "<img src=x onerror=alert(1)>"
TOKENS = ["[CLS]", "the", "cat", EVIL, "sat", "[SEP]"]
POOL_TOKENS = ["a", "truly", "wonderful", "film", EVIL]
STEPS = (0, 10, 20)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian chromium at %s (apt-get install chromium)" % CHROMIUM),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")


def _plugin_installed():
    eps = importlib.metadata.entry_points().select(group="tensorboard_plugins")
    return any(ep.name == "attention" for ep in eps)


if not _plugin_installed():
    pytest.skip(
        "the attention plugin is not registered with tensorboard: run `pip install -e .` in this environment",
        allow_module_level=True,
    )


# ----------------------------------------------------------------------------- data


def _softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def _write_logdir(root):
    from tb_plugin import metadata, summary

    n = len(TOKENS)
    with summary.AttentionEventWriter(os.path.join(root, "transformer")) as w:
        for step in STEPS:
            rng = np.random.default_rng(step + 1)
            arrays = [_softmax(rng.normal(size=(2, n, n)) * 3).astype(np.float32) for _ in range(2)]
            layers = [metadata.make_layer("encoder/block_%d" % i, "self", a.shape) for i, a in enumerate(arrays)]
            header = metadata.make_header(
                {"input": TOKENS}, layers, label="pos", prediction="pos", probabilities=[0.2, 0.8], class_names=["neg", "pos"]
            )
            w.add(header, arrays, step=step, tag=metadata.probe_tag(0))
    k = len(POOL_TOKENS)
    with summary.AttentionEventWriter(os.path.join(root, "bilstm")) as w:
        for step in STEPS:
            rng = np.random.default_rng(100 + step)
            a = _softmax(rng.normal(size=(1, 1, k)) * 2).astype(np.float32)
            layers = [metadata.make_layer("attention_pooling", "pooling", a.shape, query=None, key="input")]
            header = metadata.make_header(
                {"input": POOL_TOKENS}, layers, label="pos", prediction="neg", probabilities=[0.65, 0.35], class_names=["neg", "pos"]
            )
            w.add(header, [a], step=step, tag=metadata.probe_tag(0))


# ------------------------------------------------------------------------ tensorboard


class TensorBoard:
    """A `tensorboard` subprocess; the port is read from its start-up line."""

    def __init__(self, logdir, path_prefix=""):
        self.path_prefix = path_prefix
        argv = [
            sys.executable, "-m", "tensorboard.main",
            "--logdir", logdir, "--port", "0", "--host", "127.0.0.1",
            "--samples_per_plugin=attention=0", "--reload_interval", "1",
        ]
        if path_prefix:
            argv.append("--path_prefix=" + path_prefix)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        self.lines = queue.Queue()
        self.log = []
        threading.Thread(target=self._pump, daemon=True).start()
        self.base = None

    def _pump(self):
        for line in self.proc.stderr:
            self.log.append(line)
            self.lines.put(line)

    def wait_started(self, timeout=90):
        deadline = time.time() + timeout
        pattern = re.compile(r"TensorBoard \S+ at (http://127\.0\.0\.1:(\d+)/\S*)")
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            m = pattern.search(line)
            if m:
                self.base = "http://127.0.0.1:%s%s" % (m.group(2), self.path_prefix)
                return self
        raise AssertionError("tensorboard did not start:\n" + "".join(self.log[-40:]))

    def get_json(self, route):
        with urllib.request.urlopen(self.base + "/data/plugin/attention/" + route, timeout=10) as r:
            return json.loads(r.read().decode("utf-8"))

    def wait_loaded(self, timeout=60):
        """Waits until the (asynchronous) data server has every run and step."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                tags = self.get_json("tags")
                if set(tags) >= {"transformer", "bilstm"}:
                    ok = True
                    for run in ("transformer", "bilstm"):
                        steps = self.get_json("steps?run=%s&tag=attention%%2Fprobe_000" % run)["steps"]
                        ok = ok and steps == list(STEPS)
                    if ok:
                        return
                last = tags
            except Exception as e:  # noqa: BLE001 - still starting
                last = e
            time.sleep(0.3)
        raise AssertionError("tensorboard never served the test data (last answer: %r)\n%s" % (last, "".join(self.log[-20:])))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    logdir = str(tmp_path_factory.mktemp("attention_logdir"))
    # Both start in parallel and while the data is written (each takes seconds
    # to import); they pick the runs up on their next reload (1 s).
    started = []
    try:
        started.append(TensorBoard(logdir))
        started.append(TensorBoard(logdir, path_prefix="/tb"))
        _write_logdir(logdir)
        for tb in started:
            tb.wait_started()
        for tb in started:
            tb.wait_loaded()
        yield {"root": started[0], "prefix": started[1]}
    finally:
        for tb in started:
            tb.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Tab:
    """A TensorBoard page opened on #attention, with everything it did recorded."""

    def __init__(self, browser, base, direct=False):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.dialogs = []
        self.errors = []
        self.requests = []
        self.bad_responses = []
        self.page.on("dialog", self._on_dialog)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on(
            "response",
            lambda r: r.status >= 400 and "/data/plugin/attention/" in r.url and self.bad_responses.append((r.status, r.url)),
        )
        if direct:
            # The tab's own page, without TensorBoard's (slow to boot) frontend around it.
            self.page.goto(base + "/data/plugin_entry.html?name=attention")
            self.frame = self.page.main_frame
        else:
            self.page.goto(base + "/#attention")
            self.frame = self._plugin_frame()
        self.wait_ready()

    def _on_dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _plugin_frame(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for f in self.page.frames:
                if "plugin_entry.html" in f.url and "name=attention" in f.url:
                    return f
            self.page.wait_for_timeout(100)
        raise AssertionError("the Attention iframe never appeared; frames: %s" % [f.url for f in self.page.frames])

    def wait_ready(self, step=None, run=None):
        sel = "#attn-app[data-state=ready]"
        if step is not None:
            sel += '[data-rendered-step="%d"]' % step
        self.frame.wait_for_selector(sel, state="attached", timeout=30000)
        if run is not None:
            assert self.frame.eval_on_selector("#run-select", "s => s.value") == run

    def select_run(self, run):
        self.frame.select_option("#run-select", run)
        self.frame.wait_for_function(
            "run => { const a = document.querySelector('#attn-app');"
            " return a.dataset.state === 'ready' && a.dataset.renderedRun === run && a.dataset.renderedStep === '20'; }",
            arg=run,
            timeout=30000,
        )

    def pixels(self, selector):
        """Summary of a canvas' pixels: (non-white pixel count, list of sampled RGBA values)."""
        return self.frame.evaluate(
            """sel => {
                const c = document.querySelector(sel);
                if (!c) return null;
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let ink = 0;
                const sample = [];
                for (let i = 0; i < d.length; i += 4) {
                    if (d[i + 3] > 0 && (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250)) ink++;
                }
                const step = Math.max(4, Math.floor(d.length / 4 / 400) * 4);
                for (let i = 0; i < d.length; i += step) sample.push(d[i], d[i + 1], d[i + 2], d[i + 3]);
                return {ink, total: d.length / 4, sample};
            }""",
            selector,
        )

    def text_nodes(self):
        return self.frame.evaluate(
            """() => {
                const out = [];
                const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
                while (w.nextNode()) out.push(w.currentNode.nodeValue);
                return out;
            }"""
        )

    def no_injected_elements(self):
        for target in (self.frame, self.page.main_frame):
            assert target.evaluate("() => document.querySelectorAll('img[src=\"x\"], img[src$=\"/x\"]').length") == 0
        assert self.frame.evaluate("() => document.querySelectorAll('img').length") == 0

    def close(self):
        self.page.close()


def test_heatmaps_tokens_steps_and_inert_html(servers, browser):
    tab = Tab(browser, servers["root"].base)
    try:
        tab.select_run("transformer")
        grid = '.hm-canvas[data-layer="0"][data-head="0"]'
        first = tab.pixels(grid)
        assert first is not None, "no heatmap canvas for layer 0 head 0"
        assert first["ink"] > first["total"] * 0.3, first["ink"]
        assert len({tuple(first["sample"][i:i + 3]) for i in range(0, len(first["sample"]), 4)}) > 3, "heatmap is one flat colour"
        detail = tab.pixels(".matrix-view .matrix-canvas")
        assert detail and detail["ink"] > detail["total"] * 0.3

        # Token labels are text nodes, the HTML-looking token among them, verbatim.
        texts = tab.text_nodes()
        for t in TOKENS:
            assert t in texts, "token %r is not a text node; text nodes: %r" % (t, texts[:80])
        assert tab.frame.locator(".row-label", has_text=EVIL).count() == 1
        assert "rows = queries (attending from)" in " ".join(texts)

        # Hover over a cell shows "query -> key: weight".
        tab.frame.hover(".matrix-view .matrix-overlay", position={"x": 3, "y": 3})
        tip = tab.frame.locator(".tooltip").inner_text()
        assert re.search(r"\[CLS\] -> \[CLS\]: \d\.\d+", tip), tip

        # The slider moves to step 10: another /layer fetch and other pixels.
        tab.requests.clear()
        tab.frame.focus("#step-slider")
        tab.frame.press("#step-slider", "ArrowLeft")
        tab.wait_ready(step=10)
        assert tab.frame.locator("#step-label").inner_text().startswith("step 10")
        assert any("/data/plugin/attention/layer?" in u and "step=10" in u and "format=bin" in u for u in tab.requests), tab.requests
        second = tab.pixels(grid)
        assert second["ink"] > 0
        assert second["sample"] != first["sample"], "the heatmap did not change with the step"

        tab.no_injected_elements()
        assert tab.dialogs == [], tab.dialogs
        assert tab.errors == [], tab.errors
        assert tab.bad_responses == [], tab.bad_responses
    finally:
        tab.close()


def test_pooling_text_and_prediction(servers, browser):
    tab = Tab(browser, servers["root"].base, direct=True)
    try:
        tab.select_run("bilstm")
        spans = tab.frame.locator(".pool-tok")
        assert spans.count() == len(POOL_TOKENS)
        assert spans.all_inner_texts() == POOL_TOKENS
        backgrounds = tab.frame.evaluate("() => [...document.querySelectorAll('.pool-tok')].map(s => s.style.background)")
        assert len(set(backgrounds)) > 1, backgrounds
        summary = tab.frame.locator(".pooling .pool-meta").inner_text()
        assert "label: pos" in summary and "prediction: neg" in summary, summary
        assert tab.frame.locator(".prob-row").count() == 2
        tab.no_injected_elements()
        assert tab.dialogs == [] and tab.errors == [], (tab.dialogs, tab.errors)
    finally:
        tab.close()


def test_under_path_prefix(servers, browser):
    tb = servers["prefix"]
    tab = Tab(browser, tb.base)
    try:
        assert "/tb/data/plugin_entry.html" in tab.frame.url
        tab.select_run("transformer")
        px = tab.pixels('.hm-canvas[data-layer="1"][data-head="1"]')
        assert px and px["ink"] > px["total"] * 0.3
        plugin_requests = [u for u in tab.requests if "/data/plugin/attention/" in u]
        assert plugin_requests and all("/tb/data/plugin/attention/" in u for u in plugin_requests), plugin_requests
        tab.no_injected_elements()
        assert tab.dialogs == [] and tab.errors == [] and tab.bad_responses == [], (tab.dialogs, tab.errors, tab.bad_responses)
    finally:
        tab.close()
