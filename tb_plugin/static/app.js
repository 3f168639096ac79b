// The tab: selection (run, probe example, layer, step with playback), the
// view switcher, the export bar and the shared state the views read.

import { Api } from "./api.js";
import { el, replaceChildren, select, setOptions, labelled, download, slug, fmt } from "./dom.js";
import { COLORMAPS, SEQUENTIAL } from "./colors.js";
import { HeatmapsView } from "./views/heatmaps.js";
import { HeadView } from "./views/headview.js";
import { FlowsView } from "./views/flows.js";
import { EvolutionView } from "./views/evolution.js";
import { CrossView } from "./views/cross.js";
import { CompareView } from "./views/compare.js";
import { LivePanel } from "./live.js";

const DEFAULT_HINT =
  "This series may be downsampled (TensorBoard keeps 10 steps by default): " +
  "start tensorboard with --samples_per_plugin=attention=0 to see every step.";

const PLAY_INTERVAL_MS = 700;

export class App {
  constructor(root, { earlyTags } = {}) {
    this.root = root;
    this.api = new Api({ earlyTags });
    this.state = {
      run: null,
      tag: null,
      steps: [],
      wallTimes: [],
      stepIndex: 0,
      layer: 0,
      head: "mean",
      agg: "mean",
      colormap: "blues",
      scale: "matrix",
      view: "heatmaps",
    };
    this.tags = {};
    this.header = null;
    // A typed text shown instead of a probe step (tb_plugin/static/live.js):
    // {run, seq, result: {header, layers}, compare, task} or null.
    this.live = null;
    this.playing = null;
    this.gen = 0;
    this.build();
  }

  // ---------------------------------------------------------------- layout

  build() {
    const s = this.state;
    this.runSel = select([], null, (v) => this.setRun(v), { "aria-label": "run", id: "run-select" });
    this.tagSel = select([], null, (v) => this.setTag(v), { "aria-label": "probe example", id: "tag-select" });
    this.layerSel = select([], null, (v) => this.setLayer(parseInt(v, 10)), { "aria-label": "layer", id: "layer-select" });
    this.slider = el("input", {
      type: "range",
      min: 0,
      max: 0,
      step: 1,
      value: 0,
      id: "step-slider",
      "aria-label": "training step",
      oninput: () => this.slideTo(parseInt(this.slider.value, 10)),
    });
    this.stepLabel = el("span", { class: "step-label", id: "step-label" }, "step \u2013");
    this.playBtn = el("button", { class: "btn play", id: "play-button", title: "Play the steps in order", onclick: () => this.togglePlay() }, "\u25b6 Play");
    this.hint = el("div", { class: "hint", id: "downsample-hint", hidden: true });
    this.status = el("div", { class: "status", id: "status", role: "status" });
    this.summary = el("div", { class: "example-summary", id: "example-summary" });
    this.cmapSel = select(SEQUENTIAL, s.colormap, (v) => {
      s.colormap = v;
      this.update();
    }, { "aria-label": "colour map" });
    this.scaleSel = select(
      [
        ["matrix", "0 \u2013 max of each matrix"],
        ["unit", "0 \u2013 1 (fixed)"],
      ],
      s.scale,
      (v) => {
        s.scale = v;
        this.update();
      },
      { "aria-label": "colour scale" }
    );

    this.views = {
      heatmaps: new HeatmapsView(this),
      headview: new HeadView(this),
      flows: new FlowsView(this),
      evolution: new EvolutionView(this),
      cross: new CrossView(this),
      compare: new CompareView(this),
    };
    this.livePanel = new LivePanel(this);
    this.evolutionNA = el("div", { class: "status empty", id: "evolution-na" }, "Evolution over training steps does not apply to a typed text (it has no steps); go back to the probe examples to see it.");
    const names = [
      ["heatmaps", "Heatmaps"],
      ["headview", "Head view"],
      ["flows", "Attention flows"],
      ["evolution", "Evolution"],
      ["cross", "Cross-attention"],
      ["compare", "Compare texts"],
    ];
    this.viewButtons = {};
    const switcher = el(
      "div",
      { class: "view-switcher", role: "tablist" },
      names.map(([key, label]) => {
        const b = el("button", { class: "tab-btn", role: "tab", dataset: { view: key }, onclick: () => this.setView(key) }, label);
        this.viewButtons[key] = b;
        return b;
      })
    );
    this.exportBtns = {
      png: el("button", { class: "btn small", title: "The current view as a PNG image", onclick: () => this.export("png") }, "PNG"),
      svg: el("button", { class: "btn small", title: "The selected matrix as an SVG (vector) image", onclick: () => this.export("svg") }, "SVG"),
      json: el("button", { class: "btn small", title: "The current data as JSON", onclick: () => this.export("json") }, "JSON"),
      csv: el("button", { class: "btn small", title: "The current data as CSV", onclick: () => this.export("csv") }, "CSV"),
    };
    const exportBar = el("div", { class: "export-bar" }, el("span", { class: "ctl-label" }, "Export"), Object.values(this.exportBtns));
    this.viewHost = el("div", { class: "view-host", id: "view-host" });

    replaceChildren(
      this.root,
      el(
        "div",
        { class: "attn-app", id: "attn-app" },
        el(
          "div",
          { class: "toolbar" },
          labelled("Run", this.runSel),
          labelled("Probe example", this.tagSel),
          this.livePanel.toggle,
          labelled("Layer", this.layerSel),
          el(
            "div",
            { class: "step-ctl" },
            el("span", { class: "ctl-label" }, "Step"),
            this.playBtn,
            this.slider,
            this.stepLabel
          ),
          labelled("Colours", this.cmapSel),
          labelled("Scale", this.scaleSel)
        ),
        this.livePanel.node,
        this.hint,
        this.summary,
        el("div", { class: "view-bar" }, switcher, exportBar),
        this.status,
        this.viewHost
      )
    );
    this.appNode = this.root.querySelector("#attn-app");
    this.markView();
  }

