// Head view: for one layer, the query tokens (left) and key tokens (right)
// joined by lines, one colour per head, line opacity by weight. Only the k
// strongest keys of each query are drawn (top-k pruning), so 512 tokens x 12
// heads stay at a few tens of thousands of canvas lines.

import { el, replaceChildren, labelled, sizeCanvas, tooltip, hideTooltip, showToken, figureCanvas, panelHead } from "../dom.js";
import { headColor, headRgb } from "../colors.js";
import { exact, csvCell } from "../matrix.js";

const topkCache = new WeakMap();

/**
 * Per head and query, the indices and weights of the k largest keys:
 * {idx: Int32Array[H*Q*k], w: Float32Array[H*Q*k], k} (missing = -1).
 */
export function topK(layer, k) {
  let per = topkCache.get(layer);
  if (!per) topkCache.set(layer, (per = new Map()));
  if (per.has(k)) return per.get(k);
  const [H, Q, K] = layer.shape;
  const kk = Math.min(k, K);
  const idx = new Int32Array(H * Q * kk).fill(-1);
  const w = new Float32Array(H * Q * kk);
  const d = layer.data;
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < Q; i++) {
      const base = (h * Q + i) * K;
      const o = (h * Q + i) * kk;
      let n = 0;
      for (let j = 0; j < K; j++) {
        const v = d[base + j];
        if (n < kk) {
          // insertion into the sorted (descending) prefix
          let p = n++;
          while (p > 0 && w[o + p - 1] < v) {
            w[o + p] = w[o + p - 1];
            idx[o + p] = idx[o + p - 1];
            p--;
          }
          w[o + p] = v;
          idx[o + p] = j;
        } else if (v > w[o + kk - 1]) {
          let p = kk - 1;
          while (p > 0 && w[o + p - 1] < v) {
            w[o + p] = w[o + p - 1];
            idx[o + p] = idx[o + p - 1];
            p--;
          }
          w[o + p] = v;
          idx[o + p] = j;
        }
      }
    }
  }
  const res = { idx, w, k: kk };
  per.set(k, res);
  return res;
}

export class HeadView {
  constructor(app) {
    this.app = app;
    this.k = 5;
    this.active = null; // Set of active heads
    this.hover = null; // {side: "q"|"k", index}
    this.kInput = el("input", {
      type: "number",
      min: 1,
      max: 512,
      value: this.k,
      class: "num",
      id: "topk-input",
      "aria-label": "top-k keys per query",
      onchange: () => {
        const v = parseInt(this.kInput.value, 10);
        if (v >= 1) {
          this.k = v;
          this.draw();
        }
      },
    });
    this.chips = el("div", { class: "chips", id: "head-chips" });
    this.left = el("div", { class: "hv-col left" });
    this.right = el("div", { class: "hv-col right" });
    this.canvas = el("canvas", { class: "hv-canvas", id: "headview-canvas" });
    this.info = el("div", { class: "muted small" });
    this.node = el(
      "div",
      { class: "view headview" },
      el(
        "div",
        { class: "panel" },
        panelHead(
          el("span", { class: "panel-title", id: "hv-title" }, "Head view"),
          labelled("Top-k keys per query", this.kInput, "Keep only the k strongest keys of each query"),
          el("span", { class: "ctl-label" }, "Heads"),
          this.chips,
          el("button", { class: "btn small", onclick: () => this.setAll(true) }, "all"),
          el("button", { class: "btn small", onclick: () => this.setAll(false) }, "none")
        ),
        el(
          "div",
          { class: "muted small" },
          "Left: queries (attending from). Right: keys (attended to). Click a head to toggle it, double-click to solo it. " +
            "Hover a token to keep only its lines. Line opacity \u221d weight (strongest = opaque)."
        ),
        this.info,
        el("div", { class: "hv-body" }, this.left, this.canvas, this.right)
      )
    );
  }

  setAll(on) {
    if (!this.layer) return;
    const H = this.layer.shape[0];
    this.active = new Set(on ? Array.from({ length: H }, (_, h) => h) : []);
    this.fillChips();
    this.draw();
  }

