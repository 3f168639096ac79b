// Attention flows: the layered token graph (one column per layer, edges =
// residual-adjusted attention 0.5*A + 0.5*I with rows renormalised, pruned to
// the strongest incoming edges), the contributions flowing into a chosen
// output position, and the server's rollout and max-flow scores as bars.

import { el, replaceChildren, select, labelled, sizeCanvas, tooltip, hideTooltip, showToken, fmt, figureCanvas } from "../dom.js";
import { exact, csvCell } from "../matrix.js";

/**
 * Head-fused, residual-adjusted, row-normalised [n, n] matrices of every layer
 * (as the server's rollout; "exclude the first token" acts on the result only).
 */
export function residualGraph(layers, fusion) {
  return layers.map((layer) => {
    const [H, Q, K] = layer.shape;
    const n = Q;
    const d = layer.data;
    const a = new Float32Array(n * n);
    for (let i = 0; i < n * n; i++) {
      let v = fusion === "mean" ? 0 : fusion === "max" ? -Infinity : Infinity;
      for (let h = 0; h < H; h++) {
        const x = d[h * n * n + i];
        if (fusion === "mean") v += x;
        else if (fusion === "max") v = x > v ? x : v;
        else v = x < v ? x : v;
      }
      a[i] = fusion === "mean" ? v / H : v;
    }
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) {
        const v = 0.5 * a[i * n + j] + (i === j ? 0.5 : 0);
        a[i * n + j] = v;
        s += v;
      }
      if (s > 0) for (let j = 0; j < n; j++) a[i * n + j] /= s;
    }
    return a;
  });
}

export class FlowsView {
  constructor(app) {
    this.app = app;
    this.fusion = "mean";
    this.excludeFirst = false;
    this.edgesK = 3;
    this.position = 0;
    this.fusionSel = select(
      [
        ["mean", "mean"],
        ["max", "max"],
        ["min", "min"],
      ],
      this.fusion,
      (v) => {
        this.fusion = v;
        app.update();
      },
      { "aria-label": "head fusion" }
    );
    this.exclude = el("input", {
      type: "checkbox",
      id: "exclude-first",
      onchange: () => {
        this.excludeFirst = this.exclude.checked;
        app.update();
      },
    });
    this.kInput = el("input", {
      type: "number",
      min: 1,
      max: 64,
      value: this.edgesK,
      class: "num",
      "aria-label": "edges per node",
      onchange: () => {
        const v = parseInt(this.kInput.value, 10);
        if (v >= 1) {
          this.edgesK = v;
          this.draw();
        }
      },
    });
    this.posSel = select([], null, (v) => this.setPosition(parseInt(v, 10)), { "aria-label": "output position", id: "position-select" });
    this.msg = el("div", { class: "notice", id: "flows-message", hidden: true });
    this.flowMsg = el("div", { class: "notice", id: "flow-error", hidden: true });
    this.left = el("div", { class: "fl-labels left" });
    this.right = el("div", { class: "fl-labels right" });
    this.canvas = el("canvas", { class: "fl-canvas", id: "flows-canvas" });
    this.colHeads = el("div", { class: "fl-colheads" });
    this.bars = el("div", { class: "bars", id: "flow-bars" });
    this.graphPanel = el(
      "div",
      { class: "panel" },
      el("div", { class: "panel-title" }, "Token graph (layer by layer)"),
      el(
        "div",
        { class: "muted small" },
        "Columns: the input tokens, then the output of each layer. Edges: 0.5\u00b7A + 0.5\u00b7I (heads fused, rows renormalised), " +
          "the strongest incoming edges of each node. Orange: what flows into the chosen output position (click a token on the right)."
      ),
      this.colHeads,
      el("div", { class: "fl-body" }, this.left, this.canvas, this.right)
    );
    this.barPanel = el(
      "div",
      { class: "panel" },
      el("div", { class: "panel-title", id: "bars-title" }, "Input token importance"),
      el(
        "div",
        { class: "legend-inline small" },
        el("span", { class: "swatch rollout" }),
        "rollout (server /rollout)",
        el("span", { class: "swatch flow" }),
        "max-flow (server /flow)"
      ),
      this.flowMsg,
      this.bars
    );
    this.node = el(
      "div",
      { class: "view flows" },
      el(
        "div",
        { class: "panel-head" },
        labelled("Head fusion", this.fusionSel),
        el("label", { class: "ctl" }, this.exclude, el("span", null, "exclude the first token (attention sink)")),
        labelled("Edges per node", this.kInput),
        labelled("Output position", this.posSel)
      ),
      this.msg,
      el("div", { class: "fl-layout" }, this.graphPanel, this.barPanel)
    );
  }