  markView() {
    for (const [key, b] of Object.entries(this.viewButtons)) {
      b.classList.toggle("active", key === this.state.view);
      b.setAttribute("aria-selected", key === this.state.view ? "true" : "false");
    }
    replaceChildren(this.viewHost, this.views[this.state.view].node);
  }

  setStatus(text, kind) {
    replaceChildren(this.status, text || "");
    this.status.className = "status" + (kind ? " " + kind : "");
  }

  // ----------------------------------------------------------------- state

  get step() {
    if (this.live) return "typed text #" + this.live.seq;
    return this.state.steps[this.state.stepIndex];
  }

  get lut() {
    return COLORMAPS[this.state.colormap] || COLORMAPS.blues;
  }

  async start() {
    try {
      await this.loadTags();
    } catch (e) {
      this.setStatus("Could not list attention series: " + e.message, "error");
    }
  }

  /** Called when TensorBoard reloads its data: new runs, tags or steps. */
  async refresh() {
    this.api.invalidate();
    const wasLast = this.state.stepIndex === this.state.steps.length - 1;
    try {
      await this.loadTags(true);
      // A typed text stays on screen; the probe steps are re-read when the user goes back.
      if (this.state.run && this.state.tag && !this.live) await this.loadSteps(wasLast);
    } catch (e) {
      this.setStatus("Reload failed: " + e.message, "error");
    }
  }

  async loadTags(keep) {
    this.tags = await this.api.tags();
    const runs = Object.keys(this.tags).sort();
    if (!runs.length) {
      this.setStatus(
        "No attention data found. Log probe examples with attn_tf's attention callback (or tb_plugin.summary) " +
          "into the --logdir of this TensorBoard.",
        "empty"
      );
      this.appNode.dataset.state = "empty";
      return;
    }
    setOptions(this.runSel, runs.map((r) => [r, r]));
    const run = keep && runs.includes(this.state.run) ? this.state.run : runs[0];
    this.runSel.value = run;
    if (!keep) await this.setRun(run);
    else this.fillTags(run);
  }

