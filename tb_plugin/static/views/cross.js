// Cross-attention: the alignment matrix of a "cross" layer, target tokens
// (rows, attending from) x source tokens (columns, attended to), per head or
// aggregated, with thumbnails of every head.

import { el, replaceChildren, select, labelled, tooltip, hideTooltip, fmt, panelHead } from "../dom.js";
import { headMatrix, headLabel, drawHeatmap, MatrixView, matrixSVG, matrixCSV, matrixJSON, exact, maxOf } from "../matrix.js";
import { vmaxFor, relativeEntropy } from "./heatmaps.js";

export class CrossView {
  constructor(app) {
    this.app = app;
    this.head = "mean";
    this.layerIdx = null;
    this.layerSel = select([], null, (v) => {
      this.layerIdx = parseInt(v, 10);
      app.update();
    }, { "aria-label": "cross-attention layer", id: "cross-layer-select" });
    this.headSel = select([], null, (v) => {
      this.head = v === "mean" || v === "max" ? v : parseInt(v, 10);
      app.update();
    }, { "aria-label": "cross-attention head", id: "cross-head-select" });
    this.msg = el("div", { class: "notice", id: "cross-message", hidden: true });
    this.thumbs = el("div", { class: "thumbs" });
    this.matrix = new MatrixView({ maxPx: 640 });
    this.body = el("div", null, this.thumbs, this.matrix.node);
    this.node = el(
      "div",
      { class: "view cross" },
      el(
        "div",
        { class: "panel" },
        panelHead("Cross-attention alignment", labelled("Layer", this.layerSel), labelled("Head", this.headSel)),
        el("div", { class: "muted small" }, "Rows: target tokens (decoder queries, attending from). Columns: source tokens (encoder keys, attended to)."),
        this.msg,
        this.body
      )
    );
  }

  async update(gen) {
    const app = this.app;
    const header = app.header;
    const cross = header.layers.map((l, i) => i).filter((i) => header.layers[i].kind === "cross");
    if (!cross.length) {
      replaceChildren(this.msg, 'This probe example has no cross-attention layer (kind "cross"); its layers are: ' + header.layers.map((l) => `${l.name} (${l.kind})`).join(", ") + ".");
      this.msg.hidden = false;
      this.body.hidden = true;
      this.spec = null;
      return;
    }
    this.msg.hidden = true;
    this.body.hidden = false;
    if (!cross.includes(this.layerIdx)) this.layerIdx = cross.includes(app.state.layer) ? app.state.layer : cross[0];
    replaceChildren(this.layerSel);
    for (const i of cross) this.layerSel.appendChild(el("option", { value: String(i) }, `${i}: ${header.layers[i].name}`));
    this.layerSel.value = String(this.layerIdx);
    const li = this.layerIdx;
    const layer = await app.layerData(li);
    if (!app.isCurrent(gen)) return;
    const desc = header.layers[li];
    const [H, Q, K] = layer.shape;
    if (this.head !== "mean" && this.head !== "max" && this.head >= H) this.head = "mean";
    replaceChildren(this.headSel);
    const opts = [
      ["mean", "mean of heads"],
      ["max", "max over heads"],
    ];
    for (let h = 0; h < H; h++) opts.push([h, "head " + h]);
    for (const [v, l] of opts) this.headSel.appendChild(el("option", { value: String(v) }, l));
    this.headSel.value = String(this.head);

    const rowTokens = header.tokens[desc.query];
    const colTokens = header.tokens[desc.key];
    // Thumbnails: every head, click to select.
    const size = 72;
    const thumbs = [];
    for (const h of ["mean", "max"].concat(Array.from({ length: H }, (_, i) => i))) {
      const m = headMatrix(layer, h);
      const w = K >= Q ? size : Math.max(8, Math.round((size * K) / Q));
      const hh = Q >= K ? size : Math.max(8, Math.round((size * Q) / K));
      const c = el("canvas", { class: "thumb-canvas" });
      drawHeatmap(c, m, Q, K, w, hh, app.lut, 0, vmaxFor(app, m));
      c.addEventListener("click", () => {
        this.head = h;
        app.update();
      });
      c.addEventListener("mousemove", (e) => {
        const r = c.getBoundingClientRect();
        const i = Math.min(Q - 1, Math.floor(((e.clientY - r.top) / r.height) * Q));
        const j = Math.min(K - 1, Math.floor(((e.clientX - r.left) / r.width) * K));
        tooltip([`${rowTokens[i]} -> ${colTokens[j]}: ${exact(m[i * K + j])}`, `${headLabel(h)} \u00b7 target ${i} -> source ${j}`], e.clientX, e.clientY);
      });
      c.addEventListener("mouseleave", hideTooltip);
      thumbs.push(
        el(
          "div",
          { class: "thumb" + (String(h) === String(this.head) ? " selected" : "") },
          c,
          el("div", { class: "small" }, h === "mean" || h === "max" ? h : "head " + h)
        )
      );
    }
    replaceChildren(this.thumbs, ...thumbs);
    const m = headMatrix(layer, this.head);
    this.spec = {
      m,
      Q,
      K,
      rowTokens,
      colTokens,
      lut: app.lut,
      vmin: 0,
      vmax: vmaxFor(app, m),
      caption: (app.state.scale === "unit" ? "attention weight" : "attention weight (0 \u2013 max of this matrix)") +
        ` \u00b7 max ${fmt(maxOf(m))} \u00b7 entropy ${(() => { const r = relativeEntropy(m, Q, K, "cross"); return r === null ? "n/a" : r.toFixed(2); })()} of uniform`,
      title: `${desc.name} \u00b7 ${headLabel(this.head)} \u00b7 step ${app.step}`,
      rowTitle: `${desc.query} tokens = queries (attending from)`,
      colTitle: `${desc.key} tokens = keys (attended to)`,
      describe: (i, j, v) => [`${rowTokens[i]} -> ${colTokens[j]}: ${exact(v)}`, `target ${i} -> source ${j} \u00b7 ${headLabel(this.head)}`],
    };
    this.layerName = desc.name;
    this.matrix.set(this.spec);
  }

  exports() {
    if (!this.spec) return {};
    const spec = this.spec;
    return {
      suffix: this.layerName + "_" + headLabel(this.head),
      png: () => this.matrix.figure(),
      svg: () => matrixSVG(spec, spec.title),
      json: () => matrixJSON(spec, { layer: this.layerName, head: this.head }),
      csv: () => matrixCSV(spec),
    };
  }
}