  setPosition(p) {
    this.position = p;
    this.posSel.value = String(p);
    this.draw();
    this.loadScores(this.app.gen);
  }

  async update(gen) {
    const app = this.app;
    const header = app.header;
    const bad = header.layers.find((l) => !(l.kind === "self" || l.kind === "causal") || l.query !== l.key || l.query !== header.layers[0].query);
    if (bad) {
      this.graphPanel.hidden = this.barPanel.hidden = true;
      this.layers = null;
      replaceChildren(
        this.msg,
        `Flows need square self-attention over one token set in every layer; layer "${bad.name}" is ${bad.kind}` +
          (bad.kind === "pooling" ? " (see the pooled weights under Heatmaps)." : ".")
      );
      this.msg.hidden = false;
      return;
    }
    this.msg.hidden = true;
    this.graphPanel.hidden = this.barPanel.hidden = false;
    const layers = await app.layers();
    if (!app.isCurrent(gen)) return;
    this.header = header;
    this.tokens = header.tokens[header.layers[0].key];
    const n = this.tokens.length;
    if (this.position >= n) this.position = 0;
    const opts = this.tokens.map((t, i) => [i, `${i}: ${showToken(t)}`]);
    replaceChildren(this.posSel);
    for (const [v, l] of opts) this.posSel.appendChild(el("option", { value: String(v) }, l));
    this.posSel.value = String(this.position);
    this.layers = layers;
    this.graph = residualGraph(layers, this.fusion);
    this.layout();
    this.draw();
    await this.loadScores(gen);
  }

  layout() {
    const n = this.tokens.length;
    const L = this.graph.length;
    this.rh = Math.max(10, Math.min(20, Math.floor(900 / n)));
    this.colW = Math.max(50, Math.min(130, Math.floor(560 / L)));
    this.w = L * this.colW + 16;
    this.h = n * this.rh;
    const font = Math.min(13, this.rh - 2) + "px";
    const mk = (side) =>
      this.tokens.map((t, i) => {
        const d = el(
          "div",
          {
            class: "tok fl-tok" + (side === "right" ? " clickable" : ""),
            title: i + ": " + t,
            style: { top: i * this.rh + "px", height: this.rh + "px", lineHeight: this.rh + "px", fontSize: font },
            dataset: { index: i },
          },
          showToken(t)
        );
        if (side === "right") d.addEventListener("click", () => this.setPosition(i));
        return d;
      });
    this.leftNodes = mk("left");
    this.rightNodes = mk("right");
    this.left.style.height = this.right.style.height = this.h + "px";
    replaceChildren(this.left, ...this.leftNodes);
    replaceChildren(this.right, ...this.rightNodes);
    const names = ["input"].concat(this.header.layers.map((l) => l.name));
    replaceChildren(
      this.colHeads,
      ...names.map((nm, l) =>
        el("div", { class: "fl-colhead", style: { left: 130 + 8 + l * this.colW + "px" }, title: nm }, nm.length > 18 ? "\u2026" + nm.slice(-17) : nm)
      )
    );
    this.colHeads.style.width = this.w + 240 + "px";
    this.canvas.onmousemove = (e) => this.onMove(e);
    this.canvas.onmouseleave = () => hideTooltip();
  }

  /** Contributions into the chosen output: v[l] over the nodes of column l. */
  contributions() {
    const n = this.tokens.length;
    const L = this.graph.length;
    const v = new Array(L + 1);
    v[L] = new Float32Array(n);
    v[L][this.position] = 1;
    for (let l = L - 1; l >= 0; l--) {
      const a = this.graph[l];
      const out = new Float32Array(n);
      const up = v[l + 1];
      for (let i = 0; i < n; i++) {
        if (!up[i]) continue;
        for (let j = 0; j < n; j++) out[j] += up[i] * a[i * n + j];
      }
      v[l] = out;
    }
    return v;
  }