  fillTags(run) {
    const tags = Object.keys(this.tags[run] || {}).sort();
    setOptions(this.tagSel, tags.map((t) => [t, t.startsWith("attention/") ? t.slice("attention/".length) : t]));
    return tags;
  }

  async setRun(run) {
    this.stop();
    this.state.run = run;
    this.appNode.dataset.state = "loading";
    const tags = this.fillTags(run);
    const tag = tags.includes(this.state.tag) ? this.state.tag : tags[0];
    this.tagSel.value = tag;
    await this.setTag(tag);
  }

  async setTag(tag) {
    this.stop();
    this.state.tag = tag;
    this.appNode.dataset.state = "loading";
    await this.loadSteps(true);
  }

  async loadSteps(toLast) {
    const { run, tag } = this.state;
    const oldStep = this.step;
    let res;
    try {
      res = await this.api.steps(run, tag);
    } catch (e) {
      this.setStatus("Could not list steps of " + tag + ": " + e.message, "error");
      return;
    }
    if (run !== this.state.run || tag !== this.state.tag) return;
    this.state.steps = res.steps || [];
    this.state.wallTimes = res.wall_times || [];
    if (res.maybe_downsampled) {
      replaceChildren(this.hint, "\u26a0 ", res.hint || DEFAULT_HINT);
      this.hint.hidden = false;
    } else {
      this.hint.hidden = true;
    }
    const n = this.state.steps.length;
    this.slider.max = String(Math.max(0, n - 1));
    this.slider.disabled = n <= 1;
    this.playBtn.disabled = n <= 1;
    let idx = n - 1;
    if (!toLast && oldStep !== undefined) {
      const k = this.state.steps.indexOf(oldStep);
      if (k >= 0) idx = k;
    }
    if (!n) {
      this.setStatus("The series " + tag + " has no steps.", "empty");
      return;
    }
    await this.setStepIndex(Math.max(0, idx), true);
  }

  /**
   * Slider input: the label follows at once, the fetch waits until the
   * slider rests for a moment, so dragging across 1000 steps does not ask
   * the server for every step on the way.
   */
  slideTo(idx) {
    this.stop();
    this.showStep(idx);
    clearTimeout(this.slideTimer);
    this.slideTimer = setTimeout(() => this.setStepIndex(idx), 90);
  }

  showStep(idx) {
    const n = this.state.steps.length;
    const step = this.state.steps[idx];
    replaceChildren(this.stepLabel, `step ${step}`, el("span", { class: "muted" }, ` (${idx + 1}/${n})`));
    const wt = this.state.wallTimes[idx];
    this.stepLabel.title = wt ? new Date(wt * 1000).toLocaleString() : "";
  }

  async setStepIndex(idx, force) {
    const n = this.state.steps.length;
    if (!n) return;
    idx = Math.max(0, Math.min(n - 1, idx | 0));
    if (idx === this.state.stepIndex && !force && this.header && this.header.step === this.step) return;
    this.state.stepIndex = idx;
    this.slider.value = String(idx);
    this.showStep(idx);
    await this.loadStep();
  }

  async loadStep() {
    const { run, tag } = this.state;
    const step = this.step;
    const gen = ++this.gen;
    this.appNode.dataset.state = "loading";
    let header;
    try {
      header = await this.api.header(run, tag, step);
    } catch (e) {
      if (gen === this.gen) {
        this.setStatus(`Could not read step ${step} of ${tag}: ${e.message}`, "error");
        this.appNode.dataset.state = "error";
      }
      return;
    }
    if (gen !== this.gen) return;
    this.live = null;
    this.appNode.dataset.live = "0";
    this.header = header;
    this.fillLayers();
    this.fillSummary();
    await this.update(gen);
  }

