// "Your own text": a text box and a model-run selector beside the probe
// selector. The text runs through the run's exported SavedModel on the server
// (POST ./live, docs/plugin_api.md); its result is shown in every view that
// applies, like a probe example. "Compare" sends the text and an edited copy
// together (the server aligns their tokens); "Keep this text" shows the
// command that logs the text permanently.
// Everything typed is user data: it reaches the page only as text nodes.

import { el, replaceChildren, select, setOptions, labelled, fmt, fmtSigned, panelHead } from "./dom.js";

async function postJSON(route, body) {
  const r = await fetch("./" + route, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) {
    const err = new Error(text.trim() || r.status + " " + r.statusText);
    err.status = r.status;
    throw err;
  }
  return JSON.parse(text);
}

/** Base64 float32 little-endian -> Float32Array. */
function decodeWeights(w) {
  const bin = atob(w.base64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  let data;
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) data = new Float32Array(bytes.buffer);
  else {
    const view = new DataView(bytes.buffer);
    data = new Float32Array(bytes.length / 4);
    for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(i * 4, true);
  }
  return { shape: w.shape, data };
}

/** One answer of /live -> {header, layers: [{shape, data}]} (the shape the views read). */
function toResult(item) {
  const header = Object.assign({}, item);
  delete header.weights;
  return { header, layers: item.weights.map(decodeWeights) };
}

