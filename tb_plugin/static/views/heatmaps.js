// Heatmaps: a layers x heads grid of small multiples for the chosen step, one
// enlarged labelled matrix, and pooling layers as coloured text.

import { el, replaceChildren, select, labelled, sizeCanvas, tooltip, hideTooltip, fmt, showToken, figureCanvas, panelHead } from "../dom.js";
import { COLORMAPS, lutColor, cssColor, inkOn, legend } from "../colors.js";
import {
  headMatrix, headLabel, maxOf, drawHeatmap, matrixImage, MatrixView, matrixSVG, matrixCSV, matrixJSON, exact,
} from "../matrix.js";
import { useScaled, updateScaled, scaledGridFigure } from "./scaled.js";

export function vmaxFor(app, m) {
  if (app.state.scale === "unit") return 1;
  const v = maxOf(m);
  return v > 0 ? v : 1;
}

/**
 * Entropy relative to uniform, mean over the query rows with mass: H(row) /
 * log(n), n = the keys the row may attend to (causal: i + 1). 1 = uniform
 * ("attends to everything alike"), 0 = one token. Rows with one key are
 * skipped; null when no row counts. Beside the max it tells a uniform matrix
 * (drawn at full colour by the "0 - max of each matrix" scale) from a peaked one.
 */
export function relativeEntropy(m, Q, K, kind) {
  let sum = 0;
  let rows = 0;
  for (let i = 0; i < Q; i++) {
    const n = kind === "causal" ? Math.min(K, i + 1) : K;
    if (n < 2) continue;
    let tot = 0;
    for (let j = 0; j < n; j++) tot += m[i * K + j];
    if (!(tot > 0)) continue;
    let h = 0;
    for (let j = 0; j < n; j++) {
      const p = m[i * K + j] / tot;
      if (p > 0) h -= p * Math.log(p);
    }
    sum += h / Math.log(n);
    rows++;
  }
  return rows ? sum / rows : null;
}

/** At or above this relative entropy a matrix is flagged "uniform". */
export const UNIFORM_AT = 0.98;

function entropyText(rel) {
  return rel === null ? "H n/a" : `H ${rel.toFixed(2)}` + (rel >= UNIFORM_AT ? " uniform" : "");
}

/** The labelled-matrix spec of (layer, head) of the current step. */
export function matrixSpec(app, header, layerIdx, layer, head, extra) {
  const desc = header.layers[layerIdx];
  const [, Q, K] = layer.shape;
  const m = headMatrix(layer, head);
  const rowTokens = desc.kind === "pooling" ? ["[pooled]"] : header.tokens[desc.query];
  const colTokens = header.tokens[desc.key];
  const vmax = vmaxFor(app, m);
  const rel = relativeEntropy(m, Q, K, desc.kind);
  const stats = ` \u00b7 max ${fmt(maxOf(m))} \u00b7 entropy ${rel === null ? "n/a" : rel.toFixed(2)} of uniform` +
    (rel !== null && rel >= UNIFORM_AT ? " (\u2248 uniform: attends to every token alike)" : "");
  return Object.assign(
    {
      m,
      Q,
      K,
      rowTokens,
      colTokens,
      lut: app.lut,
      vmin: 0,
      vmax,
      caption: (app.state.scale === "unit" ? "attention weight" : "attention weight (0 \u2013 max of this matrix)") + stats,
      title: `${desc.name} \u00b7 ${headLabel(head)} \u00b7 step ${app.step}`,
      rowTitle: desc.kind === "cross" ? `${desc.query} tokens = queries (attending from)` : "query (attending from)",
      colTitle: desc.kind === "cross" ? `${desc.key} tokens = keys (attended to)` : "key (attended to)",
    },
    extra || {}
  );
}

