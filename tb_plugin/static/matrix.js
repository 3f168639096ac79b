// Attention matrices: head selection/aggregation, canvas heatmaps (small
// multiples and a labelled, hoverable large view) and their PNG/SVG figures.

import { el, replaceChildren, sizeCanvas, fmt, showToken, tooltip, hideTooltip, figureCanvas } from "./dom.js";
import { lutColor, cssColor, legend } from "./colors.js";

const aggCache = new WeakMap();

/**
 * The [Q, K] matrix (Float32Array, row-major) of head `head` of a layer
 * {shape: [H, Q, K], data}. `head` is an index or "mean" / "max" over heads.
 */
export function headMatrix(layer, head) {
  const [H, Q, K] = layer.shape;
  const n = Q * K;
  if (head !== "mean" && head !== "max") {
    const h = Math.max(0, Math.min(H - 1, Number(head) | 0));
    return layer.data.subarray(h * n, (h + 1) * n);
  }
  let per = aggCache.get(layer);
  if (!per) aggCache.set(layer, (per = {}));
  if (per[head]) return per[head];
  const out = new Float32Array(n);
  const d = layer.data;
  if (head === "mean") {
    for (let h = 0; h < H; h++) {
      const o = h * n;
      for (let i = 0; i < n; i++) out[i] += d[o + i];
    }
    if (H > 0) for (let i = 0; i < n; i++) out[i] /= H;
  } else {
    out.fill(-Infinity);
    for (let h = 0; h < H; h++) {
      const o = h * n;
      for (let i = 0; i < n; i++) if (d[o + i] > out[i]) out[i] = d[o + i];
    }
    if (H === 0) out.fill(0);
  }
  per[head] = out;
  return out;
}

export function headLabel(head) {
  return head === "mean" ? "mean of heads" : head === "max" ? "max over heads" : "head " + head;
}

export function maxOf(m) {
  let v = 0;
  for (let i = 0; i < m.length; i++) if (m[i] > v) v = m[i];
  return v;
}

export function absMaxOf(m) {
  let v = 0;
  for (let i = 0; i < m.length; i++) {
    const a = Math.abs(m[i]);
    if (a > v) v = a;
  }
  return v;
}

/** Exact-ish display of one weight (float32 has ~7 significant digits). */
export function exact(v) {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a < 1e-4) return v.toExponential(4);
  return v.toFixed(6);
}

