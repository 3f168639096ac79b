// Evolution: per-head statistics over the training steps (/stats) as small
// line charts, and the difference between two steps of one layer as a
// diverging heatmap computed here from two /layer answers.

import { el, replaceChildren, select, labelled, sizeCanvas, tooltip, hideTooltip, fmt, fmtSigned, figureCanvas, panelHead } from "../dom.js";
import { COLORMAPS, headColor } from "../colors.js";
import { headMatrix, headLabel, absMaxOf, MatrixView, matrixSVG, matrixJSON, exact, csvCell } from "../matrix.js";
import { stack } from "./heatmaps.js";

export const STATS = [
  ["entropy", "entropy (nats)"],
  ["max_weight", "max weight"],
  ["mean_distance", "mean distance |i\u2212j|"],
  ["first_token_mass", "first-token mass"],
];

const CW = 210;
const CH = 120;

/** One small line chart: one line per head over the steps; returns the canvas. */
function lineChart(stats, key, title, li, currentStep, marks) {
  const canvas = el("canvas", { class: "chart", dataset: { stat: key, layer: li } });
  const ctx = sizeCanvas(canvas, CW, CH);
  drawChart(ctx, 0, 0, stats, key, title, li, currentStep, marks);
  canvas.addEventListener("mousemove", (e) => {
    const r = canvas.getBoundingClientRect();
    const x = e.clientX - r.left;
    const steps = stats.steps;
    const geo = chartGeo(stats, key, li);
    let best = 0;
    for (let s = 0; s < steps.length; s++) if (Math.abs(geo.sx(steps[s]) - x) < Math.abs(geo.sx(steps[best]) - x)) best = s;
    const vals = stats[key][best][li];
    const lines = [`${title} \u00b7 step ${steps[best]}`];
    vals.forEach((v, h) => lines.push(`head ${h}: ${exact(v)}`));
    tooltip(lines.slice(0, 17), e.clientX, e.clientY);
  });
  canvas.addEventListener("mouseleave", hideTooltip);
  return canvas;
}

