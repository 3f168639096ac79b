#!/usr/bin/env python
"""The README's pictures of the Attention tab, taken from real runs (docs/img/*.png).

    python scripts/real_run_screenshots.py --default-run runs/shots-default \\
        --transformer-run runs/shots-transformer --seq2seq-run runs/h7-gru-cmudict \\
        --minilm-probe --out docs/img

Each option is optional; only the pictures of the runs given are retaken:

  --default-run RUN       a `python train.py` run (BiLSTM + attention pooling) with
                          logged attention: default_tab.png (the whole TensorBoard
                          page), default_pooling_text.png (last step, strongest word
                          hovered), default_pooling_first_step.png (the same example
                          at the first logged step), default_evolution.png
  --transformer-run RUN   a `python train.py --model transformer` run:
                          transformer_heatmaps.png (the whole page),
                          transformer_heatmap_enlarged_hover.png,
                          transformer_head_view.png, transformer_head_view_hover.png,
                          transformer_flows.png
  --seq2seq-run RUN       a seq2seq run, probed with `python -m attn_tf.probe RUN
                          --text ...` (its greedy output and the cross-attention
                          along it): seq2seq_cross_attention.png
  --minilm-probe          `python -m attn_tf.probe --pretrained minilm` on two
                          sentences: minilm_probe_heatmaps.png, minilm_probe_head_view.png

The classifier runs' attention is the one logged during training (the probe
examples, every step): their event files are copied into a temporary logdir
(runs/ itself is only read), a real `tensorboard --logdir` is started on it and
headless Chromium (scripts/screenshots.py's Shooter) drives the tab. The probe
example shown is chosen from the last step's headers: a correct prediction of
8-30 tokens, nearest to 20 (--probe TAG picks it instead). A classifier run
without logged attention (trained with --attention-every 0) is probed with one
movie review instead, and has no evolution picture. The script prints every
file it wrote and a caption line for each, saying which run and command the
picture comes from. scripts/screenshots.py (a synthetic logdir) stays the
script for the docs and tests of every view.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "scripts"))

from screenshots import CHROMIUM, CHROMIUM_ARGS, Shooter, tensorboard_page, wait_for_runs  # noqa: E402
from tb_plugin.local_tensorboard import start_tensorboard  # noqa: E402

MINILM_TEXTS = ["The film's quiet, patient storytelling pays off in a genuinely moving final act.",
                "A man is eating a piece of bread."]
REVIEW = "the film's quiet, patient storytelling pays off in a final act that is genuinely moving."
SEQ2SEQ_TEXTS = {"cmudict": "attention", "de_en": "ich habe heute keine zeit ."}


class Failure(Exception):
    """A run that cannot be used, with the message for the user."""


# ------------------------------------------------------------------------ the runs


def run_config(run_dir, option):
    """The config.json of a train.py run directory.

    Args:
        run_dir: the run directory.
        option: the command-line option that named it (for the message).

    Returns:
        the parsed config dict.
    """
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise Failure("%s %s: not a train.py run directory (no config.json)" % (option, run_dir))
    with open(path) as f:
        return json.load(f)


def stage_logged(run_dir, logdir, name):
    """Copies the attention event files of a run into logdir/name/attention/.

    Args:
        run_dir: a train.py run directory.
        logdir: the temporary logdir TensorBoard will read.
        name: the run's directory name there.

    Returns:
        True if the run had logged attention, else False (nothing copied).
    """
    events = sorted(glob.glob(os.path.join(run_dir, "attention", "events.out.tfevents.*")))
    if not events:
        return False
    dest = os.path.join(logdir, name, "attention")
    os.makedirs(dest, exist_ok=True)
    for e in events:
        shutil.copy2(e, dest)
    return True


def probe(target, texts, logdir, name):
    """Writes the attention of `texts` with `python -m attn_tf.probe` into logdir/name.

    Args:
        target: a run directory, or "--pretrained minilm".
        texts: the texts to probe.
        logdir: the temporary logdir.
        name: the probe's run name.

    Returns:
        the command as a user would type it (for the caption).
    """
    head = target.split() if target.startswith("--") else [target]
    args = head + [a for t in texts for a in ("--text", t)]
    done = subprocess.run([sys.executable, "-m", "attn_tf.probe"] + args + ["--logdir", logdir, "--run-name", name],
                          cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode:
        raise Failure("python -m attn_tf.probe %s failed:\n%s" % (" ".join(head), done.stdout[-2000:]))
    return "python -m attn_tf.probe %s %s --logdir DIR" % (
        " ".join(head), " ".join("--text %s" % json.dumps(t) for t in texts))


def training_command(config):
    """The train.py command line a run's config.json records (the options that differ from the defaults)."""
    parts = ["python train.py"]
    if config.get("model") != "bilstm_attention":
        parts.append("--model %s" % config.get("model"))
    if config.get("dataset") not in (None, "movie_reviews", "cmudict"):
        parts.append("--dataset %s" % config["dataset"])
    if config.get("max_steps"):
        parts.append("--max-steps %d" % config["max_steps"])
    parts.append("--run-name %s" % config.get("run_name"))
    return " ".join(parts)