/** Pooling attention: the text with each token's background coloured by its weight. */
export function poolingPanel(app, header, layerIdx, layer) {
  const desc = header.layers[layerIdx];
  const tokens = header.tokens[desc.key];
  const w = layer.data;
  const lut = app.lut; // the Colours choice, as every other view
  let vmax = app.state.scale === "unit" ? 1 : maxOf(w) || 1;
  const text = el("div", { class: "pool-text", dataset: { layer: layerIdx } });
  for (let j = 0; j < tokens.length; j++) {
    const c = lutColor(lut, w[j] / vmax);
    const span = el(
      "span",
      { class: "tok pool-tok", style: { background: cssColor(c), color: inkOn(c) }, dataset: { index: j } },
      showToken(tokens[j])
    );
    span.addEventListener("mousemove", (e) =>
      tooltip([`${tokens[j]}: ${exact(w[j])}`, `pooled query -> key ${j}`], e.clientX, e.clientY)
    );
    span.addEventListener("mouseleave", hideTooltip);
    text.appendChild(span);
    text.appendChild(document.createTextNode(" "));
  }
  const meta = [];
  if (header.label !== null && header.label !== undefined) meta.push(el("span", null, "label: ", el("b", null, String(header.label))));
  if (header.prediction !== null && header.prediction !== undefined) {
    const cls = header.label === null || header.label === undefined ? "" : header.label === header.prediction ? " ok" : " wrong";
    meta.push(el("span", { class: "pred" + cls }, "prediction: ", el("b", null, String(header.prediction))));
  }
  let probs = null;
  if (header.probabilities && header.probabilities.length) {
    const names = header.class_names || header.probabilities.map((_, i) => "class " + i);
    probs = el(
      "div",
      { class: "probs" },
      header.probabilities.map((p, i) =>
        el(
          "div",
          { class: "prob-row" + (names[i] === header.prediction ? " predicted" : "") + (names[i] === header.label ? " gold" : "") },
          el("span", { class: "prob-name" }, String(names[i])),
          el("span", { class: "prob-bar" }, el("span", { class: "prob-fill", style: { width: Math.max(0, Math.min(1, p)) * 100 + "%" } })),
          el("span", { class: "prob-val" }, fmt(p))
        )
      )
    );
  }
  return el(
    "div",
    { class: "panel pooling", dataset: { layer: layerIdx } },
    el("div", { class: "panel-title" }, `${desc.name} \u2014 pooling attention over the input tokens (step ${app.step})`),
    meta.length ? el("div", { class: "pool-meta" }, meta) : null,
    probs,
    text,
    legend(lut, 0, vmax, (app.state.scale === "unit" ? "token weight" : "token weight (0 \u2013 max)") +
      ` \u00b7 max ${fmt(maxOf(w))} \u00b7 entropy ${(() => { const r = relativeEntropy(w, 1, w.length, "pooling"); return r === null ? "n/a" : r.toFixed(2); })()} of uniform`)
  );
}

export class HeatmapsView {
  constructor(app) {
    this.app = app;
    this.aggSel = select(
      [
        ["mean", "mean of heads"],
        ["max", "max over heads"],
      ],
      app.state.agg,
      (v) => {
        app.state.agg = v;
        if (app.state.head === "mean" || app.state.head === "max") app.state.head = v;
        app.update();
      },
      { "aria-label": "head aggregation", id: "agg-select" }
    );
    this.headSel = select([], null, (v) => {
      app.state.head = v === "mean" || v === "max" ? v : parseInt(v, 10);
      app.update();
    }, { "aria-label": "enlarged head", id: "head-select" });
    this.grid = el("div", { class: "hm-grid", id: "hm-grid" });
    this.pooling = el("div", { class: "pooling-host" });
    this.detail = new MatrixView({ maxPx: 600 });
    this.detailPanel = el(
      "div",
      { class: "panel detail", id: "hm-detail" },
      panelHead("Selected matrix", labelled("Head", this.headSel)),
      this.detail.node
    );
    this.gridPanel = el(
      "div",
      { class: "panel" },
      panelHead("Layers \u00d7 heads", labelled("Aggregate column", this.aggSel), el("span", { class: "muted small" }, "click a matrix to enlarge it; rows = queries (attending from), columns = keys (attended to)")),
      this.grid
    );
    this.node = el("div", { class: "view heatmaps" }, this.pooling, el("div", { class: "hm-layout" }, this.gridPanel, this.detailPanel));
    this.spec = null;
  }