  fillLayers() {
    const h = this.header;
    const opts = h.layers.map((l, i) => [i, `${i}: ${l.name} (${l.kind}, ${l.shape.join("\u00d7")})`]);
    const prev = this.state.layer;
    setOptions(this.layerSel, opts);
    this.state.layer = prev < h.layers.length ? prev : 0;
    this.layerSel.value = String(this.state.layer);
    const hasCross = h.layers.some((l) => l.kind === "cross");
    this.viewButtons.cross.classList.toggle("dim", !hasCross);
    this.viewButtons.cross.title = hasCross ? "" : "This example has no cross-attention layer";
  }

  fillSummary() {
    const h = this.header;
    const bits = [];
    const series = this.live ? null : (this.tags[this.state.run] || {})[this.state.tag];
    if (this.live) bits.push(el("span", { class: "live-badge" }, "your text · model of ", el("b", null, this.live.run)));
    if (series && series.description) bits.push(el("span", { class: "series-description" }, series.description));
    const nTok = Object.entries(h.tokens).map(([k, v]) => `${v.length} ${k} tokens`).join(", ");
    bits.push(el("span", null, nTok));
    bits.push(el("span", null, `${h.layers.length} layer${h.layers.length === 1 ? "" : "s"}`));
    if (h.label !== null && h.label !== undefined) bits.push(el("span", null, "label: ", el("b", null, String(h.label))));
    if (h.prediction !== null && h.prediction !== undefined) {
      const ok = h.label === null || h.label === undefined ? "" : h.label === h.prediction ? " ok" : " wrong";
      let p = "";
      if (h.probabilities && h.class_names) {
        const k = h.class_names.indexOf(h.prediction);
        if (k >= 0) p = ` (${fmt(h.probabilities[k])})`;
      }
      bits.push(el("span", { class: "pred" + ok }, "prediction: ", el("b", null, String(h.prediction)), p));
    }
    replaceChildren(this.summary, ...bits);
  }

  setLayer(i) {
    this.state.layer = i;
    this.layerSel.value = String(i);
    this.update();
  }

  /** Sets the layer and head shown large (heatmap click). */
  selectMatrix(layer, head) {
    this.state.layer = layer;
    this.state.head = head;
    this.layerSel.value = String(layer);
    this.update();
  }

  setView(key, redraw = true) {
    if (!this.views[key]) return;
    this.state.view = key;
    this.markView();
    if (redraw) this.update();
  }

  /** Re-renders the active view for the current state. */
  async update(gen) {
    if (gen === undefined) gen = ++this.gen;
    if (!this.header) return;
    const view = this.views[this.state.view];
    const na = this.live && this.state.view === "evolution";
    const shown = na ? this.evolutionNA : view.node;
    if (this.viewHost.firstChild !== shown) replaceChildren(this.viewHost, shown);
    this.appNode.dataset.state = "loading";
    this.setStatus("");
    try {
      if (!na) await view.update(gen);
      if (gen === this.gen) {
        this.appNode.dataset.renderedLive = this.live ? String(this.live.seq) : "0";
        this.appNode.dataset.state = "ready";
        this.appNode.dataset.renderedStep = String(this.step);
        this.appNode.dataset.renderedRun = this.state.run;
        this.appNode.dataset.renderedTag = this.state.tag;
        this.appNode.dataset.renderedView = this.state.view;
      }
    } catch (e) {
      if (gen === this.gen) {
        console.error(e);
        this.setStatus(e.message || String(e), "error");
        this.appNode.dataset.state = "error";
      }
    }
    this.refreshExport();
  }

  isCurrent(gen) {
    return gen === this.gen;
  }

  /** All layers of the current step (fetched in parallel, cached). */
  layers() {
    if (this.live) return Promise.resolve(this.live.result.layers);
    return this.api.allLayers(this.state.run, this.state.tag, this.step, this.header);
  }

  layerData(i) {
    if (this.live) return Promise.resolve(this.live.result.layers[i]);
    return this.api.layer(this.state.run, this.state.tag, this.step, i);
  }