# ----------------------------------------------------------------------- tensorboard


def get_json(base, route, **query):
    with urllib.request.urlopen(base + "/data/plugin/attention/" + route + "?" + urllib.parse.urlencode(query), timeout=60) as r:
        return json.loads(r.read())


def tb_run(tags, name):
    """The TensorBoard run name of the staged directory `name` (name or name/attention)."""
    for run in sorted(tags):
        if run == name or run.startswith(name + "/"):
            return run
    raise Failure("tensorboard lists no attention for %s (runs: %s)" % (name, sorted(tags)))


def pick_probe(base, tags, run, wanted=None):
    """The probe example to show: `wanted`, else a correct prediction of 8-30 tokens nearest to 20.

    Args:
        base: TensorBoard's base URL.
        tags: the plugin's tags listing.
        run: the TensorBoard run.
        wanted: a tag or its probe name (probe_003), or None.

    Returns:
        (tag, header at the last step).
    """
    series = tags[run]
    if wanted:
        tag = wanted if wanted in series else "attention/" + wanted
        if tag not in series:
            raise Failure("--probe %s: %s has %s" % (wanted, run, ", ".join(sorted(series))))
        return tag, get_json(base, "header", run=run, tag=tag, step=series[tag]["max_step"])
    best = None
    for tag in sorted(series):
        h = get_json(base, "header", run=run, tag=tag, step=series[tag]["max_step"])
        n = max(len(v) for v in h["tokens"].values())
        correct = h.get("label") is not None and h.get("label") == h.get("prediction")
        score = (not correct, not 8 <= n <= 30, abs(n - 20))
        if best is None or score < best[0]:
            best = (score, tag, h)
    return best[1], best[2]


# --------------------------------------------------------------------------- browser


def open_example(s, run, tag, step_index=None):
    """Shows `run`, probe `tag` (and a step by index: 0 = first) in the Shooter's page."""
    s.run(run)
    if tag:
        s.page.select_option("#tag-select", tag)
        s.wait(renderedTag=tag)
    if step_index is not None:
        step = s.page.evaluate("i => { const a = window.attentionApp; a.setStepIndex(i); return String(a.state.steps[i]); }",
                               step_index)
        s.wait(renderedStep=step)


def shoot_default(browser, s, base, out, run, tag, logged):
    tensorboard_page(browser, base, os.path.join(out, "default_tab.png"), run, tag)
    open_example(s, run, tag)
    s.view("heatmaps")
    s.hover_strongest_pooled()
    s.shot("default_pooling_text.png", ".panel.pooling", extra=".tooltip")
    s.page.mouse.move(0, 0)
    if logged:
        open_example(s, run, tag, step_index=0)
        s.shot("default_pooling_first_step.png", ".panel.pooling")
        open_example(s, run, tag)
        s.view("evolution")
        s.shot("default_evolution.png", ".view.evolution")


