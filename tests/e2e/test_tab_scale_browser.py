"""The Attention tab on a big step in a real browser: the scaled Heatmaps path.

A step of 4 layers x 4 heads x 384 tokens (2.4 M weights, over the 2^21 of
static/views/scaled.js) in the compact uint8 storage, served by a real
`tensorboard` (Rust data server). Checks what the issue asks: the tab fetches
only what it draws (`/grid` thumbnails and one `/layer?head=` matrix, never
the whole float32 layers), every thumbnail and the enlarged matrix hold
pixels, hover tooltips work on both, head toggling redraws the matrix and
keeps the token labels, and the entropy labels arrive afterwards.

Needs /usr/bin/chromium and the playwright package (skipped otherwise).
"""

import importlib.metadata
import os
import re
import time

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LAYERS, HEADS, TOKENS = 4, 4, 384
TAG = "attention/probe_000"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(240),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian chromium at %s" % CHROMIUM),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")

if not any(ep.name == "attention" for ep in importlib.metadata.entry_points().select(group="tensorboard_plugins")):
    pytest.skip("the attention plugin is not registered with tensorboard: pip install -e .", allow_module_level=True)


def _write(logdir):
    from tb_plugin import metadata, summary

    rng = np.random.default_rng(7)
    tokens = ["[CLS]"] + ["w%03d" % i for i in range(TOKENS - 2)] + ["[SEP]"]
    layers = [metadata.make_layer("encoder/block_%d" % i, "self", [HEADS, TOKENS, TOKENS]) for i in range(LAYERS)]
    arrays = []
    for _ in range(LAYERS):
        x = rng.normal(size=(HEADS, TOKENS, TOKENS)) * 3
        e = np.exp(x - x.max(-1, keepdims=True))
        arrays.append(e / e.sum(-1, keepdims=True))
    with summary.AttentionEventWriter(os.path.join(logdir, "bert"), storage="uint8") as w:
        w.add(metadata.make_header({"input": tokens}, layers), arrays, step=3, tag=TAG)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from tb_plugin.local_tensorboard import start_tensorboard
    import urllib.request
    import json

    logdir = str(tmp_path_factory.mktemp("scale_logdir"))
    _write(logdir)
    proc, url = start_tensorboard(logdir, timeout=120)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(url + "/data/plugin/attention/steps?run=bert&tag=attention%2Fprobe_000", timeout=10) as r:
                    if json.loads(r.read())["steps"] == [3]:
                        break
            except Exception:  # noqa: BLE001 - still loading
                pass
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_big_step_fetches_thumbnails_and_one_matrix(base):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            requests, errors = [], []
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base + "/data/plugin_entry.html?name=attention")
            page.wait_for_function("() => { const a = document.querySelector('#attn-app'); return a && a.dataset.state === 'ready'; }", timeout=90000)
            page.wait_for_function("() => !document.querySelector('#hm-grid [data-pending]')", timeout=60000)

            plugin = [u for u in requests if "/data/plugin/attention/" in u]
            grids = [u for u in plugin if "/grid?" in u]
            layers = [u for u in plugin if "/layer?" in u]
            assert len({re.search(r"layer=(\d+)", u).group(1) for u in grids}) == LAYERS, grids
            assert layers and all("head=" in u and "dtype=float16" in u for u in layers), layers

            # every thumbnail (4 heads + mean per layer) and the enlarged matrix hold pixels
            inked = page.evaluate("""() => [...document.querySelectorAll('.hm-canvas')].map((c) => {
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
                return n / (c.width * c.height);
            })""")
            assert len(inked) == LAYERS * (HEADS + 1) and min(inked) > 0.9, inked
            detail = page.evaluate("""() => { const c = document.querySelector('.matrix-view .matrix-canvas');
                return [c.width, c.height, new Set(Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)).size]; }""")
            assert detail[0] == TOKENS and detail[1] == TOKENS and detail[2] > 10, detail
            assert page.locator(".row-label").count() == TOKENS

            # hover: the exact weight on the enlarged matrix, the block max on a thumbnail
            page.hover(".matrix-view .matrix-overlay", position={"x": 1, "y": 1})
            assert re.search(r"^\[CLS\] -> \[CLS\]: [0-9.e-]+\s", page.locator(".tooltip").inner_text())
            page.hover('.hm-canvas[data-layer="1"][data-head="2"]', position={"x": 2, "y": 2})
            assert "max \u2248" in page.locator(".tooltip").inner_text()

            # head toggling: the matrix redraws, the labels stay, the title follows
            before = page.evaluate("() => document.querySelector('.matrix-view .matrix-canvas').getContext('2d').getImageData(0, 0, 64, 64).data.join()")
            label = page.locator(".row-label").nth(5).element_handle()
            page.select_option("#head-select", "2")
            page.wait_for_function("() => document.querySelector('#attn-app').dataset.state === 'ready'")
            assert "head 2" in page.locator(".matrix-title").inner_text()
            after = page.evaluate("() => document.querySelector('.matrix-view .matrix-canvas').getContext('2d').getImageData(0, 0, 64, 64).data.join()")
            assert after != before
            assert page.evaluate("(l) => l.isConnected", label)

            # entropy labels follow the pixels
            page.wait_for_function("() => [...document.querySelectorAll('.hm-entropy')].every((e) => /^H (\\d\\.\\d\\d|n\\/a)/.test(e.textContent))", timeout=60000)
            assert errors == [], errors
        finally:
            browser.close()