  async update(gen) {
    const app = this.app;
    const header = app.header;
    // Big steps: thumbnails from /grid and one full-resolution matrix (scaled.js).
    if (useScaled(app, header)) return updateScaled(this, gen);
    this.scaled = false;
    this.gridSignature = null;
    const layers = await app.layers();
    if (!app.isCurrent(gen)) return;
    this.layers = layers;
    this.header = header;
    const nonPool = header.layers.map((d, i) => i).filter((i) => header.layers[i].kind !== "pooling");
    const pools = header.layers.map((d, i) => i).filter((i) => header.layers[i].kind === "pooling");

    // Pooling layers: coloured text.
    replaceChildren(this.pooling, ...pools.map((i) => poolingPanel(app, header, i, layers[i])));

    // Grid of small multiples.
    this.gridPanel.hidden = nonPool.length === 0;
    this.detailPanel.hidden = nonPool.length === 0;
    if (!nonPool.length) {
      this.spec = null;
      return;
    }
    const maxH = Math.max(...nonPool.map((i) => layers[i].shape[0]));
    // Leave room for the enlarged matrix beside the grid on wide screens.
    const W = window.innerWidth || 1200;
    const avail = Math.max(420, W * 0.5 - 150);
    const size = Math.max(44, Math.min(112, Math.floor(avail / (maxH + 1)) - 4));
    this.detail.maxPx = Math.max(360, Math.min(640, W - (size + 4) * (maxH + 1) - 420));
    const rows = [];
    const head = el("div", { class: "hm-row hm-head-row" }, el("div", { class: "hm-rowlabel" }));
    for (let h = 0; h < maxH; h++) head.appendChild(el("div", { class: "hm-colhead", style: { width: size + "px" } }, "head " + h));
    head.appendChild(el("div", { class: "hm-colhead agg", style: { width: size + "px" } }, app.state.agg));
    rows.push(head);
    let sel = app.state.layer;
    if (!nonPool.includes(sel)) sel = nonPool[0];
    for (const li of nonPool) {
      const desc = header.layers[li];
      const layer = layers[li];
      const [H, Q, K] = layer.shape;
      const row = el(
        "div",
        { class: "hm-row" },
        el("div", { class: "hm-rowlabel", title: desc.name }, el("div", null, desc.name), el("div", { class: "muted small" }, `${desc.kind} ${H}\u00d7${Q}\u00d7${K}`))
      );
      for (let c = 0; c < maxH + 1; c++) {
        const hh = c < H ? c : c === maxH ? app.state.agg : null;
        if (hh === null) {
          row.appendChild(el("div", { class: "hm-cell empty", style: { width: size + "px", height: size + "px" } }));
          continue;
        }
        const m = headMatrix(layer, hh);
        const vmax = vmaxFor(app, m);
        const w = K >= Q ? size : Math.max(8, Math.round((size * K) / Q));
        const hgt = Q >= K ? size : Math.max(8, Math.round((size * Q) / K));
        const canvas = el("canvas", { class: "hm-canvas", dataset: { layer: li, head: hh } });
        drawHeatmap(canvas, m, Q, K, w, hgt, app.lut, 0, vmax);
        const selected = li === sel && String(hh) === String(app.state.head);
        const rel = relativeEntropy(m, Q, K, desc.kind);
        const uniform = rel !== null && rel >= UNIFORM_AT;
        const cell = el(
          "div",
          {
            class: "hm-cell" + (selected ? " selected" : "") + (uniform ? " near-uniform" : ""),
            style: { width: size + "px", minHeight: size + 26 + "px" },  // min: the captions may wrap in narrow cells
            title: "max = largest weight; H = entropy relative to uniform (1: attends to every token alike, 0: to one token)",
          },
          canvas,
          el("div", { class: "hm-max" }, "max " + fmt(maxOf(m))),
          el("div", { class: "hm-max hm-entropy" + (uniform ? " uniform" : "") }, entropyText(rel))
        );
        canvas.addEventListener("click", () => app.selectMatrix(li, hh));
        canvas.addEventListener("mousemove", (e) => {
          const r = canvas.getBoundingClientRect();
          const i = Math.min(Q - 1, Math.floor(((e.clientY - r.top) / r.height) * Q));
          const j = Math.min(K - 1, Math.floor(((e.clientX - r.left) / r.width) * K));
          if (i < 0 || j < 0) return;
          const qt = header.tokens[desc.query][i];
          const kt = header.tokens[desc.key][j];
          tooltip([`${qt} -> ${kt}: ${exact(m[i * K + j])}`, `${desc.name} \u00b7 ${headLabel(hh)} \u00b7 query ${i} -> key ${j}`], e.clientX, e.clientY);
        });
        canvas.addEventListener("mouseleave", hideTooltip);
        row.appendChild(cell);
      }
      rows.push(row);
    }
    replaceChildren(this.grid, ...rows);

    // Enlarged matrix.
    const H = layers[sel].shape[0];
    let hd = app.state.head;
    if (hd !== "mean" && hd !== "max" && !(hd >= 0 && hd < H)) hd = app.state.agg;
    const opts = [
      ["mean", "mean of heads"],
      ["max", "max over heads"],
    ];
    for (let h = 0; h < H; h++) opts.push([h, "head " + h]);
    replaceChildren(this.headSel);
    for (const [v, l] of opts) this.headSel.appendChild(el("option", { value: String(v) }, l));
    this.headSel.value = String(hd);
    this.selLayer = sel;
    this.selHead = hd;
    this.spec = matrixSpec(app, header, sel, layers[sel], hd);
    this.detail.set(this.spec);
  }

