// The Heatmaps view for big steps (e.g. 12 layers x 12 heads x 512 tokens:
// 38 M weights, 150 MB as float32): it fetches only what it draws.
//
// * The layers x heads grid comes from `/grid`: per layer, every head and the
//   aggregate pooled on the server to about the thumbnail's device pixels
//   (block max, 8-bit, per-matrix max; tb_plugin/thumbnails.py). Rows are
//   requested together and each is drawn as soon as it arrives.
// * The enlarged matrix is the one selected head at full resolution
//   (`/layer?head=&dtype=float16`).
// * Changing only the selected matrix (thumbnail click, head menu) redraws the
//   detail and the selection outline, not the grid.
// Small steps keep the exact in-browser path of heatmaps.js (below
// SCALED_ABOVE weights), as do typed texts (their layers are in memory).

import { el, replaceChildren, sizeCanvas, tooltip, hideTooltip, fmt } from "../dom.js";
import { headLabel, exact } from "../matrix.js";
import { matrixSpec, poolingPanel, UNIFORM_AT, gridFigure } from "./heatmaps.js";

/** Steps holding more weights than this use the scaled path. */
export const SCALED_ABOVE = 1 << 21;

export function useScaled(app, header) {
  if (app.live || !header) return false;
  let n = 0;
  for (const l of header.layers) n += l.shape[0] * l.shape[1] * l.shape[2];
  return n > SCALED_ABOVE;
}

function entropyText(rel, uniformAt) {
  return rel === null || rel === undefined || Number.isNaN(rel)
    ? "H n/a"
    : `H ${rel.toFixed(2)}` + (rel >= uniformAt ? " uniform" : "");
}

/** Draws thumbnail `idx` of a /grid answer into `canvas` at CSS size w x h. */
export function drawThumbnail(canvas, grid, idx, w, h, lut, unit) {
  const [, q, k] = grid.shape;
  const off = document.createElement("canvas");
  off.width = Math.max(1, k);
  off.height = Math.max(1, q);
  const octx = off.getContext("2d");
  const img = octx.createImageData(off.width, off.height);
  const px = img.data;
  const src = grid.data;
  const o0 = idx * q * k;
  // 255 = this matrix's max: the "0 - max" scale uses the byte as the
  // colour index; the fixed 0 - 1 scale multiplies by the max first.
  const mul = unit ? Math.min(1, grid.maxima[idx] || 0) : 1;
  for (let i = 0; i < q * k; i++) {
    const li = Math.round(src[o0 + i] * mul) * 3;
    const o = i * 4;
    px[o] = lut[li];
    px[o + 1] = lut[li + 1];
    px[o + 2] = lut[li + 2];
    px[o + 3] = 255;
  }
  octx.putImageData(img, 0, 0);
  const ctx = sizeCanvas(canvas, w, h);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, 0, 0, w, h);
}

/**
 * Renders the grid and the detail of HeatmapsView `view` for the current
 * step from /grid and /layer?head=. Returns when both are drawn.
 */