def sharpest_head(s):
    """(layer, head) of the self-attention head with the lowest mean row entropy at the shown step."""
    return s.page.evaluate(
        """async () => { const app = window.attentionApp; const L = await app.layers(); let best = null;
           app.header.layers.forEach((d, li) => { if (d.kind === "pooling") return;
             const [H, Q, K] = L[li].shape; const m = L[li].data;
             for (let h = 0; h < H; h++) { let e = 0;
               for (let i = 0; i < Q; i++) for (let j = 0; j < K; j++) {
                 const w = m[(h * Q + i) * K + j]; if (w > 0) e -= w * Math.log(w); }
               if (!best || e / Q < best[2]) best = [li, h, e / Q]; } });
           return best; }""")[:2]


def click_matrix(layer, head):
    """A tensorboard_page `prepare`: enlarges one matrix of the layers x heads grid."""
    def prepare(frame):
        frame.click('.hm-canvas[data-layer="%s"][data-head="%s"]' % (layer, head))
        frame.page.mouse.move(0, 0)  # no hover tooltip over the grid
        frame.wait_for_function("() => document.querySelector('#attn-app').dataset.state === 'ready'", timeout=60000)
    return prepare


def shoot_transformer(browser, s, base, out, run, tag):
    open_example(s, run, tag)
    s.view("heatmaps")
    layer, head = sharpest_head(s)
    tensorboard_page(browser, base, os.path.join(out, "transformer_heatmaps.png"), run, tag, click_matrix(layer, "mean"))
    s.page.click('.hm-canvas[data-layer="%d"][data-head="%d"]' % (layer, head))
    s.wait()
    s.hover_strongest_cell("window.attentionApp.views.heatmaps.detail", 0.5)
    s.shot("transformer_heatmap_enlarged_hover.png", "#hm-detail", extra=".tooltip")
    s.page.evaluate("() => window.attentionApp.views.heatmaps.detail.onLeave()")
    s.page.select_option("#layer-select", str(layer))
    s.head_view_and_flows("transformer_head_view.png", "transformer_head_view_hover.png", "transformer_flows.png", 0.5)
    return layer, head


def shoot_seq2seq(s, run):
    open_example(s, run, None)
    s.view("cross")
    s.hover_strongest_cell("window.attentionApp.views.cross.matrix", 0.5)
    s.shot("seq2seq_cross_attention.png", ".view.cross", extra=".tooltip")


def shoot_minilm(s, run):
    open_example(s, run, None)
    s.view("heatmaps")
    s.shot("minilm_probe_heatmaps.png")
    s.view("headview")
    s.shot("minilm_probe_head_view.png")


# ------------------------------------------------------------------------------ main


def stage(args, logdir):
    """Puts every requested run into logdir. Returns {part: dict(name, caption source, ...)}."""
    parts = {}
    if args.default_run:
        config = run_config(args.default_run, "--default-run")
        name = os.path.basename(os.path.normpath(args.default_run))
        logged = stage_logged(args.default_run, logdir, name)
        if not logged:
            raise Failure("--default-run %s has no logged attention (%s/attention/); train it with --attention-every N"
                          % (args.default_run, args.default_run))
        parts["default"] = dict(name=name, logged=True, source="`%s` (%s)" % (training_command(config), args.default_run))
    if args.transformer_run:
        config = run_config(args.transformer_run, "--transformer-run")
        name = os.path.basename(os.path.normpath(args.transformer_run))
        logged = stage_logged(args.transformer_run, logdir, name)
        source = "`%s` (%s)" % (training_command(config), args.transformer_run)
        if not logged:
            source += ", probed with `%s`" % probe(args.transformer_run, [REVIEW], logdir, name)
        parts["transformer"] = dict(name=name, logged=logged, source=source)
    if args.seq2seq_run:
        config = run_config(args.seq2seq_run, "--seq2seq-run")
        text = args.seq2seq_text or SEQ2SEQ_TEXTS.get(config.get("dataset"))
        if not text:
            raise Failure("--seq2seq-run %s was trained on --data; pass --seq2seq-text TEXT to probe it" % args.seq2seq_run)
        name = "probe-" + os.path.basename(os.path.normpath(args.seq2seq_run))
        cmd = probe(args.seq2seq_run, [text], logdir, name)
        parts["seq2seq"] = dict(name=name, source="`%s` of the run `%s` (%s)" % (cmd, training_command(config), args.seq2seq_run))
    if args.minilm_probe:
        cmd = probe("--pretrained minilm", MINILM_TEXTS, logdir, "probe-minilm")
        parts["minilm"] = dict(name="probe-minilm", source="`%s`" % cmd)
    return parts