  /** A PNG figure of the whole grid (small multiples with labels). */
  gridFigure() {
    const app = this.app;
    const header = this.header;
    const idx = header.layers.map((d, i) => i).filter((i) => header.layers[i].kind !== "pooling");
    return gridFigure(app, header, idx, (li) => this.layers[li].shape[0],
      `${app.state.tag} \u00b7 step ${app.step} \u00b7 rows = queries (attending from), columns = keys (attended to)`,
      (li, hh) => {
        const layer = this.layers[li];
        const [, Q, K] = layer.shape;
        const m = headMatrix(layer, hh === null ? app.state.agg : hh);
        return { image: matrixImage(m, Q, K, app.lut, 0, vmaxFor(app, m)), max: maxOf(m) };
      });
  }

  exports() {
    if (!this.header) return {};
    const pools = this.header.layers.map((d, i) => i).filter((i) => this.header.layers[i].kind === "pooling");
    if (!this.spec && pools.length) {
      // BiLSTM-style models: the pooled weights over the tokens.
      const li = pools[0];
      const spec = matrixSpec(this.app, this.header, li, this.layers[li], 0);
      return {
        suffix: this.header.layers[li].name,
        png: () => poolingFigure(this.app, this.header, li, this.layers[li]),
        svg: () => matrixSVG(spec, spec.title),
        json: () => matrixJSON(spec, { layer: this.header.layers[li].name, head: 0 }),
        csv: () => matrixCSV(spec),
      };
    }
    if (!this.spec) return {};
    const spec = this.spec;
    const layerName = this.header.layers[this.selLayer].name;
    return {
      suffix: layerName + "_" + headLabel(this.selHead),
      png: () => stack([this.scaled ? scaledGridFigure(this) : this.gridFigure(), this.detail.figure()]),
      svg: () => matrixSVG(spec, spec.title),
      json: () => matrixJSON(spec, { layer: layerName, layer_index: this.selLayer, head: this.selHead }),
      csv: () => matrixCSV(spec),
    };
  }
}