  drawGraph(ctx, x0, y0) {
    const n = this.tokens.length;
    const L = this.graph.length;
    const rh = this.rh;
    const cx = (l) => x0 + 8 + l * this.colW;
    const cy = (i) => y0 + (i + 0.5) * rh;
    const k = Math.min(this.edgesK, n);
    // Pruned background edges.
    const BUCKETS = 8;
    for (let l = 0; l < L; l++) {
      const a = this.graph[l];
      const paths = Array.from({ length: BUCKETS }, () => new Path2D());
      for (let i = 0; i < n; i++) {
        // top-k incoming edges of node i in column l+1
        const row = a.subarray(i * n, (i + 1) * n);
        const best = [];
        for (let j = 0; j < n; j++) {
          const v = row[j];
          if (best.length < k) {
            best.push([v, j]);
            best.sort((p, q) => q[0] - p[0]);
          } else if (v > best[k - 1][0]) {
            best[k - 1] = [v, j];
            best.sort((p, q) => q[0] - p[0]);
          }
        }
        for (const [v, j] of best) {
          if (v < 0.01) continue;
          const b = Math.min(BUCKETS - 1, Math.floor(v * BUCKETS));
          paths[b].moveTo(cx(l + 1), cy(i));
          paths[b].lineTo(cx(l), cy(j));
        }
      }
      ctx.lineWidth = 1;
      for (let b = 0; b < BUCKETS; b++) {
        ctx.strokeStyle = `rgba(90, 110, 140, ${(0.08 + (0.5 * (b + 1)) / BUCKETS).toFixed(3)})`;
        ctx.stroke(paths[b]);
      }
    }
    // Highlighted flow into the chosen position.
    const v = this.contributions();
    for (let l = L - 1; l >= 0; l--) {
      const a = this.graph[l];
      const up = v[l + 1];
      let cmax = 0;
      for (let i = 0; i < n; i++) if (up[i]) for (let j = 0; j < n; j++) cmax = Math.max(cmax, up[i] * a[i * n + j]);
      if (!cmax) continue;
      for (let i = 0; i < n; i++) {
        if (!up[i]) continue;
        for (let j = 0; j < n; j++) {
          const c = (up[i] * a[i * n + j]) / cmax;
          if (c < 0.03) continue;
          ctx.strokeStyle = `rgba(230, 100, 0, ${(0.15 + 0.85 * c).toFixed(3)})`;
          ctx.lineWidth = 0.5 + 3 * c;
          ctx.beginPath();
          ctx.moveTo(cx(l + 1), cy(i));
          ctx.lineTo(cx(l), cy(j));
          ctx.stroke();
        }
      }
    }
    // Nodes.
    for (let l = 0; l <= L; l++) {
      let m = 0;
      for (const x of v[l]) m = Math.max(m, x);
      for (let i = 0; i < n; i++) {
        const t = m ? v[l][i] / m : 0;
        ctx.fillStyle = t > 0.02 ? "#e66400" : "#8a9bb0";
        ctx.beginPath();
        ctx.arc(cx(l), cy(i), t > 0.02 ? 1.5 + Math.sqrt(t) * Math.min(6, rh / 2 - 1) : 1.5, 0, Math.PI * 2);
        ctx.fill();
      }
    }
    this.v = v;
  }

  draw() {
    if (!this.layers || !this.graph) return;
    const ctx = sizeCanvas(this.canvas, this.w, this.h);
    ctx.clearRect(0, 0, this.w, this.h);
    this.drawGraph(ctx, 0, 0);
    for (const nd of this.rightNodes) nd.classList.toggle("hot", Number(nd.dataset.index) === this.position);
    const lastIn = Float32Array.from(this.v[0]);
    if (this.excludeFirst && lastIn.length > 1) lastIn[0] = 0;
    let m = 0;
    for (const x of lastIn) m = Math.max(m, x);
    this.leftNodes.forEach((nd, j) => {
      nd.style.background = m && lastIn[j] / m > 0.02 ? `rgba(230, 100, 0, ${((lastIn[j] / m) * 0.5).toFixed(3)})` : "";
    });
  }

  onMove(e) {
    if (!this.v) return;
    const r = this.canvas.getBoundingClientRect();
    const x = e.clientX - r.left;
    const y = e.clientY - r.top;
    const l = Math.round((x - 8) / this.colW);
    const i = Math.floor(y / this.rh);
    if (l < 0 || l > this.graph.length || i < 0 || i >= this.tokens.length) return hideTooltip();
    const col = l === 0 ? "input" : this.header.layers[l - 1].name;
    tooltip([`${col} \u00b7 position ${i}: ${this.tokens[i]}`, `share of the flow into position ${this.position}: ${exact(this.v[l][i])}`], e.clientX, e.clientY);
  }