/** Sizes `canvas` to K x Q pixels and fills one pixel per cell with the colour-mapped matrix; returns its context. */
function fillCells(canvas, m, Q, K, lut, vmin, vmax) {
  canvas.width = Math.max(1, K);
  canvas.height = Math.max(1, Q);
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(canvas.width, canvas.height);
  const px = img.data;
  const span = vmax - vmin || 1;
  for (let i = 0; i < Q * K; i++) {
    let t = (m[i] - vmin) / span;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    const li = Math.round(t * 255) * 3;
    const o = i * 4;
    px[o] = lut[li];
    px[o + 1] = lut[li + 1];
    px[o + 2] = lut[li + 2];
    px[o + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return ctx;
}

/** An offscreen canvas of K x Q pixels holding the colour-mapped matrix. */
export function matrixImage(m, Q, K, lut, vmin, vmax) {
  const off = document.createElement("canvas");
  fillCells(off, m, Q, K, lut, vmin, vmax);
  return off;
}

/**
 * Paints matrix `m` into `canvas` with one canvas pixel per cell, shown at
 * CSS size w x h (the canvas needs `image-rendering: pixelated`).
 */
export function paintCells(canvas, m, Q, K, w, h, lut, vmin, vmax) {
  canvas.style.width = w + "px";
  canvas.style.height = h + "px";
  return fillCells(canvas, m, Q, K, lut, vmin, vmax);
}

/** Draws matrix `m` into `canvas` at CSS size w x h, nearest-neighbour. */
export function drawHeatmap(canvas, m, Q, K, w, h, lut, vmin, vmax) {
  const ctx = sizeCanvas(canvas, w, h);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(matrixImage(m, Q, K, lut, vmin, vmax), 0, 0, w, h);
  return ctx;
}

/**
 * The large labelled heatmap: token axes as text nodes (rows = queries,
 * "attending from"; columns = keys, "attended to"), colour legend, hover
 * tooltip with the exact weight.
 */
export class MatrixView {
  constructor(opts = {}) {
    this.maxPx = opts.maxPx || 560;
    this.rowTitle = opts.rowTitle || "query (attending from)";
    this.colTitle = opts.colTitle || "key (attended to)";
    this.node = el("div", { class: "matrix-view" });
    this.canvas = el("canvas", { class: "matrix-canvas" });
    this.overlay = el("canvas", { class: "matrix-overlay" });
    this.overlay.addEventListener("mousemove", (e) => this.onMove(e));
    this.overlay.addEventListener("mouseleave", () => this.onLeave());
    this.overlay.addEventListener("click", (e) => this.onMove(e));
    this.zoom = "fit";
  }

  /**
   * spec: {m, Q, K, rowTokens, colTokens, lut, vmin, vmax, caption, title,
   *        rowTitle?, colTitle?, describe?(i, j, v) -> lines}
   */
  set(spec) {
    this.spec = spec;
    const { Q, K } = spec;
    const n = Math.max(Q, K, 1);
    const fit = Math.max(2, Math.min(28, Math.floor(this.maxPx / n)));
    const cs = this.zoom === "fit" || !this.zoom ? fit : this.zoom;
    this.cs = cs;
    const w = K * cs;
    const h = Q * cs;
    // One canvas pixel per cell, scaled by CSS (.matrix-stack canvas is
    // image-rendering: pixelated): no per-redraw resampling of a 1000 px
    // canvas at 512 tokens.
    paintCells(this.canvas, spec.m, Q, K, w, h, spec.lut, spec.vmin, spec.vmax);
    // Same tokens, size and titles as the matrix shown (another head, colour
    // map or step of the same example): keep the ~2 x T label nodes, redraw
    // the cells, title and legend only (head toggling at 512 tokens).
    const layoutKey = [Q, K, cs, spec.rowTokens, spec.colTokens, spec.rowTitle, spec.colTitle, this.rowTitle, this.colTitle];
    if (this.layoutKey && this.legendNode && layoutKey.every((v, i) => v === this.layoutKey[i])) {
      this.titleNode.textContent = spec.title || "";
      const lg = legend(spec.lut, spec.vmin, spec.vmax, spec.caption || "attention weight");
      this.node.replaceChild(lg, this.legendNode);
      this.legendNode = lg;
      return;
    }
    this.layoutKey = layoutKey;
    sizeCanvas(this.overlay, w, h);
    // Label every `every`-th token so that labels are at least 9 px apart.
    const every = Math.max(1, Math.ceil(9 / cs));
    const pitch = every * cs;
    const font = Math.max(7, Math.min(12, pitch - 2));
    const widest = (tokens, count) => {
      let m = 0;
      for (let i = 0; i < count; i += every) m = Math.max(m, textWidth(showToken(tokens ? tokens[i] : String(i)), font));
      return m;
    };
    const labelW = Math.round(Math.max(40, Math.min(160, widest(spec.rowTokens, Q) + 12)));
    const labelH = Math.round(Math.max(30, Math.min(130, widest(spec.colTokens, K) + 8)));
    this.rowLabels = [];
    this.colLabels = [];
    const rows = el("div", { class: "row-labels", style: { width: labelW + "px", height: h + "px" } });
    for (let i = 0; i < Q; i++) {
      const t = spec.rowTokens ? spec.rowTokens[i] : String(i);
      const lab = el(
        "div",
        {
          class: "tok row-label" + (i % every ? " hidden-label" : ""),
          title: i + ": " + t,
          style: { top: i * cs + cs / 2 - pitch / 2 + "px", height: pitch + "px", lineHeight: pitch + "px", fontSize: font + "px" },
        },
        showToken(t)
      );
      this.rowLabels.push(lab);
      rows.appendChild(lab);
    }
    const cols = el("div", { class: "col-labels", style: { width: w + "px", height: labelH + "px" } });
    for (let j = 0; j < K; j++) {
      const t = spec.colTokens ? spec.colTokens[j] : String(j);
      const lab = el(
        "div",
        {
          class: "tok col-label" + (j % every ? " hidden-label" : ""),
          title: j + ": " + t,
          style: { left: j * cs + cs / 2 - pitch / 2 + "px", width: pitch + "px", height: labelH + "px", fontSize: font + "px", lineHeight: pitch + "px" },
        },
        showToken(t)
      );
      this.colLabels.push(lab);
      cols.appendChild(lab);
    }
    if (!this.zoomSel) {
      this.zoomSel = el("select", { "aria-label": "cell size", class: "zoom-select" });
      for (const [v, l] of [["fit", "fit"], ["4", "4 px"], ["8", "8 px"], ["12", "12 px (readable)"], ["20", "20 px"]]) {
        this.zoomSel.appendChild(el("option", { value: v }, l));
      }
      this.zoomSel.addEventListener("change", () => {
        this.zoom = this.zoomSel.value === "fit" ? "fit" : parseInt(this.zoomSel.value, 10);
        if (this.spec) this.set(this.spec);
      });
    }
    this.zoomSel.value = String(this.zoom || "fit");
    const stack = el("div", { class: "matrix-stack", style: { width: w + "px", height: h + "px" } }, this.canvas, this.overlay);
    const rowTitle = spec.rowTitle || this.rowTitle;
    const colTitle = spec.colTitle || this.colTitle;
    this.titleNode = el("span", { class: "matrix-title" }, spec.title || "");
    this.legendNode = legend(spec.lut, spec.vmin, spec.vmax, spec.caption || "attention weight");
    replaceChildren(
      this.node,
      el(
        "div",
        { class: "matrix-head" },
        this.titleNode,
        el("label", { class: "ctl small" }, el("span", { class: "ctl-label" }, "cell size"), this.zoomSel)
      ),
      el(
        "div",
        { class: "matrix-grid", style: { gridTemplateColumns: `22px ${labelW}px ${w}px` } },
        el("div", null),
        el("div", null),
        el("div", { class: "axis-title col-title" }, colTitle + " \u2192"),
        el("div", null),
        el("div", null),
        cols,
        el("div", { class: "axis-title row-title" }, el("span", null, rowTitle + " \u2192")),
        rows,
        stack
      ),
      this.legendNode
    );
  }

  cellAt(e) {
    const r = this.overlay.getBoundingClientRect();
    const j = Math.floor((e.clientX - r.left) / this.cs);
    const i = Math.floor((e.clientY - r.top) / this.cs);
    if (!this.spec || i < 0 || j < 0 || i >= this.spec.Q || j >= this.spec.K) return null;
    return [i, j];
  }

  describe(i, j) {
    const s = this.spec;
    const v = s.m[i * s.K + j];
    if (s.describe) return s.describe(i, j, v);
    const q = s.rowTokens ? s.rowTokens[i] : String(i);
    const k = s.colTokens ? s.colTokens[j] : String(j);
    return [`${q} -> ${k}: ${exact(v)}`, `query ${i} -> key ${j}`];
  }

  onMove(e) {
    const cell = this.cellAt(e);
    if (!cell) return this.onLeave();
    this.highlight(cell[0], cell[1]);
    tooltip(this.describe(cell[0], cell[1]), e.clientX, e.clientY);
  }

  onLeave() {
    hideTooltip();
    this.highlight(-1, -1);
  }

  highlight(i, j) {
    const ctx = this.overlay.getContext("2d");
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    // Only the labels lit by the last hover are unlit (not all 2 x T of them:
    // at 512 tokens that loop was most of a mousemove).
    for (const l of this.hotLabels || []) l.classList.remove("hot");
    this.hotLabels = [];
    if (i < 0) return;
    const cs = this.cs;
    const { Q, K } = this.spec;
    ctx.strokeStyle = "rgba(255, 140, 0, 0.55)";
    ctx.lineWidth = 1;
    ctx.strokeRect(0.5, i * cs + 0.5, K * cs - 1, cs - 1);
    ctx.strokeRect(j * cs + 0.5, 0.5, cs - 1, Q * cs - 1);
    ctx.strokeStyle = "#ff3d00";
    ctx.lineWidth = 2;
    ctx.strokeRect(j * cs + 1, i * cs + 1, cs - 2, cs - 2);
    this.hotLabels = [this.rowLabels[i], this.colLabels[j]];
    for (const l of this.hotLabels) l.classList.add("hot");
  }

  /** Simulated hover (screenshots, tests): returns the tooltip lines. */
  hoverCell(i, j) {
    const r = this.overlay.getBoundingClientRect();
    const x = r.left + (j + 0.5) * this.cs;
    const y = r.top + (i + 0.5) * this.cs;
    this.highlight(i, j);
    const lines = this.describe(i, j);
    tooltip(lines, x, y);
    return lines;
  }

  /** A labelled PNG-ready figure of the matrix (fillText only). */
  figure(title) {
    return matrixFigure(this.spec, title || this.spec.title);
  }

  svg(title) {
    return matrixSVG(this.spec, title || this.spec.title);
  }
}

let measureCtx = null;
/** Width in CSS pixels of `text` in the monospace token font at `px` size. */
export function textWidth(text, px) {
  if (!measureCtx) measureCtx = document.createElement("canvas").getContext("2d");
  measureCtx.font = `${px}px "Roboto Mono", Menlo, Consolas, monospace`;
  return measureCtx.measureText(text).width;
}

function truncate(s, n) {
  s = showToken(s);
  return s.length > n ? s.slice(0, n - 1) + "\u2026" : s;
}

/** Draws a labelled matrix figure onto a new canvas (for PNG export). */
export function matrixFigure(spec, title) {
  const { Q, K } = spec;
  const cs = Math.max(3, Math.min(24, Math.floor(900 / Math.max(Q, K, 1))));
  const font = Math.max(6, Math.min(12, cs - 1));
  const every = Math.max(1, Math.ceil(7 / cs));
  const left = 150;
  const top = 130;
  const w = left + K * cs + 30;
  const h = top + Q * cs + 80;
  const { canvas, ctx } = figureCanvas(w, h, title);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#555";
  ctx.fillText((spec.rowTitle || "query (attending from)") + " \u2193   " + (spec.colTitle || "key (attended to)") + " \u2192", 8, 26);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(matrixImage(spec.m, Q, K, spec.lut, spec.vmin, spec.vmax), left, top, K * cs, Q * cs);
  ctx.fillStyle = "#222";
  ctx.font = font + "px sans-serif";
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  for (let i = 0; i < Q; i += every) {
    ctx.fillText(truncate(spec.rowTokens ? spec.rowTokens[i] : String(i), 20), left - 4, top + (i + 0.5) * cs);
  }
  ctx.textAlign = "left";
  for (let j = 0; j < K; j += every) {
    ctx.save();
    ctx.translate(left + (j + 0.5) * cs, top - 4);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(truncate(spec.colTokens ? spec.colTokens[j] : String(j), 16), 0, 0);
    ctx.restore();
  }
  // Legend.
  const ly = top + Q * cs + 24;
  for (let x = 0; x < 200; x++) {
    ctx.fillStyle = cssColor(lutColor(spec.lut, x / 199));
    ctx.fillRect(left + x, ly, 1, 10);
  }
  ctx.fillStyle = "#222";
  ctx.font = "10px sans-serif";
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  ctx.fillText(fmt(spec.vmin), left, ly + 13);
  ctx.textAlign = "right";
  ctx.fillText(fmt(spec.vmax), left + 200, ly + 13);
  ctx.textAlign = "left";
  ctx.fillText(spec.caption || "attention weight", left + 210, ly);
  return canvas;
}

export function xmlEscape(s) {
  return String(s)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;")
    // Characters XML 1.0 forbids.
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "\ufffd");
}

/** A standalone SVG document of the labelled matrix (one <rect> per cell). */
export function matrixSVG(spec, title) {
  const { Q, K } = spec;
  const cs = Math.max(3, Math.min(24, Math.floor(900 / Math.max(Q, K, 1))));
  const font = Math.max(6, Math.min(12, cs - 1));
  const left = 150;
  const top = 130;
  const w = left + K * cs + 30;
  const h = top + Q * cs + 80;
  const span = spec.vmax - spec.vmin || 1;
  const out = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif">`);
  out.push(`<rect width="${w}" height="${h}" fill="#fff"/>`);
  out.push(`<text x="8" y="20" font-size="13" font-weight="bold">${xmlEscape(title || "")}</text>`);
  out.push(
    `<text x="8" y="38" font-size="11" fill="#555">${xmlEscape(
      (spec.rowTitle || "query (attending from)") + " \u2193   " + (spec.colTitle || "key (attended to)") + " \u2192"
    )}</text>`
  );
  out.push(`<g shape-rendering="crispEdges">`);
  for (let i = 0; i < Q; i++) {
    for (let j = 0; j < K; j++) {
      const v = spec.m[i * K + j];
      const c = lutColor(spec.lut, (v - spec.vmin) / span);
      out.push(
        `<rect x="${left + j * cs}" y="${top + i * cs}" width="${cs}" height="${cs}" fill="${cssColor(c)}"><title>${xmlEscape(
          exact(v)
        )}</title></rect>`
      );
    }
  }
  out.push(`</g>`);
  out.push(`<g font-size="${font}" fill="#222">`);
  for (let i = 0; i < Q; i++) {
    const t = spec.rowTokens ? spec.rowTokens[i] : String(i);
    out.push(`<text x="${left - 4}" y="${top + (i + 0.5) * cs}" text-anchor="end" dominant-baseline="middle">${xmlEscape(showToken(t))}</text>`);
  }
  for (let j = 0; j < K; j++) {
    const t = spec.colTokens ? spec.colTokens[j] : String(j);
    const x = left + (j + 0.5) * cs;
    out.push(
      `<text transform="translate(${x},${top - 4}) rotate(-90)" dominant-baseline="middle">${xmlEscape(showToken(t))}</text>`
    );
  }
  out.push(`</g>`);
  const ly = top + Q * cs + 24;
  out.push(`<defs><linearGradient id="lg">`);
  for (let s = 0; s <= 10; s++) {
    out.push(`<stop offset="${s / 10}" stop-color="${cssColor(lutColor(spec.lut, s / 10))}"/>`);
  }
  out.push(`</linearGradient></defs>`);
  out.push(`<rect x="${left}" y="${ly}" width="200" height="10" fill="url(#lg)"/>`);
  out.push(`<text x="${left}" y="${ly + 24}" font-size="10">${xmlEscape(fmt(spec.vmin))}</text>`);
  out.push(`<text x="${left + 200}" y="${ly + 24}" font-size="10" text-anchor="end">${xmlEscape(fmt(spec.vmax))}</text>`);
  out.push(`<text x="${left + 210}" y="${ly + 9}" font-size="10">${xmlEscape(spec.caption || "attention weight")}</text>`);
  out.push(`</svg>`);
  return out.join("\n");
}

/** CSV rows of a labelled matrix; cells that a spreadsheet would run as a formula are quoted with a leading '. */
export function matrixCSV(spec) {
  const lines = [];
  const cols = [];
  for (let j = 0; j < spec.K; j++) cols.push(spec.colTokens ? spec.colTokens[j] : j);
  lines.push(["query \\ key"].concat(cols).map(csvCell).join(","));
  for (let i = 0; i < spec.Q; i++) {
    const row = [csvCell(spec.rowTokens ? spec.rowTokens[i] : i)];
    for (let j = 0; j < spec.K; j++) row.push(String(spec.m[i * spec.K + j]));
    lines.push(row.join(","));
  }
  return lines.join("\r\n") + "\r\n";
}

/** One CSV cell; text a spreadsheet would run as a formula gets a leading '. */
export function csvCell(s) {
  s = String(s);
  if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;
  return /[",\r\n]/.test(s) || s !== s.trim() ? '"' + s.replace(/"/g, '""') + '"' : s;
}

/** JSON-able form of a labelled matrix. */
export function matrixJSON(spec, meta) {
  const rows = [];
  for (let i = 0; i < spec.Q; i++) rows.push(Array.from(spec.m.subarray ? spec.m.subarray(i * spec.K, (i + 1) * spec.K) : spec.m.slice(i * spec.K, (i + 1) * spec.K)));
  return Object.assign({}, meta || {}, {
    rows: spec.rowTitle || "query (attending from)",
    columns: spec.colTitle || "key (attended to)",
    row_tokens: spec.rowTokens,
    column_tokens: spec.colTokens,
    shape: [spec.Q, spec.K],
    data: rows,
  });
}
