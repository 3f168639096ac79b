// Compare two texts: a typed text (A) and its edited copy (B) side by side,
// and the per-token difference of attention B - A for the tokens that align.
// Alignment comes from the server (POST ./live with "compare": true):
// difflib.SequenceMatcher on the two token sequences, so a token pairs with
// the same token at its aligned position; inserted, deleted or replaced
// tokens have no partner and get no difference.

import { el, replaceChildren, select, labelled, fmt, fmtSigned, showToken, tooltip, hideTooltip, panelHead } from "../dom.js";
import { COLORMAPS, lutColor, cssColor, inkOn, legend } from "../colors.js";
import { headMatrix, headLabel, maxOf, absMaxOf, exact, MatrixView } from "../matrix.js";

function pairsFor(cmp, desc) {
  const pairs = cmp.alignment.pairs;
  const cols = pairs[desc.key] || [];
  const rows = desc.kind === "pooling" ? [[0, 0]] : pairs[desc.query] || [];
  return { rows, cols };
}

/** The [R x C] difference over aligned (query, key) pairs of one head of one layer. */
export function alignedDifference(layerA, layerB, head, rows, cols) {
  const ma = headMatrix(layerA, head);
  const mb = headMatrix(layerB, head);
  const Ka = layerA.shape[2];
  const Kb = layerB.shape[2];
  const m = new Float32Array(rows.length * cols.length);
  const va = new Float32Array(m.length);
  const vb = new Float32Array(m.length);
  rows.forEach(([qa, qb], r) => {
    cols.forEach(([ka, kb], c) => {
      const i = r * cols.length + c;
      va[i] = ma[qa * Ka + ka];
      vb[i] = mb[qb * Kb + kb];
      m[i] = vb[i] - va[i];
    });
  });
  return { m, va, vb };
}

function tokenStrip(tokens, weights, lut, vmax, cls, describe) {
  const strip = el("div", { class: "pool-text " + cls });
  tokens.forEach((t, j) => {
    const w = weights[j];
    const c = w === null ? [238, 238, 238] : lutColor(lut, vmax ? w / vmax : 0);
    const span = el("span", { class: "tok pool-tok cmp-tok" + (w === null ? " unaligned" : ""), style: { background: cssColor(c), color: inkOn(c) }, dataset: { index: j } }, showToken(t));
    span.addEventListener("mousemove", (e) => tooltip(describe(j), e.clientX, e.clientY));
    span.addEventListener("mouseleave", hideTooltip);
    strip.appendChild(span);
    strip.appendChild(document.createTextNode(" "));
  });
  return strip;
}

export class CompareView {
  constructor(app) {
    this.app = app;
    this.headSel = select([], null, (v) => {
      app.state.head = v === "mean" || v === "max" ? v : parseInt(v, 10);
      app.update();
    }, { "aria-label": "head", id: "cmp-head-select" });
    this.body = el("div", { class: "cmp-body", id: "cmp-body" });
    this.msg = el("div", { class: "status empty", id: "cmp-msg" });
    this.viewA = new MatrixView({ maxPx: 340 });
    this.viewB = new MatrixView({ maxPx: 340 });
    this.viewD = new MatrixView({ maxPx: 340 });
    this.node = el(
      "div",
      { class: "view compare" },
      el("div", { class: "panel" }, panelHead("Compare a text and its edited copy", labelled("Head", this.headSel), el("span", { class: "muted small" }, "tokens are aligned with difflib.SequenceMatcher on the two token sequences; only aligned tokens get a difference")), this.msg, this.body)
    );
    this.spec = null;
  }