function chartGeo(stats, key, li) {
  const steps = stats.steps;
  let lo = Infinity;
  let hi = -Infinity;
  for (let s = 0; s < steps.length; s++) {
    for (const v of stats[key][s][li] || []) {
      if (Number.isFinite(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
  }
  if (!Number.isFinite(lo)) {
    lo = 0;
    hi = 1;
  }
  if (hi - lo < 1e-9) {
    hi += 0.5;
    lo -= 0.5;
  }
  const pad = { l: 40, r: 8, t: 18, b: 18 };
  const s0 = steps[0];
  const s1 = steps[steps.length - 1];
  const sx = (st) => pad.l + (s1 === s0 ? 0.5 : (st - s0) / (s1 - s0)) * (CW - pad.l - pad.r);
  const sy = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * (CH - pad.t - pad.b);
  return { lo, hi, sx, sy, pad, s0, s1 };
}

function drawChart(ctx, x0, y0, stats, key, title, li, currentStep, marks) {
  ctx.save();
  ctx.translate(x0, y0);
  const { lo, hi, sx, sy, pad, s0, s1 } = chartGeo(stats, key, li);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, CW, CH);
  ctx.strokeStyle = "#ccc";
  ctx.lineWidth = 1;
  ctx.strokeRect(pad.l + 0.5, pad.t + 0.5, CW - pad.l - pad.r - 1, CH - pad.t - pad.b - 1);
  ctx.fillStyle = "#333";
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "top";
  ctx.fillText(title, 4, 2);
  ctx.fillStyle = "#777";
  ctx.font = "9px sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  ctx.fillText(fmt(hi), pad.l - 3, pad.t + 2);
  ctx.fillText(fmt(lo), pad.l - 3, CH - pad.b - 2);
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  ctx.fillText(String(s0), pad.l, CH - pad.b + 3);
  ctx.textAlign = "right";
  ctx.fillText(String(s1), CW - pad.r, CH - pad.b + 3);
  for (const [st, color] of marks || []) {
    if (st === undefined) continue;
    ctx.strokeStyle = color;
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.moveTo(sx(st), pad.t);
    ctx.lineTo(sx(st), CH - pad.b);
    ctx.stroke();
    ctx.setLineDash([]);
  }
  if (currentStep !== undefined) {
    ctx.strokeStyle = "#e66400";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(sx(currentStep), pad.t);
    ctx.lineTo(sx(currentStep), CH - pad.b);
    ctx.stroke();
  }
  const H = (stats[key][0] && stats[key][0][li] ? stats[key][0][li] : []).length;
  ctx.lineWidth = 1.25;
  for (let h = 0; h < H; h++) {
    ctx.strokeStyle = headColor(h);
    ctx.beginPath();
    let started = false;
    stats.steps.forEach((st, s) => {
      const v = stats[key][s][li] ? stats[key][s][li][h] : NaN;
      if (!Number.isFinite(v)) return;
      if (!started) ctx.moveTo(sx(st), sy(v));
      else ctx.lineTo(sx(st), sy(v));
      started = true;
    });
    ctx.stroke();
    if (stats.steps.length === 1) {
      ctx.fillStyle = headColor(h);
      ctx.fillRect(sx(stats.steps[0]) - 2, sy(stats[key][0][li][h]) - 2, 4, 4);
    }
  }
  ctx.restore();
}

export class EvolutionView {
  constructor(app) {
    this.app = app;
    this.stepA = null;
    this.stepB = null;
    this.diffHead = "mean";
    this.aSel = select([], null, (v) => {
      this.stepA = parseInt(v, 10);
      app.update();
    }, { "aria-label": "step A", id: "diff-step-a" });
    this.followB = true;
    this.bSel = select([], null, (v) => {
      this.stepB = parseInt(v, 10);
      this.followB = this.stepB === app.step;
      app.update();
    }, { "aria-label": "step B", id: "diff-step-b" });
    this.hSel = select([], null, (v) => {
      this.diffHead = v === "mean" || v === "max" ? v : parseInt(v, 10);
      app.update();
    }, { "aria-label": "diff head" });
    this.charts = el("div", { class: "charts", id: "evo-charts" });
    this.headKey = el("div", { class: "head-key small" });
    this.diff = new MatrixView({ maxPx: 560 });
    this.diffMsg = el("div", { class: "notice", hidden: true });
    this.node = el(
      "div",
      { class: "view evolution" },
      el(
        "div",
        { class: "panel" },
        el("div", { class: "panel-title" }, "Per-head statistics over training steps (mean over query rows)"),
        this.headKey,
        this.charts
      ),
      el(
        "div",
        { class: "panel" },
        panelHead("Difference between two steps (B \u2212 A) of the selected layer", labelled("A", this.aSel), labelled("B", this.bSel), labelled("Head", this.hSel)),
        this.diffMsg,
        this.diff.node
      )
    );
  }

  async update(gen) {
    const app = this.app;
    const { run, tag } = app.state;
    const steps = app.state.steps;
    if (this.stepA === null || !steps.includes(this.stepA)) this.stepA = steps[0];
    if (this.stepB === null || !steps.includes(this.stepB) || this.followB) this.stepB = app.step;
    const opts = steps.map((s) => [s, "step " + s]);
    const fill = (sel, v) => {
      replaceChildren(sel);
      for (const [val, l] of opts) sel.appendChild(el("option", { value: String(val) }, l));
      sel.value = String(v);
    };
    fill(this.aSel, this.stepA);
    fill(this.bSel, this.stepB);

    const [stats] = await Promise.all([app.api.stats(run, tag)]);
    if (!app.isCurrent(gen)) return;
    this.stats = stats;
    const header = app.header;
    const li = app.state.layer;
    const rows = [];
    const nLayers = stats.layers.length;
    const maxH = Math.max(1, ...stats.heads);
    replaceChildren(
      this.headKey,
      "heads: ",
      Array.from({ length: Math.min(maxH, 16) }, (_, h) => el("span", { class: "head-key-item" }, el("span", { class: "swatch", style: { background: headColor(h) } }), String(h))),
      el("span", { class: "muted" }, " \u00b7 orange line: current step; dashed: steps A (grey) and B (blue) of the difference")
    );
    for (let l = 0; l < nLayers; l++) {
      const row = el(
        "div",
        { class: "chart-row" + (l === li ? " selected" : "") },
        el("div", { class: "chart-rowlabel", title: stats.layers[l] }, stats.layers[l])
      );
      for (const [key, title] of STATS) {
        if (!stats[key]) continue;
        row.appendChild(lineChart(stats, key, title, l, app.step, [[this.stepA, "#999"], [this.stepB, "#1f77b4"]]));
      }
      row.addEventListener("click", () => app.setLayer(l));
      rows.push(row);
    }
    replaceChildren(this.charts, ...rows);

    // Difference of two steps.
    const desc = header.layers[li];
    let A;
    let B;
    let hA;
    let hB;
    try {
      [hA, hB] = await Promise.all([app.api.header(run, tag, this.stepA), app.api.header(run, tag, this.stepB)]);
      [A, B] = await Promise.all([app.api.layer(run, tag, this.stepA, li), app.api.layer(run, tag, this.stepB, li)]);
    } catch (e) {
      if (!app.isCurrent(gen)) return;
      replaceChildren(this.diffMsg, "Could not read the two steps: " + e.message);
      this.diffMsg.hidden = false;
      this.diff.node.hidden = true;
      this.spec = null;
      return;
    }
    if (!app.isCurrent(gen)) return;
    const H = A.shape[0];
    const hopts = [
      ["mean", "mean of heads"],
      ["max", "max over heads"],
    ];
    for (let h = 0; h < H; h++) hopts.push([h, "head " + h]);
    replaceChildren(this.hSel);
    for (const [v, l] of hopts) this.hSel.appendChild(el("option", { value: String(v) }, l));
    if (this.diffHead !== "mean" && this.diffHead !== "max" && this.diffHead >= H) this.diffHead = "mean";
    this.hSel.value = String(this.diffHead);
    if (A.shape.join() !== B.shape.join()) {
      replaceChildren(this.diffMsg, `The layer has shape ${A.shape.join("\u00d7")} at step ${this.stepA} but ${B.shape.join("\u00d7")} at step ${this.stepB}: no difference.`);
      this.diffMsg.hidden = false;
      this.diff.node.hidden = true;
      this.spec = null;
      return;
    }
    this.diffMsg.hidden = true;
    this.diff.node.hidden = false;
    const ma = headMatrix(A, this.diffHead);
    const mb = headMatrix(B, this.diffHead);
    const [, Q, K] = A.shape;
    const m = new Float32Array(Q * K);
    for (let i = 0; i < m.length; i++) m[i] = mb[i] - ma[i];
    const lim = absMaxOf(m) || 1e-6;
    const descB = hB.layers[li];
    const rowTokens = descB.kind === "pooling" ? ["[pooled]"] : hB.tokens[descB.query];
    const colTokens = hB.tokens[descB.key];
    const rowTokensA = descB.kind === "pooling" ? ["[pooled]"] : hA.tokens[hA.layers[li].query];
    const colTokensA = hA.tokens[hA.layers[li].key];
    const tokensDiffer = JSON.stringify(rowTokens) !== JSON.stringify(rowTokensA) || JSON.stringify(colTokens) !== JSON.stringify(colTokensA);
    this.spec = {
      m,
      Q,
      K,
      rowTokens,
      colTokens,
      lut: COLORMAPS.rdbu,
      vmin: -lim,
      vmax: lim,
      caption: "B \u2212 A (blue: weaker at B, red: stronger at B)",
      title: `${desc.name} \u00b7 ${headLabel(this.diffHead)} \u00b7 step ${this.stepB} \u2212 step ${this.stepA}` + (tokensDiffer ? " (tokens differ between the steps)" : ""),
      describe: (i, j, v) => [
        `${rowTokens[i]} -> ${colTokens[j]}: ${fmtSigned(v)}`,
        `step ${this.stepA}: ${exact(ma[i * K + j])}   step ${this.stepB}: ${exact(mb[i * K + j])}`,
        `query ${i} -> key ${j}`,
      ],
    };
    this.diffLayer = desc.name;
    this.diff.set(this.spec);
  }

  figure() {
    const stats = this.stats;
    const nLayers = stats.layers.length;
    const left = 130;
    const w = left + STATS.length * (CW + 6);
    const h = 30 + nLayers * (CH + 6);
    const { canvas, ctx } = figureCanvas(w, h, `${this.app.state.tag}: per-head attention statistics over steps`);
    for (let l = 0; l < nLayers; l++) {
      const y = 30 + l * (CH + 6);
      ctx.fillStyle = "#222";
      ctx.font = "11px sans-serif";
      ctx.textBaseline = "middle";
      ctx.fillText(stats.layers[l].slice(0, 20), 8, y + CH / 2);
      STATS.forEach(([key, title], c) => {
        if (stats[key]) drawChart(ctx, left + c * (CW + 6), y, stats, key, title, l, this.app.step);
      });
    }
    return this.spec ? stack([canvas, this.diff.figure()]) : canvas;
  }

  exports() {
    if (!this.stats) return {};
    const stats = this.stats;
    const spec = this.spec;
    return {
      suffix: spec ? `diff_${this.stepB}-${this.stepA}` : "stats",
      png: () => this.figure(),
      svg: spec ? () => matrixSVG(spec, spec.title) : null,
      json: () => ({
        stats,
        difference: spec ? matrixJSON(spec, { layer: this.diffLayer, head: this.diffHead, step_a: this.stepA, step_b: this.stepB }) : null,
      }),
      csv: () => {
        const out = ["step,layer,head," + STATS.map(([k]) => k).join(",")];
        stats.steps.forEach((st, s) => {
          stats.layers.forEach((ln, l) => {
            const H = stats.heads[l];
            for (let h = 0; h < H; h++) {
              out.push([st, csvCell(ln), h].concat(STATS.map(([k]) => (stats[k] ? stats[k][s][l][h] : ""))).join(","));
            }
          });
        });
        return out.join("\r\n") + "\r\n";
      },
    };
  }
}