  async loadScores(gen) {
    const app = this.app;
    const pos = this.position;
    const step = app.step;
    replaceChildren(this.node.querySelector("#bars-title"), `Input token importance for output position ${pos} (${showToken(this.tokens[pos])})`);
    this.flowMsg.hidden = true;
    let rollout = null;
    let flow = null;
    let rolloutErr = null;
    try {
      const r = await app.rollout(this.fusion, this.excludeFirst);
      rollout = r.rollout[pos];
      this.rolloutTokens = r.tokens;
    } catch (e) {
      rolloutErr = e.message;
    }
    if (pos !== this.position || step !== app.step) return;
    this.scores = { rollout, flow: null };
    this.renderBars(rollout, null, "computing\u2026");
    try {
      const f = await app.flow(pos, this.fusion, this.excludeFirst);
      flow = f.flow;
      if (!rollout && f.rollout) rollout = f.rollout;
    } catch (e) {
      if (pos !== this.position || step !== app.step) return;
      replaceChildren(this.flowMsg, "Flow not computed: ", e.message);
      this.flowMsg.hidden = false;
    }
    if (pos !== this.position || step !== app.step) return;
    if (rolloutErr && !rollout) {
      replaceChildren(this.flowMsg, "Rollout not computed: ", rolloutErr);
      this.flowMsg.hidden = false;
    }
    this.scores = { rollout, flow };
    this.renderBars(rollout, flow, null);
    app.refreshExport();
  }

  renderBars(rollout, flow, flowState) {
    const tokens = this.tokens;
    const align = (arr) => {
      if (!arr) return null;
      if (arr.length === tokens.length) return arr;
      if (arr.length === tokens.length - 1) return [null].concat(arr); // first token left out
      return null;
    };
    const ro = align(rollout);
    const fl = align(flow);
    const max = (a) => (a ? Math.max(1e-12, ...a.filter((x) => x !== null)) : 1);
    const rm = max(ro);
    const fm = max(fl);
    const rows = tokens.map((t, j) => {
      const bar = (v, m, cls) =>
        el(
          "span",
          { class: "bar-track" },
          v === null || v === undefined ? null : el("span", { class: "bar " + cls, style: { width: ((100 * Math.max(0, v)) / m).toFixed(1) + "%" } })
        );
      return el(
        "div",
        { class: "bar-row" + (j === 0 && this.excludeFirst ? " excluded" : "") },
        el("span", { class: "tok bar-label", title: j + ": " + t }, showToken(t)),
        bar(ro ? ro[j] : null, rm, "rollout"),
        el("span", { class: "bar-val" }, ro && ro[j] !== null ? fmt(ro[j]) : ""),
        bar(fl ? fl[j] : null, fm, "flow"),
        el("span", { class: "bar-val" }, fl && fl[j] !== null ? fmt(fl[j]) : flowState && j === 0 ? flowState : "")
      );
    });
    replaceChildren(
      this.bars,
      el("div", { class: "bar-row head" }, el("span", { class: "bar-label" }, "input token"), el("span", null, "rollout"), el("span"), el("span", null, "flow"), el("span")),
      ...rows
    );
  }

  figure() {
    const labelW = 120;
    const top = 50;
    const w = labelW * 2 + this.w + 20;
    const h = top + this.h + 10;
    const { canvas, ctx } = figureCanvas(w, h, `${this.app.state.tag} \u00b7 step ${this.app.step} \u00b7 flow into position ${this.position} \u00b7 heads fused by ${this.fusion}`);
    const x0 = labelW + 10;
    ctx.font = "10px sans-serif";
    const names = ["input"].concat(this.header.layers.map((l) => l.name));
    names.forEach((nm, l) => ctx.fillText(nm.slice(-14), x0 + 8 + l * this.colW - 20, 30));
    this.drawGraph(ctx, x0, top);
    ctx.fillStyle = "#222";
    ctx.font = Math.min(12, this.rh - 2) + "px sans-serif";
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    this.tokens.forEach((t, i) => ctx.fillText(showToken(t).slice(0, 20), x0 - 4, top + (i + 0.5) * this.rh));
    ctx.textAlign = "left";
    this.tokens.forEach((t, i) => ctx.fillText(showToken(t).slice(0, 20), x0 + this.w + 4, top + (i + 0.5) * this.rh));
    return canvas;
  }

  exports() {
    if (!this.layers) return {};
    const s = this.scores || {};
    return {
      suffix: "position" + this.position,
      png: () => this.figure(),
      json: () => ({
        position: this.position,
        head_fusion: this.fusion,
        exclude_first: this.excludeFirst,
        tokens: this.tokens,
        rollout: s.rollout || null,
        flow: s.flow || null,
      }),
      csv: () => {
        const out = ["index,token,rollout,flow"];
        this.tokens.forEach((t, j) => {
          const r = s.rollout && s.rollout.length === this.tokens.length ? s.rollout[j] : "";
          const f = s.flow && s.flow.length === this.tokens.length ? s.flow[j] : "";
          out.push([j, csvCell(t), r, f].join(","));
        });
        return out.join("\r\n") + "\r\n";
      },
    };
  }
}