  /** Rollout ({tokens, rollout, layers}) of the example shown: a probe step or a typed text. */
  rollout(headFusion, excludeFirst) {
    if (this.live) return this.livePanel.api.rollout(this.live.run, this.header.text, headFusion, excludeFirst);
    return this.api.rollout(this.state.run, this.state.tag, this.step, headFusion, excludeFirst);
  }

  flow(position, headFusion, excludeFirst) {
    if (this.live) return this.livePanel.api.flow(this.live.run, this.header.text, position, headFusion, excludeFirst);
    return this.api.flow(this.state.run, this.state.tag, this.step, position, headFusion, excludeFirst);
  }

  /** Shows a typed text's result (live.js) in the current view, like a probe step. */
  async showLive(live) {
    this.stop();
    this.live = live;
    this.appNode.dataset.live = "1";
    this.header = live.result.header;
    this.fillLayers();
    this.fillSummary();
    if (this.state.view === "compare" && !live.compare) this.state.view = "heatmaps";
    this.markView();
    await this.update();
  }

  /** Back from a typed text to the selected probe example. */
  async exitLive() {
    if (!this.live) return;
    this.live = null;
    this.appNode.dataset.live = "0";
    if (this.state.view === "compare") this.setView("heatmaps", false);
    if (this.state.run && this.state.tag && this.state.steps.length) await this.loadStep();
  }

  // -------------------------------------------------------------- playback

  togglePlay() {
    if (this.playing) this.stop();
    else this.play();
  }

  async play() {
    if (this.state.steps.length <= 1) return;
    const token = {};
    this.playing = token;
    this.playBtn.textContent = "\u275a\u275a Pause";
    this.playBtn.classList.add("on");
    if (this.state.stepIndex >= this.state.steps.length - 1) await this.setStepIndex(0);
    while (this.playing === token) {
      await new Promise((r) => setTimeout(r, PLAY_INTERVAL_MS));
      if (this.playing !== token) return;
      const next = this.state.stepIndex + 1;
      if (next >= this.state.steps.length) break;
      await this.setStepIndex(next);
      this.prefetch(next + 1);
    }
    if (this.playing === token) this.stop();
  }

  stop() {
    this.playing = null;
    this.playBtn.textContent = "\u25b6 Play";
    this.playBtn.classList.remove("on");
  }

  prefetch(idx) {
    const step = this.state.steps[idx];
    if (step === undefined) return;
    const { run, tag } = this.state;
    this.api
      .header(run, tag, step)
      .then((h) => this.api.allLayers(run, tag, step, h))
      .catch(() => {});
  }

  // ---------------------------------------------------------------- export

  refreshExport() {
    const ex = this.views[this.state.view].exports ? this.views[this.state.view].exports() : {};
    for (const [k, b] of Object.entries(this.exportBtns)) b.disabled = !ex[k];
  }

  baseName() {
    const s = this.state;
    return slug([s.run, s.tag, "step" + this.step, s.view].join("_"));
  }

  async export(kind) {
    const view = this.views[this.state.view];
    const ex = view.exports ? view.exports() : {};
    const make = ex[kind];
    if (!make) return;
    const name = this.baseName() + (ex.suffix ? "_" + slug(ex.suffix) : "");
    try {
      if (kind === "png") {
        const canvas = make();
        const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
        if (!blob) throw new Error("the canvas could not be encoded");
        download(blob, name + ".png");
      } else if (kind === "svg") {
        download(new Blob([make()], { type: "image/svg+xml" }), name + ".svg");
      } else if (kind === "json") {
        const meta = { run: this.state.run, tag: this.state.tag, step: this.step };
        download(new Blob([JSON.stringify(Object.assign(meta, make()))], { type: "application/json" }), name + ".json");
      } else if (kind === "csv") {
        download(new Blob([make()], { type: "text/csv" }), name + ".csv");
      }
    } catch (e) {
      this.setStatus("Export failed: " + e.message, "error");
    }
  }
}