/** POSIX shell single-quoting (the text may hold any character). */
export function shellQuote(s) {
  return "'" + String(s).replace(/'/g, "'\\''") + "'";
}

export class LiveApi {
  runs() {
    return fetch("./live_runs", { credentials: "same-origin" }).then(async (r) => {
      if (!r.ok) throw new Error((await r.text()).trim() || String(r.status));
      return r.json();
    });
  }
  async infer(run, texts, compare) {
    const answer = await postJSON("live", { run, texts, encoding: "base64", compare: !!compare });
    answer.results = answer.results.map(toResult);
    return answer;
  }
  rollout(run, text, headFusion, excludeFirst) {
    return postJSON("live_rollout", { run, text, head_fusion: headFusion, exclude_first: !!excludeFirst });
  }
  flow(run, text, position, headFusion, excludeFirst) {
    return postJSON("live_flow", { run, text, position, head_fusion: headFusion, exclude_first: !!excludeFirst });
  }
}

export class LivePanel {
  constructor(app) {
    this.app = app;
    this.api = new LiveApi();
    this.runsInfo = null;
    this.seq = 0;
    this.toggle = el("button", { class: "btn", id: "live-toggle", title: "Type your own text and see the model's attention", onclick: () => this.show(this.node.hidden) }, "\u270e Your text");
    this.runSel = select([], null, null, { "aria-label": "model run", id: "live-run-select" });
    this.text = el("textarea", { id: "live-text", rows: 3, cols: 70, spellcheck: "false", "aria-label": "your text (one text per line)", placeholder: "Type a sentence. One text per line." });
    this.edited = el("textarea", { id: "live-edited", rows: 2, cols: 70, spellcheck: "false", "aria-label": "edited copy", placeholder: "The edited copy" });
    this.editedRow = el("div", { class: "live-row", hidden: true }, el("span", { class: "ctl-label" }, "Edited copy"), this.edited);
    this.lineSel = select([], null, (v) => this.showLine(parseInt(v, 10)), { "aria-label": "line", id: "live-line" });
    this.lineCtl = labelled("Line", this.lineSel);
    this.lineCtl.hidden = true;
    this.status = el("div", { class: "live-status", id: "live-status", role: "status" });
    this.results = el("div", { class: "live-results", id: "live-results" });
    this.keepBox = el("div", { class: "live-keep", id: "live-keep", hidden: true });
    this.runBtn = el("button", { class: "btn", id: "live-run", onclick: () => this.run() }, "Show attention");
    this.compareBtn = el("button", { class: "btn", id: "live-compare", title: "Run the text and an edited copy side by side", onclick: () => this.compare() }, "Compare with an edited copy");
    this.keepBtn = el("button", { class: "btn", id: "live-keep-button", title: "The command that logs this text as a probe example", onclick: () => this.keep() }, "Keep this text");
    this.exitBtn = el("button", { class: "btn", id: "live-exit", onclick: () => this.app.exitLive() }, "Back to the probe examples");
    this.missing = el("details", { class: "live-missing small muted", hidden: true });
    this.node = el(
      "div",
      { class: "panel live-panel", id: "live-panel", hidden: true },
      panelHead("Your text", labelled("Model (runs with an exported model)", this.runSel), this.missing),
      el("div", { class: "live-row" }, this.text),
      this.editedRow,
      el("div", { class: "live-row" }, this.runBtn, this.compareBtn, this.keepBtn, this.exitBtn, this.lineCtl),
      this.status,
      this.results,
      this.keepBox
    );
    this.text.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) this.run();
    });
  }

  setStatus(text, kind) {
    replaceChildren(this.status, text || "");
    this.status.className = "live-status" + (kind ? " " + kind : "");
  }

  async show(open) {
    this.node.hidden = !open;
    if (open && !this.runsInfo) await this.loadRuns();
  }

  async loadRuns() {
    try {
      this.runsInfo = await this.api.runs();
    } catch (e) {
      this.setStatus("Could not list the runs with an exported model: " + e.message, "error");
      return;
    }
    const runs = this.runsInfo.runs || [];
    setOptions(this.runSel, runs.map((r) => [r.run, r.relative_run_dir + " \u2014 " + (r.model || "model")]));
    const current = this.app.state.run;
    const match = runs.find((r) => r.runs.includes(current));
    if (match) this.runSel.value = match.run;
    const missing = this.runsInfo.without_export || [];
    this.missing.hidden = !missing.length;
    replaceChildren(
      this.missing,
      el("summary", null, `${missing.length} run${missing.length === 1 ? "" : "s"} without an exported model`),
      missing.map((m) => el("div", null, el("b", null, m.run), ": ", m.reason))
    );
    if (!runs.length) {
      this.setStatus(this.runsInfo.note || "No run of this logdir has an exported model (train.py exports at the end of training; or run python -m attn_tf.export RUN_DIR).", "empty");
    }
    this.runBtn.disabled = this.compareBtn.disabled = !runs.length;
  }

  lines() {
    return this.text.value.split(/\r?\n/).filter((l) => l.trim() !== "");
  }

  async request(texts, compare) {
    const run = this.runSel.value;
    if (!run) throw new Error("Choose a model run first.");
    this.setStatus("Running the model\u2026 (the first text of a run also loads its model, seconds)");
    this.node.dataset.state = "loading";
    const t0 = performance.now();
    const answer = await this.api.infer(run, texts, compare);
    answer.clientSeconds = (performance.now() - t0) / 1000;
    return answer;
  }

  fail(e) {
    this.setStatus(e.message || String(e), "error");
    this.node.dataset.state = "error";
  }

  async run() {
    const texts = this.lines();
    if (!texts.length) return this.fail(new Error("Type a text first."));
    let answer;
    try {
      answer = await this.request(texts, false);
    } catch (e) {
      return this.fail(e);
    }
    this.answer = answer;
    this.compared = null;
    setOptions(this.lineSel, texts.map((t, i) => [i, `${i + 1}: ${t.length > 40 ? t.slice(0, 39) + "\u2026" : t}`]), 0);
    this.lineCtl.hidden = texts.length < 2;
    this.renderResults();
    this.done(answer);
    await this.showLine(0);
  }

  done(answer) {
    const load = answer.model_loaded_now ? ` \u00b7 model loaded in ${answer.load_seconds.toFixed(1)} s` : "";
    this.setStatus(`${answer.results.length} text${answer.results.length === 1 ? "" : "s"} \u00b7 ${answer.signature} signature \u00b7 ${(answer.inference_seconds * 1000).toFixed(0)} ms inference${load}`);
    this.node.dataset.state = "ready";
  }

  async showLine(i) {
    this.index = i;
    this.lineSel.value = String(i);
    for (const [k, row] of (this.resultRows || []).entries()) row.classList.toggle("selected", k === i);
    const r = this.answer.results[i];
    await this.app.showLive({ run: this.answer.run, seq: ++this.seq, result: r, compare: this.compared, task: this.answer.task });
  }

  renderResults() {
    this.resultRows = this.answer.results.map((r, i) => {
      const h = r.header;
      const n = Object.entries(h.tokens).map(([k, v]) => `${v.length} ${k} tokens`).join(", ");
      const probs = h.probabilities && h.class_names
        ? el("span", { class: "live-probs" }, h.class_names.map((c, k) => el("span", { class: "live-prob" + (c === h.prediction ? " predicted" : "") }, `${c} ${fmt(h.probabilities[k])}`)))
        : null;
      const trunc = h.extra && h.extra.truncated ? el("span", { class: "muted" }, ` (truncated: ${h.extra.token_count} tokens, the model reads ${h.extra.max_tokens})`) : null;
      const row = el(
        "div",
        { class: "live-result", dataset: { index: i } },
        el("span", { class: "live-text-echo" }, h.text),
        el("span", { class: "pred" }, " \u2192 prediction: ", el("b", { class: "live-prediction" }, String(h.prediction))),
        " ",
        probs,
        el("span", { class: "muted" }, " \u00b7 " + n),
        trunc
      );
      row.addEventListener("click", () => this.showLine(i));
      return row;
    });
    replaceChildren(this.results, ...this.resultRows);
  }

  async compare() {
    const texts = this.lines();
    const base = texts[this.index || 0] || texts[0];
    if (!base) return this.fail(new Error("Type a text first."));
    if (this.editedRow.hidden || !this.edited.value.trim()) {
      // First press: open the edited copy, prefilled with the text.
      this.editedRow.hidden = false;
      if (!this.edited.value.trim()) this.edited.value = base;
      this.edited.focus();
      this.setStatus("Edit the copy, then press Compare again.");
      return;
    }
    const copy = this.edited.value.replace(/\s*\r?\n\s*/g, " ");
    let answer;
    try {
      answer = await this.request([base, copy], true);
    } catch (e) {
      return this.fail(e);
    }
    this.answer = answer;
    this.compared = { a: answer.results[0], b: answer.results[1], alignment: answer.alignment };
    setOptions(this.lineSel, [[0, "1: the text"], [1, "2: the edited copy"]], 0);
    this.lineCtl.hidden = false;
    this.renderResults();
    this.resultRows.push(predictionChange(this.compared));
    replaceChildren(this.results, ...this.resultRows);
    this.done(answer);
    this.app.setView("compare", false);
    await this.showLine(0);
  }

  keep() {
    const texts = this.lines();
    const run = (this.runsInfo && this.runsInfo.runs || []).find((r) => r.run === this.runSel.value);
    if (!run || !texts.length) return this.fail(new Error("Type a text and choose a model run first."));
    const logdir = this.runsInfo.logdir || "LOGDIR";
    const cmd = `${this.runsInfo.probe_command} ${shellQuote(run.run_dir)} ` + texts.map((t) => `--text ${shellQuote(t)}`).join(" ") + ` --logdir ${shellQuote(logdir)}`;
    replaceChildren(
      this.keepBox,
      el("div", null, `To log ${texts.length === 1 ? "this text" : "these texts"} permanently (attn_tf.probe writes a new run probe-<model>-<time> into the logdir; TensorBoard shows it after its next reload), run:`),
      el("pre", { id: "live-keep-command" }, cmd),
      el("div", { class: "muted small" }, "This tab itself never writes to the logdir.")
    );
    this.keepBox.hidden = false;
  }
}

/** "A: pos 0.81 -> B: neg 0.62" and the change of every class probability. */
export function predictionChange(cmp) {
  const a = cmp.a.header;
  const b = cmp.b.header;
  const parts = [el("b", null, "Prediction change: "), `${a.prediction} \u2192 ${b.prediction}`, a.prediction === b.prediction ? " (same)" : " (changed)"];
  if (a.probabilities && b.probabilities && a.class_names) {
    parts.push(" \u00b7 ");
    a.class_names.forEach((c, k) => parts.push(el("span", { class: "live-prob" }, `${c} ${fmt(a.probabilities[k])} \u2192 ${fmt(b.probabilities[k])} (${fmtSigned(b.probabilities[k] - a.probabilities[k])})`), " "));
  }
  return el("div", { class: "live-change", id: "live-change" }, parts);
}