  fillChips() {
    const H = this.layer.shape[0];
    const chips = [];
    for (let h = 0; h < H; h++) {
      const on = this.active.has(h);
      const chip = el(
        "button",
        {
          class: "chip" + (on ? " on" : ""),
          style: on ? { background: headColor(h), borderColor: headColor(h) } : { borderColor: headColor(h), color: headColor(h) },
          dataset: { head: h },
          title: "click: toggle head " + h + "; double-click: solo",
        },
        String(h)
      );
      let timer = null;
      chip.addEventListener("click", () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          if (this.active.has(h)) this.active.delete(h);
          else this.active.add(h);
          this.fillChips();
          this.draw();
        }, 220);
      });
      chip.addEventListener("dblclick", () => {
        clearTimeout(timer);
        this.active = new Set([h]);
        this.fillChips();
        this.draw();
      });
      chips.push(chip);
    }
    replaceChildren(this.chips, ...chips);
  }

  async update(gen) {
    const app = this.app;
    const header = app.header;
    const li = app.state.layer;
    const layer = await app.layerData(li);
    if (!app.isCurrent(gen)) return;
    const desc = header.layers[li];
    const [H, Q, K] = layer.shape;
    const sameShape = this.layer && this.layer.shape[0] === H && this.layerIdx === li;
    this.layer = layer;
    this.layerIdx = li;
    this.desc = desc;
    if (!sameShape || !this.active) this.active = new Set(Array.from({ length: H }, (_, h) => h));
    this.fillChips();
    this.qTokens = desc.kind === "pooling" ? ["[pooled]"] : header.tokens[desc.query];
    this.kTokens = header.tokens[desc.key];
    replaceChildren(
      this.node.querySelector("#hv-title"),
      `${desc.name} (${desc.kind}) \u00b7 step ${app.step}`
    );
    const n = Math.max(Q, K);
    this.rh = n > 256 ? 12 : n > 64 ? 14 : 20;
    const height = n * this.rh;
    this.width = 340;
    this.qOffset = ((n - Q) * this.rh) / 2;
    this.kOffset = ((n - K) * this.rh) / 2;
    this.hover = null;
    this.left.style.height = this.right.style.height = height + "px";
    const mk = (tokens, side, offset) =>
      tokens.map((t, i) => {
        const d = el(
          "div",
          {
            class: "tok hv-tok",
            title: i + ": " + t,
            style: { top: offset + i * this.rh + "px", height: this.rh + "px", lineHeight: this.rh + "px", fontSize: Math.min(13, this.rh - 2) + "px" },
            dataset: { side, index: i },
          },
          showToken(t)
        );
        d.addEventListener("mouseenter", (e) => {
          this.hover = { side, index: i };
          this.draw();
        });
        d.addEventListener("mouseleave", () => {
          this.hover = null;
          hideTooltip();
          this.draw();
        });
        return d;
      });
    this.qNodes = mk(this.qTokens, "q", this.qOffset);
    this.kNodes = mk(this.kTokens, "k", this.kOffset);
    replaceChildren(this.left, ...this.qNodes);
    replaceChildren(this.right, ...this.kNodes);
    this.height = height;
    this.draw();
  }

  /** Draws the lines into ctx at x0..x0+width, rows offset by y0. Returns the number of lines. */
  drawLines(ctx, x0, y0) {
    const layer = this.layer;
    const [H, Q, K] = layer.shape;
    const { idx, w, k } = topK(layer, this.k);
    let vmax = 0;
    for (let i = 0; i < w.length; i++) if (w[i] > vmax) vmax = w[i];
    vmax = vmax || 1;
    const rh = this.rh;
    const x1 = x0 + this.width;
    const hv = this.hover;
    const BUCKETS = 12;
    let lines = 0;
    // 1 px lines take the rasteriser's hairline path: ~8x faster than 1.5 px without a GPU.
    ctx.lineWidth = 1;
    for (const h of Array.from(this.active).sort((a, b) => a - b)) {
      if (h >= H) continue;
      const rgb = headRgb(h);
      const paths = Array.from({ length: BUCKETS }, () => new Path2D());
      const used = new Array(BUCKETS).fill(false);
      for (let i = 0; i < Q; i++) {
        if (hv && hv.side === "q" && hv.index !== i) continue;
        const yq = y0 + this.qOffset + (i + 0.5) * rh;
        const o = (h * Q + i) * k;
        for (let r = 0; r < k; r++) {
          const j = idx[o + r];
          if (j < 0) continue;
          if (hv && hv.side === "k" && hv.index !== j) continue;
          const t = w[o + r] / vmax;
          if (t <= 0.004) continue;
          const b = Math.min(BUCKETS - 1, Math.floor(t * BUCKETS));
          const yk = y0 + this.kOffset + (j + 0.5) * rh;
          paths[b].moveTo(x0, yq);
          paths[b].lineTo(x1, yk);
          used[b] = true;
          lines++;
        }
      }
      for (let b = 0; b < BUCKETS; b++) {
        if (!used[b]) continue;
        ctx.strokeStyle = `rgba(${rgb[0]},${rgb[1]},${rgb[2]},${Math.min(1, (b + 1) / BUCKETS) * 0.9})`;
        ctx.stroke(paths[b]);
      }
    }
    return lines;
  }

  draw() {
    if (!this.layer) return;
    const ctx = sizeCanvas(this.canvas, this.width, this.height);
    ctx.clearRect(0, 0, this.width, this.height);
    const lines = this.drawLines(ctx, 0, 0);
    const [H, Q, K] = this.layer.shape;
    replaceChildren(
      this.info,
      `${H} heads \u00d7 ${Q} queries \u00d7 ${K} keys; ${lines} lines drawn (top ${Math.min(this.k, K)} keys per query and head).`
    );
    // Partner highlighting for the hovered token.
    for (const nd of this.qNodes.concat(this.kNodes)) {
      nd.style.background = "";
      nd.classList.remove("hot");
    }
    const hv = this.hover;
    if (!hv) return;
    const d = this.layer.data;
    const active = Array.from(this.active);
    const partners = hv.side === "q" ? this.kNodes : this.qNodes;
    (hv.side === "q" ? this.qNodes : this.kNodes)[hv.index].classList.add("hot");
    let best = new Float32Array(partners.length);
    for (const h of active) {
      for (let p = 0; p < partners.length; p++) {
        const v = hv.side === "q" ? d[(h * Q + hv.index) * K + p] : d[(h * Q + p) * K + hv.index];
        if (v > best[p]) best[p] = v;
      }
    }
    let m = 0;
    for (const v of best) if (v > m) m = v;
    m = m || 1;
    for (let p = 0; p < partners.length; p++) {
      if (best[p] > 0) partners[p].style.background = `rgba(255, 140, 0, ${((best[p] / m) * 0.6).toFixed(3)})`;
    }
    const node = (hv.side === "q" ? this.qNodes : this.kNodes)[hv.index];
    const r = node.getBoundingClientRect();
    const tok = hv.side === "q" ? this.qTokens[hv.index] : this.kTokens[hv.index];
    const tip = [hv.side === "q" ? `query ${hv.index}: ${tok}` : `key ${hv.index}: ${tok}`];
    // Strongest partners per active head.
    for (const h of active.sort((a, b) => a - b).slice(0, 12)) {
      let bj = -1;
      let bv = -1;
      for (let p = 0; p < partners.length; p++) {
        const v = hv.side === "q" ? d[(h * Q + hv.index) * K + p] : d[(h * Q + p) * K + hv.index];
        if (v > bv) {
          bv = v;
          bj = p;
        }
      }
      const other = hv.side === "q" ? this.kTokens[bj] : this.qTokens[bj];
      tip.push(hv.side === "q" ? `head ${h}: ${tok} -> ${other}: ${exact(bv)}` : `head ${h}: ${other} -> ${tok}: ${exact(bv)}`);
    }
    // Beside the key column, level with the hovered token, so it hides no line or label.
    const right = this.right.getBoundingClientRect().right;
    tooltip(tip, right + 4, r.top - 14);
  }

  figure() {
    const pad = 10;
    const labelW = 140;
    const top = 40;
    const w = labelW * 2 + this.width + pad * 4;
    const h = top + this.height + pad;
    const { canvas, ctx } = figureCanvas(w, h, `${this.desc.name} \u00b7 step ${this.app.step} \u00b7 heads ${Array.from(this.active).sort((a, b) => a - b).join(",")} \u00b7 top-${this.k}`, pad);
    ctx.font = "11px sans-serif";
    ctx.fillStyle = "#555";
    ctx.fillText("queries (attending from)", pad, 24);
    ctx.textAlign = "right";
    ctx.fillText("keys (attended to)", w - pad, 24);
    const x0 = pad + labelW + pad;
    this.drawLines(ctx, x0, top);
    ctx.fillStyle = "#222";
    ctx.font = Math.min(12, this.rh - 2) + "px sans-serif";
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    this.qTokens.forEach((t, i) => ctx.fillText(showToken(t).slice(0, 24), x0 - 4, top + this.qOffset + (i + 0.5) * this.rh));
    ctx.textAlign = "left";
    this.kTokens.forEach((t, j) => ctx.fillText(showToken(t).slice(0, 24), x0 + this.width + 4, top + this.kOffset + (j + 0.5) * this.rh));
    return canvas;
  }

  exports() {
    if (!this.layer) return {};
    const [H, Q, K] = this.layer.shape;
    const d = this.layer.data;
    return {
      suffix: this.desc.name,
      png: () => this.figure(),
      json: () => {
        const data = [];
        for (let h = 0; h < H; h++) {
          const rows = [];
          for (let i = 0; i < Q; i++) rows.push(Array.from(d.subarray((h * Q + i) * K, (h * Q + i + 1) * K)));
          data.push(rows);
        }
        return { layer: this.desc.name, kind: this.desc.kind, shape: [H, Q, K], query_tokens: this.qTokens, key_tokens: this.kTokens, data };
      },
      csv: () => {
        const out = ["head,query_index,query,key_index,key,weight"];
        for (let h = 0; h < H; h++)
          for (let i = 0; i < Q; i++)
            for (let j = 0; j < K; j++)
              out.push([h, i, csvCell(this.qTokens[i]), j, csvCell(this.kTokens[j]), d[(h * Q + i) * K + j]].join(","));
        return out.join("\r\n") + "\r\n";
      },
    };
  }
}

