// Colour maps (256-entry lookup tables) and the categorical palette of heads.
// Key colours are matplotlib's (viridis is CC0; Blues/Oranges/RdBu are ColorBrewer).

import { el, sizeCanvas, fmt } from "./dom.js";

function hexToRgb(h) {
  const n = parseInt(h.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function makeLut(stops) {
  const rgb = stops.map(hexToRgb);
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (rgb.length - 1);
    const k = Math.min(rgb.length - 2, Math.floor(t));
    const f = t - k;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round(rgb[k][c] * (1 - f) + rgb[k + 1][c] * f);
  }
  return lut;
}

export const COLORMAPS = {
  blues: makeLut(["#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"]),
  viridis: makeLut([
    "#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c",
    "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725",
  ]),
  greys: makeLut(["#ffffff", "#000000"]),
  oranges: makeLut(["#fff5eb", "#fee6ce", "#fdd0a2", "#fdae6b", "#fd8d3c", "#f16913", "#d94801", "#a63603", "#7f2704"]),
  // Diverging: blue (negative) - white - red (positive).
  rdbu: makeLut(["#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b"]),
};

export const SEQUENTIAL = [
  ["blues", "Blues"],
  ["viridis", "Viridis"],
  ["greys", "Greys"],
];

/** [r, g, b] of value t in [0, 1] on `lut`. */
export function lutColor(lut, t) {
  const i = Math.max(0, Math.min(255, Math.round((Number.isFinite(t) ? t : 0) * 255))) * 3;
  return [lut[i], lut[i + 1], lut[i + 2]];
}

export function cssColor(rgb, alpha) {
  return alpha === undefined ? `rgb(${rgb[0]},${rgb[1]},${rgb[2]})` : `rgba(${rgb[0]},${rgb[1]},${rgb[2]},${alpha})`;
}

/** Text colour readable on background rgb. */
export function inkOn(rgb) {
  const l = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
  return l > 140 ? "#111" : "#fff";
}

const HEAD_PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a",
];

/** The colour of head `h` (stable across views). */
export function headColor(h) {
  if (h < HEAD_PALETTE.length) return HEAD_PALETTE[h];
  const hue = (h * 137.508) % 360;
  return `hsl(${hue.toFixed(0)}, 65%, 45%)`;
}

export function headRgb(h) {
  if (h < HEAD_PALETTE.length) return hexToRgb(HEAD_PALETTE[h]);
  const c = document.createElement("canvas").getContext("2d");
  c.fillStyle = headColor(h);
  return hexToRgb(c.fillStyle);
}

/**
 * A horizontal colour legend: gradient bar from `lo` to `hi` with tick labels
 * and a caption. `diverging` centres the ticks on zero.
 */
export function legend(lut, lo, hi, caption) {
  const w = 220;
  const h = 12;
  const canvas = el("canvas", { class: "legend-bar" });
  const ctx = sizeCanvas(canvas, w, h);
  for (let x = 0; x < w; x++) {
    ctx.fillStyle = cssColor(lutColor(lut, x / (w - 1)));
    ctx.fillRect(x, 0, 1, h);
  }
  const mid = (lo + hi) / 2;
  return el(
    "div",
    { class: "legend" },
    el("div", { class: "legend-caption" }, caption),
    canvas,
    el(
      "div",
      { class: "legend-ticks", style: { width: w + "px" } },
      el("span", null, fmt(lo)),
      el("span", null, fmt(mid)),
      el("span", null, fmt(hi))
    )
  );
}