def shoot(base, out, parts, tags, wanted_probe):
    from playwright.sync_api import sync_playwright

    captions = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # A fresh page per run, so no layer or head chosen for one run carries over to the next.
            for kind in ("default", "transformer"):
                if kind in parts:
                    s = Shooter(browser, base, out)
                    run = tb_run(tags, parts[kind]["name"])
                    tag, h = pick_probe(base, tags, run, wanted_probe)
                    where = "probe example %s (label %s, prediction %s), last logged step %s" % (
                        tag.split("/")[-1], h.get("label"), h.get("prediction"), tags[run][tag]["max_step"])
                    if kind == "default":
                        shoot_default(browser, s, base, out, run, tag, parts[kind]["logged"])
                    else:
                        where += "; enlarged: layer %d head %d (the lowest mean row entropy), head view of that layer" % (
                            shoot_transformer(browser, s, base, out, run, tag))
                    captions.append((kind, "%s, %s" % (parts[kind]["source"], where)))
                    s.page.close()
            if "seq2seq" in parts:
                s = Shooter(browser, base, out)
                shoot_seq2seq(s, tb_run(tags, parts["seq2seq"]["name"]))
                captions.append(("seq2seq", parts["seq2seq"]["source"]))
            if "minilm" in parts:
                s = Shooter(browser, base, out)
                shoot_minilm(s, tb_run(tags, parts["minilm"]["name"]))
                captions.append(("minilm", parts["minilm"]["source"]))
        finally:
            browser.close()
    return captions


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--default-run", metavar="RUN", help="a `python train.py` run (BiLSTM + attention pooling)")
    p.add_argument("--transformer-run", metavar="RUN", help="a `python train.py --model transformer` run")
    p.add_argument("--seq2seq-run", metavar="RUN", help="a seq2seq run (probed with attn_tf.probe)")
    p.add_argument("--seq2seq-text", metavar="TEXT",
                   help="the source text to probe it with (default: %s)" % ", ".join("%s: %r" % kv for kv in SEQ2SEQ_TEXTS.items()))
    p.add_argument("--minilm-probe", action="store_true", help="probe the pretrained MiniLM on two sentences")
    p.add_argument("--probe", metavar="TAG", help="the probe example of the classifier runs to show (e.g. probe_003)")
    p.add_argument("--out", default=os.path.join(REPO, "docs", "img"), help="where the PNGs go (default docs/img)")
    args = p.parse_args()
    if not (args.default_run or args.transformer_run or args.seq2seq_run or args.minilm_probe):
        p.error("nothing to take: give --default-run, --transformer-run, --seq2seq-run and/or --minilm-probe")
    if not os.path.exists(CHROMIUM):
        sys.exit("needs Debian chromium at %s (apt-get install chromium)" % CHROMIUM)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="attention_real_screens_") as logdir:
        try:
            parts = stage(args, logdir)
        except Failure as e:
            sys.exit(str(e))
        proc, base = start_tensorboard(logdir)
        try:
            tags = wait_for_runs(base, [])
            deadline = time.time() + 120
            while not all(any(r == v["name"] or r.startswith(v["name"] + "/") for r in tags) for v in parts.values()):
                if time.time() > deadline:
                    sys.exit("tensorboard never listed %s (it lists %s)" % ([v["name"] for v in parts.values()], sorted(tags)))
                time.sleep(1)
                tags = wait_for_runs(base, [])
            captions = shoot(base, args.out, parts, tags, args.probe)
        except Failure as e:
            sys.exit(str(e))
        finally:
            proc.kill()
            proc.wait()
    print("\nCaptions (the source of each group of pictures):")
    for kind, text in captions:
        print("  %-11s %s" % (kind + ":", text))
    print("done in %.0f s" % (time.time() - t0))


if __name__ == "__main__":
    main()