export async function updateScaled(view, gen, { uniformAt = UNIFORM_AT } = {}) {
  const app = view.app;
  const header = app.header;
  const { run, tag } = app.state;
  const step = app.step;
  const nonPool = header.layers.map((d, i) => i).filter((i) => header.layers[i].kind !== "pooling");
  const pools = header.layers.map((d, i) => i).filter((i) => header.layers[i].kind === "pooling");
  view.header = header;
  view.scaled = true;

  // Pooling layers are one row each: fetch them whole.
  const poolData = await Promise.all(pools.map((i) => app.layerData(i)));
  if (!app.isCurrent(gen)) return;
  // Only the pooling layers are held whole here (the exports read them).
  view.layers = [];
  pools.forEach((i, n) => (view.layers[i] = poolData[n]));
  replaceChildren(view.pooling, ...pools.map((i, n) => poolingPanel(app, header, i, poolData[n])));

  view.gridPanel.hidden = nonPool.length === 0;
  view.detailPanel.hidden = nonPool.length === 0;
  if (!nonPool.length) {
    view.spec = null;
    return;
  }
  let sel = app.state.layer;
  if (!nonPool.includes(sel)) sel = nonPool[0];
  const H = header.layers[sel].shape[0];
  let hd = app.state.head;
  if (hd !== "mean" && hd !== "max" && !(hd >= 0 && hd < H)) hd = app.state.agg;

  const maxH = Math.max(...nonPool.map((i) => header.layers[i].shape[0]));
  const W = window.innerWidth || 1200;
  const avail = Math.max(420, W * 0.5 - 150);
  const size = Math.max(44, Math.min(112, Math.floor(avail / (maxH + 1)) - 4));
  view.detail.maxPx = Math.max(360, Math.min(640, W - (size + 4) * (maxH + 1) - 420));
  const dpr = window.devicePixelRatio || 1;
  // Thumbnails at the canvas' device pixels (never above 128 cells).
  const cells = Math.max(16, Math.min(128, Math.round(size * dpr)));

  const detail = app.api.matrix(run, tag, step, sel, hd);
  const signature = [run, tag, step, app.state.agg, app.state.colormap, app.state.scale, size, cells].join("|");
  if (view.gridSignature !== signature) {
    view.gridSignature = signature;
    view.thumbs = {};
    const rows = [];
    const head = el("div", { class: "hm-row hm-head-row" }, el("div", { class: "hm-rowlabel" }));
    for (let h = 0; h < maxH; h++) head.appendChild(el("div", { class: "hm-colhead", style: { width: size + "px" } }, "head " + h));
    head.appendChild(el("div", { class: "hm-colhead agg", style: { width: size + "px" } }, app.state.agg));
    rows.push(head);
    const rowNodes = {};
    for (const li of nonPool) {
      const desc = header.layers[li];
      const [Hl, Q, K] = desc.shape;
      const row = el(
        "div",
        { class: "hm-row", dataset: { layer: li, pending: "1" } },
        el("div", { class: "hm-rowlabel", title: desc.name }, el("div", null, desc.name), el("div", { class: "muted small" }, `${desc.kind} ${Hl}\u00d7${Q}\u00d7${K}`))
      );
      rowNodes[li] = row;
      rows.push(row);
    }
    replaceChildren(view.grid, ...rows);
    // All rows requested at once; each drawn when its answer arrives.
    const pending = nonPool.map((li) =>
      app.api.grid(run, tag, step, li, cells, app.state.agg).then((g) => {
        if (view.gridSignature !== signature) return;
        fillRow(view, rowNodes[li], li, g, maxH, size, uniformAt);
      })
    );
    view.gridDone = Promise.all(pending).then(() => {
      // Then the entropy labels (a logarithm per weight on the server: after the pixels).
      for (const li of nonPool) {
        app.api.grid(run, tag, step, li, cells, app.state.agg, true).then(
          (g) => view.gridSignature === signature && fillEntropy(rowNodes[li], g, uniformAt),
          () => {}
        );
      }
    });
  }
  const m = await detail;
  if (!app.isCurrent(gen)) return;
  view.selLayer = sel;
  view.selHead = hd;
  fillHeadSelect(view, H, hd);
  view.spec = matrixSpec(app, header, sel, m, 0, { title: `${header.layers[sel].name} \u00b7 ${headLabel(hd)} \u00b7 step ${app.step}` });
  view.detail.set(view.spec);
  markSelected(view, sel, hd);
  // Head toggling then draws from memory: the other matrices of this layer
  // (H x Q x K float16, 6 MB at 12 x 512 x 512) are fetched in the background.
  const others = ["mean", "max"].concat([...Array(H).keys()]).filter((h) => String(h) !== String(hd));
  view.gridDone.then(() => others.forEach((h) => app.api.matrix(run, tag, step, sel, h).catch(() => {})));
  await view.gridDone;
  if (!app.isCurrent(gen)) return;
  markSelected(view, sel, hd);
}

function fillHeadSelect(view, H, hd) {
  replaceChildren(view.headSel);
  const opts = [
    ["mean", "mean of heads"],
    ["max", "max over heads"],
  ];
  for (let h = 0; h < H; h++) opts.push([h, "head " + h]);
  for (const [v, l] of opts) view.headSel.appendChild(el("option", { value: String(v) }, l));
  view.headSel.value = String(hd);
}

function markSelected(view, sel, hd) {
  for (const c of view.grid.querySelectorAll(".hm-cell.selected")) c.classList.remove("selected");
  const canvas = view.grid.querySelector(`.hm-canvas[data-layer="${sel}"][data-head="${hd}"]`);
  if (canvas && canvas.parentNode) canvas.parentNode.classList.add("selected");
}