  async update(gen) {
    const app = this.app;
    const cmp = app.live && app.live.compare;
    this.spec = null;
    if (!cmp) {
      replaceChildren(this.msg, "Type a text under \u201cYour text\u201d, press \u201cCompare with an edited copy\u201d, edit the copy and press it again: the two are shown here side by side with the difference of their attention.");
      this.msg.hidden = false;
      replaceChildren(this.body);
      return;
    }
    this.msg.hidden = true;
    const a = cmp.a;
    const b = cmp.b;
    const li = Math.min(app.state.layer, a.header.layers.length - 1);
    const desc = a.header.layers[li];
    const descB = b.header.layers[li];
    const LA = a.layers[li];
    const LB = b.layers[li];
    const H = LA.shape[0];
    let head = app.state.head;
    if (head !== "mean" && head !== "max" && !(head >= 0 && head < H)) head = "mean";
    const hopts = [["mean", "mean of heads"], ["max", "max over heads"]];
    for (let h = 0; h < H; h++) hopts.push([h, "head " + h]);
    replaceChildren(this.headSel);
    for (const [v, l] of hopts) this.headSel.appendChild(el("option", { value: String(v) }, l));
    this.headSel.value = String(head);
    const { rows, cols } = pairsFor(cmp, desc);
    const { m, va, vb } = alignedDifference(LA, LB, head, rows, cols);
    const lim = absMaxOf(m) || 1e-6;
    const change = el("div", { class: "cmp-change" }, `Layer ${desc.name} \u00b7 ${headLabel(head)} \u00b7 ${cols.length} of ${a.header.tokens[desc.key].length} / ${b.header.tokens[descB.key].length} key tokens aligned`);
    if (desc.kind === "pooling") {
      const ta = a.header.tokens[desc.key];
      const tb = b.header.tokens[descB.key];
      const wa = headMatrix(LA, head);
      const wb = headMatrix(LB, head);
      const vmax = app.state.scale === "unit" ? 1 : Math.max(maxOf(wa), maxOf(wb)) || 1;
      const diffB = tb.map(() => null);
      const partner = new Map(cols.map(([ka, kb]) => [kb, ka]));
      cols.forEach(([, kb], c) => (diffB[kb] = m[c]));
      const rdbu = COLORMAPS.rdbu;
      const diffStrip = el("div", { class: "pool-text cmp-diff", id: "cmp-diff" });
      tb.forEach((t, j) => {
        const d = diffB[j];
        const col = d === null ? [238, 238, 238] : lutColor(rdbu, 0.5 + d / (2 * lim));
        const span = el("span", { class: "tok pool-tok cmp-tok" + (d === null ? " unaligned" : " aligned"), style: { background: cssColor(col), color: inkOn(col) }, dataset: { index: j } }, showToken(t));
        span.addEventListener("mousemove", (e) =>
          tooltip(d === null ? [`${t}: no aligned token in the text (inserted or replaced)`] : [`${t}: ${fmtSigned(d)}`, `text: ${exact(wa[partner.get(j)])}   edited: ${exact(wb[j])}`], e.clientX, e.clientY)
        );
        span.addEventListener("mouseleave", hideTooltip);
        diffStrip.appendChild(span);
        diffStrip.appendChild(document.createTextNode(" "));
      });
      replaceChildren(
        this.body,
        change,
        el("div", { class: "cmp-label" }, "Text: prediction ", el("b", null, String(a.header.prediction))),
        tokenStrip(ta, Array.from(wa), app.lut, vmax, "cmp-a", (j) => [`${ta[j]}: ${exact(wa[j])}`]),
        el("div", { class: "cmp-label" }, "Edited copy: prediction ", el("b", null, String(b.header.prediction))),
        tokenStrip(tb, Array.from(wb), app.lut, vmax, "cmp-b", (j) => [`${tb[j]}: ${exact(wb[j])}`]),
        legend(app.lut, 0, vmax, "token weight"),
        el("div", { class: "cmp-label" }, "Difference (edited \u2212 text), aligned tokens; grey: no partner"),
        diffStrip,
        legend(rdbu, -lim, lim, "edited \u2212 text (blue: less attention in the copy, red: more)")
      );
      this.spec = null;
      return;
    }
    const specOf = (r, L, d, label) => {
      const [, Q, K] = L.shape;
      const mm = headMatrix(L, head);
      const vmax = app.state.scale === "unit" ? 1 : maxOf(mm) || 1;
      return {
        m: mm, Q, K, rowTokens: r.header.tokens[d.query], colTokens: r.header.tokens[d.key], lut: app.lut, vmin: 0, vmax,
        caption: "attention weight", title: `${label}: prediction ${r.header.prediction}`,
      };
    };
    this.viewA.set(specOf(a, LA, desc, "Text"));
    this.viewB.set(specOf(b, LB, descB, "Edited copy"));
    const rowTokens = rows.map(([, qb]) => b.header.tokens[descB.query][qb]);
    const colTokens = cols.map(([, kb]) => b.header.tokens[descB.key][kb]);
    this.spec = {
      m, Q: rows.length, K: cols.length, rowTokens, colTokens, lut: COLORMAPS.rdbu, vmin: -lim, vmax: lim,
      caption: "edited \u2212 text over aligned tokens (blue: less in the copy, red: more)",
      title: `Difference, ${rows.length}\u00d7${cols.length} aligned tokens`,
      describe: (i, j, v) => [
        `${rowTokens[i]} -> ${colTokens[j]}: ${fmtSigned(v)}`,
        `text: ${exact(va[i * cols.length + j])}   edited: ${exact(vb[i * cols.length + j])}`,
        `text query ${rows[i][0]} -> key ${cols[j][0]}; edited query ${rows[i][1]} -> key ${cols[j][1]}`,
      ],
    };
    if (rows.length && cols.length) this.viewD.set(this.spec);
    const diffPanel = rows.length && cols.length
      ? el("div", { class: "cmp-diff", id: "cmp-diff" }, this.viewD.node)
      : el("div", { class: "status empty" }, "No token of the edited copy aligns with the text.");
    replaceChildren(this.body, change, el("div", { class: "cmp-layout" }, this.viewA.node, this.viewB.node, diffPanel));
  }

  exports() {
    if (!this.spec) return {};
    const spec = this.spec;
    return {
      suffix: "compare",
      png: () => this.viewD.figure(),
      svg: () => this.viewD.svg(),
    };
  }
}
