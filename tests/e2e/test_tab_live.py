"""Typed texts in the Attention tab, in headless Chromium against a real `tensorboard` (Rust data server,
--path_prefix): a BiLSTM and a Transformer run exported in the fixture (tests/tb_plugin/test_plugin_live_support.py).

A user types a sentence, the heatmap redraws with exactly its tokens; compares it with an edited copy and
sees a difference view and the prediction change; an HTML-looking text stays text; an over-long text gets
the limit's message; "Keep this text" shows the probe command. Needs /usr/bin/chromium and playwright.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tb_plugin"))

from test_tab_browser import CHROMIUM, CHROMIUM_ARGS, Tab, TensorBoard, sync_api  # noqa: E402

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian chromium at %s" % CHROMIUM),
]

BILSTM = "bilstm-tiny/attention"
TRANSFORMER = "transformer-tiny/attention"
INJECTION = "<img src=x onerror=alert(1)> <script>alert(2)</script> great"


@pytest.fixture(scope="module")
def live_tb(tmp_path_factory):
    from test_plugin_live_support import write_live_logdir

    runs = write_live_logdir(str(tmp_path_factory.mktemp("live_e2e")), layers=2)
    tb = TensorBoard(runs["logdir"], path_prefix="/tb")
    try:
        tb.wait_started()
        yield tb, runs
    finally:
        tb.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _type_and_run(tab, run, text, seq, button="#live-run"):
    f = tab.frame
    f.select_option("#live-run-select", run)
    f.fill("#live-text", text)
    f.click(button)
    f.wait_for_selector('#attn-app[data-state=ready][data-rendered-live="%d"]' % seq, state="attached",
                        timeout=180000)


def test_typed_texts_in_every_view(live_tb, browser):
    tb, runs = live_tb
    tab = Tab(browser, tb.base, direct=True)
    f = tab.frame
    try:
        f.click("#live-toggle")
        f.wait_for_function("() => [...document.querySelectorAll('#live-run-select option')].length === 2",
                            timeout=60000)
        options = f.eval_on_selector_all("#live-run-select option", "os => os.map(o => o.value)")
        assert sorted(options) == [BILSTM, TRANSFORMER], options  # the unexported run is not offered
        assert "1 run without an exported model" in f.inner_text(".live-missing summary")

        # BiLSTM: the pooling text redraws with exactly the typed tokens, prediction and probabilities shown.
        _type_and_run(tab, BILSTM, "The film was GREAT fun", 1)
        assert f.locator(".pool-tok").all_inner_texts() == ["the", "film", "was", "great", "fun"]
        assert f.locator(".live-result .live-prediction").inner_text() in ("neg", "pos")
        assert f.locator(".live-result .live-prob").count() == 2
        # The pooling text follows the Colours choice (item 5): greys are grey.
        f.select_option('select[aria-label="colour map"]', "greys")
        f.wait_for_function(
            "() => { const s = [...document.querySelectorAll('.pool-tok')].map(s => getComputedStyle(s).backgroundColor"
            ".match(/\\d+/g).slice(0, 3)); return s.length === 5 && s.every(([r, g, b]) => r === g && g === b); }",
            timeout=30000)
        f.select_option('select[aria-label="colour map"]', "blues")

        # Transformer: every block's heatmap, the enlarged matrix labelled with exactly the typed tokens.
        _type_and_run(tab, TRANSFORMER, "a boring plot and bad acting", 2)
        tokens = ["a", "boring", "plot", "and", "bad", "acting"]
        assert f.locator(".matrix-view .row-label").all_inner_texts() == tokens
        assert f.locator(".matrix-view .col-label").all_inner_texts() == tokens
        px = tab.pixels('.hm-canvas[data-layer="1"][data-head="0"]')
        assert px and px["ink"] > px["total"] * 0.3
        assert f.locator(".hm-entropy").count() >= 4  # entropy beside the max of every matrix

        # Head view and flows draw the typed text too; evolution says it does not apply.
        f.click('.tab-btn[data-view="headview"]')
        f.wait_for_selector('#attn-app[data-state=ready][data-rendered-view="headview"]', state="attached", timeout=60000)
        assert f.get_attribute("#attn-app", "data-rendered-live") == "2"
        f.click('.tab-btn[data-view="flows"]')
        f.wait_for_selector('#attn-app[data-state=ready][data-rendered-view="flows"]', state="attached", timeout=120000)
        f.click('.tab-btn[data-view="evolution"]')
        f.wait_for_selector("#evolution-na", state="visible", timeout=30000)
        f.click('.tab-btn[data-view="heatmaps"]')

        # Compare with an edited copy: A, B and the difference over aligned tokens, and the prediction change.
        f.click("#live-compare")
        assert f.input_value("#live-edited") == "a boring plot and bad acting"
        f.fill("#live-edited", "a fun plot and really bad acting")
        f.click("#live-compare")
        f.wait_for_selector('#attn-app[data-state=ready][data-rendered-live="3"][data-rendered-view="compare"]',
                            state="attached", timeout=120000)
        diff_rows = f.locator("#cmp-diff .row-label").all_inner_texts()
        assert diff_rows == ["a", "plot", "and", "bad", "acting"], diff_rows  # difflib alignment
        px = tab.pixels("#cmp-diff .matrix-canvas")
        assert px and px["ink"] > 0
        assert f.locator(".compare .matrix-view").count() == 3
        assert "Prediction change" in f.inner_text("#live-change")

        # "Keep this text": the probe command, with the run directory and the text shell-quoted.
        f.click("#live-keep-button")
        cmd = f.inner_text("#live-keep-command")
        assert cmd.startswith("python -m attn_tf.probe '%s' --text 'a boring plot and bad acting'"
                              % os.path.realpath(runs["transformer"])), cmd

        # An HTML-injection text is shown as text and never runs.
        _type_and_run(tab, BILSTM, INJECTION, 4)
        assert INJECTION in f.locator(".live-text-echo").all_inner_texts()
        assert any("<" in t for t in f.locator(".pool-tok").all_inner_texts())  # the tokens, as text
        tab.no_injected_elements()
        assert f.evaluate("() => document.querySelectorAll('script:not([src])').length") == 0

        # An over-long text: the limit's message, and the last result stays on screen.
        f.fill("#live-text", "word " * 500)
        f.click("#live-run")
        f.wait_for_selector("#live-panel[data-state=error]", state="attached", timeout=60000)
        message = f.inner_text("#live-status")
        assert "2000" in message and "MAX_TEXT_CHARS" in message, message
        assert f.get_attribute("#attn-app", "data-rendered-live") == "4"

        # Back to the probe examples: the probe's uniform 2x2 matrices are flagged (item 5).
        f.click("#live-exit")
        f.wait_for_selector('#attn-app[data-state=ready][data-rendered-live="0"]', state="attached", timeout=60000)
        f.select_option("#run-select", TRANSFORMER)
        f.wait_for_function("() => document.querySelectorAll('.hm-cell.near-uniform').length > 0", timeout=60000)
        assert "uniform" in f.inner_text(".hm-entropy.uniform >> nth=0")
        # The step-difference view of a 2-token matrix: the vertical row title ends above the legend (item 5).
        f.click('.tab-btn[data-view="evolution"]')
        f.wait_for_selector('#attn-app[data-state=ready][data-rendered-view="evolution"]', state="attached",
                            timeout=60000)
        gaps = f.evaluate("""() => [...document.querySelectorAll('#view-host .matrix-view')].map(v => {
            const t = v.querySelector('.row-title span').getBoundingClientRect();
            const l = v.querySelector('.legend').getBoundingClientRect();
            return l.top - t.bottom; })""")
        assert gaps and min(gaps) >= 0, gaps

        requests = [u for u in tab.requests if "/data/plugin/attention/live" in u]
        assert requests and all("/tb/data/plugin/attention/" in u for u in requests), requests
        assert tab.dialogs == [] and tab.errors == [], (tab.dialogs, tab.errors)
        assert [s for s, u in tab.bad_responses] == [413], tab.bad_responses  # only the over-long text
    finally:
        tab.close()