function fillRow(view, row, li, g, maxH, size, uniformAt) {
  const app = view.app;
  const header = view.header;
  const desc = header.layers[li];
  const [H, Q, K] = g.source;
  const [, q, k] = g.shape;
  const unit = app.state.scale === "unit";
  view.thumbs[li] = g;
  for (let c = 0; c < maxH + 1; c++) {
    const hh = c < H ? c : c === maxH ? app.state.agg : null;
    if (hh === null) {
      row.appendChild(el("div", { class: "hm-cell empty", style: { width: size + "px", height: size + "px" } }));
      continue;
    }
    const idx = c < H ? c : H;
    const w = K >= Q ? size : Math.max(8, Math.round((size * K) / Q));
    const hgt = Q >= K ? size : Math.max(8, Math.round((size * Q) / K));
    const canvas = el("canvas", { class: "hm-canvas", dataset: { layer: li, head: hh } });
    drawThumbnail(canvas, g, idx, w, hgt, app.lut, unit);
    const cell = el(
      "div",
      {
        class: "hm-cell",
        style: { width: size + "px", minHeight: size + 26 + "px" },  // min: the captions may wrap in narrow cells
        title: "max = largest weight; H = entropy relative to uniform (1: attends to every token alike, 0: to one token)",
      },
      canvas,
      el("div", { class: "hm-max" }, "max " + fmt(g.maxima[idx])),
      el("div", { class: "hm-max hm-entropy", dataset: { index: idx } }, "H …")
    );
    canvas.addEventListener("click", () => app.selectMatrix(li, hh));
    canvas.addEventListener("mousemove", (e) => {
      const r = canvas.getBoundingClientRect();
      const bi = Math.min(q - 1, Math.floor(((e.clientY - r.top) / r.height) * q));
      const bj = Math.min(k - 1, Math.floor(((e.clientX - r.left) / r.width) * k));
      if (bi < 0 || bj < 0) return;
      const i0 = Math.floor((bi * Q) / q), i1 = Math.floor(((bi + 1) * Q) / q) - 1;
      const j0 = Math.floor((bj * K) / k), j1 = Math.floor(((bj + 1) * K) / k) - 1;
      const v = (g.data[idx * q * k + bi * k + bj] / 255) * g.maxima[idx];
      const qt = header.tokens[desc.query];
      const kt = header.tokens[desc.key];
      const span = (t, a, b) => (a === b ? `${t[a]}` : `${t[a]} \u2026 ${t[b]}`);
      tooltip(
        [
          `${span(qt, i0, i1)} -> ${span(kt, j0, j1)}: max \u2248 ${exact(v)}`,
          `${desc.name} \u00b7 ${headLabel(hh)} \u00b7 queries ${i0}\u2013${i1} -> keys ${j0}\u2013${j1} (thumbnail; click to enlarge)`,
        ],
        e.clientX,
        e.clientY
      );
    });
    canvas.addEventListener("mouseleave", hideTooltip);
    row.appendChild(cell);
  }
  delete row.dataset.pending;
}

function fillEntropy(row, g, uniformAt) {
  for (const label of row.querySelectorAll(".hm-entropy")) {
    const rel = g.entropy[Number(label.dataset.index)];
    const uniform = rel !== null && rel !== undefined && rel >= uniformAt;
    label.textContent = entropyText(rel, uniformAt);
    label.classList.toggle("uniform", uniform);
    label.parentNode.classList.toggle("near-uniform", uniform);
  }
}

/** A PNG figure of the thumbnail grid (what the scaled view shows). */
export function scaledGridFigure(view) {
  const app = view.app;
  const header = view.header;
  const idx = header.layers.map((d, i) => i).filter((i) => header.layers[i].kind !== "pooling" && view.thumbs[i]);
  return gridFigure(app, header, idx, (li) => view.thumbs[li].source[0],
    `${app.state.tag} \u00b7 step ${app.step} \u00b7 rows = queries, columns = keys (thumbnails: block max)`,
    (li, head) => {
      const g = view.thumbs[li];
      const n = head === null ? g.source[0] : head; // the last thumbnail is the aggregate
      const image = document.createElement("canvas");
      drawThumbnail(image, g, n, g.shape[2], g.shape[1], app.lut, app.state.scale === "unit");
      return { image, max: g.maxima[n] };
    });
}