/** Stacks canvases vertically on a white background. */
export function stack(canvases) {
  const w = Math.max(...canvases.map((c) => c.width));
  const h = canvases.reduce((s, c) => s + c.height, 0);
  const out = document.createElement("canvas");
  out.width = w;
  out.height = h;
  const ctx = out.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  let y = 0;
  for (const c of canvases) {
    ctx.drawImage(c, 0, y);
    y += c.height;
  }
  return out;
}

/** The pooling text as a PNG figure (fillText with coloured backgrounds). */
export function poolingFigure(app, header, li, layer) {
  const desc = header.layers[li];
  const tokens = header.tokens[desc.key];
  const w = layer.data;
  const vmax = app.state.scale === "unit" ? 1 : maxOf(w) || 1;
  const lut = app.lut;
  const width = 900;
  const measure = document.createElement("canvas").getContext("2d");
  measure.font = "15px sans-serif";
  let x = 10;
  let y = 60;
  const pos = [];
  for (let j = 0; j < tokens.length; j++) {
    const t = showToken(tokens[j]);
    const tw = measure.measureText(t).width + 6;
    if (x + tw > width - 10) {
      x = 10;
      y += 24;
    }
    pos.push([x, y, tw, t]);
    x += tw + 4;
  }
  const height = y + 40;
  const { canvas, ctx } = figureCanvas(width, height, `${desc.name} \u00b7 step ${app.step}`, 10, 10);
  ctx.font = "12px sans-serif";
  const meta = [];
  if (header.label != null) meta.push("label: " + header.label);
  if (header.prediction != null) meta.push("prediction: " + header.prediction);
  if (header.probabilities && header.class_names) {
    meta.push(header.class_names.map((c, i) => `${c} ${fmt(header.probabilities[i])}`).join("  "));
  }
  ctx.fillText(meta.join("   "), 10, 30);
  ctx.font = "15px sans-serif";
  ctx.textBaseline = "middle";
  pos.forEach(([px, py, tw, t], j) => {
    const c = lutColor(lut, w[j] / vmax);
    ctx.fillStyle = cssColor(c);
    ctx.fillRect(px, py - 10, tw, 20);
    ctx.fillStyle = inkOn(c);
    ctx.fillText(t, px + 3, py);
  });
  return canvas;
}


/**
 * A PNG figure of a layers x heads grid (the heatmaps' and the scaled view's
 * exports): one row per layer of `idx`, `heads(li)` head columns plus the
 * aggregate column; `cell(li, head)` (head null = the aggregate) gives the
 * cell's image and the max shown under it.
 */
export function gridFigure(app, header, idx, heads, title, cell) {
  const maxH = Math.max(...idx.map(heads));
  const size = 96;
  const gap = 8;
  const left = 150;
  const top = 40;
  const w = left + (maxH + 1) * (size + gap) + 10;
  const h = top + idx.length * (size + gap + 12) + 10;
  const { canvas, ctx } = figureCanvas(w, h, title);
  ctx.font = "11px sans-serif";
  for (let c = 0; c <= maxH; c++) ctx.fillText(c < maxH ? "head " + c : app.state.agg, left + c * (size + gap), top - 14);
  idx.forEach((li, r) => {
    const H = heads(li);
    const y = top + r * (size + gap + 12);
    ctx.fillStyle = "#222";
    ctx.textBaseline = "middle";
    ctx.fillText(header.layers[li].name.slice(0, 22), 8, y + size / 2);
    for (let c = 0; c <= maxH; c++) {
      if (!(c < H || c === maxH)) continue;
      const { image, max } = cell(li, c < H ? c : null);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(image, left + c * (size + gap), y, size, size);
      ctx.fillStyle = "#666";
      ctx.textBaseline = "top";
      ctx.font = "9px sans-serif";
      ctx.fillText("max " + fmt(max), left + c * (size + gap), y + size + 1);
      ctx.font = "11px sans-serif";
    }
  });
  return canvas;
}
