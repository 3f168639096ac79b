// DOM helpers. Token strings are user data: they only ever reach the page
// through text nodes (createTextNode / textContent) or canvas fillText; this
// module has no innerHTML and neither should any other.

/**
 * Creates an element. `attrs` keys: `class`, `style` (object), `on<event>`
 * (listener), `dataset` (object), anything else via setAttribute or property.
 * Children: strings/numbers become text nodes; null/false are skipped.
 */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "style") Object.assign(node.style, value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else if (key === "value" || key === "checked" || key === "disabled" || key === "selected") {
        node[key] = value;
      } else node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

/** Removes every child of `node` and appends `children`. */
export function replaceChildren(node, ...children) {
  while (node.firstChild) node.removeChild(node.firstChild);
  append(node, children);
  return node;
}

/** A <select> with `options` = [[value, label], ...] (labels set as text). */
export function select(options, value, onchange, attrs = {}) {
  const s = el("select", attrs);
  setOptions(s, options, value);
  if (onchange) s.addEventListener("change", () => onchange(s.value));
  return s;
}

export function setOptions(selectEl, options, value) {
  replaceChildren(selectEl);
  for (const [v, label] of options) {
    const o = document.createElement("option");
    o.value = String(v);
    o.textContent = String(label);
    selectEl.appendChild(o);
  }
  if (value !== undefined && value !== null) selectEl.value = String(value);
}

/** A labelled control: <label><span>text</span>control</label>. */
export function labelled(text, control, title) {
  return el("label", { class: "ctl", title }, el("span", { class: "ctl-label" }, text), control);
}

/** Sizes a canvas for CSS pixels (w, h) at the device pixel ratio; returns its 2D context. */
export function sizeCanvas(canvas, w, h) {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(w * dpr));
  canvas.height = Math.max(1, Math.round(h * dpr));
  canvas.style.width = w + "px";
  canvas.style.height = h + "px";
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

/** Formats an attention weight: 4 significant decimals, small numbers in exponent form. */
export function fmt(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return "n/a";
  const a = Math.abs(x);
  if (a !== 0 && a < 1e-3) return x.toExponential(2);
  return x.toFixed(4);
}

/** A signed difference. */
export function fmtSigned(x) {
  return (x > 0 ? "+" : x < 0 ? "\u2212" : "\u00b1") + fmt(Math.abs(x));
}

/** Shows a token visibly: whitespace-only tokens are drawn as a middle dot. */
export function showToken(t) {
  if (t === "") return "\u2205";
  if (/^\s+$/.test(t)) return "\u00b7".repeat(Math.min(t.length, 3));
  return t;
}

/** One floating tooltip per document, text only. */
let tipNode = null;
export function tooltip(lines, clientX, clientY) {
  if (!tipNode) {
    tipNode = el("div", { class: "tooltip", role: "tooltip" });
    document.body.appendChild(tipNode);
  }
  if (!lines) {
    tipNode.style.display = "none";
    return;
  }
  replaceChildren(tipNode, ...[].concat(lines).map((l) => el("div", null, l)));
  tipNode.style.display = "block";
  const pad = 14;
  const r = tipNode.getBoundingClientRect();
  let x = clientX + pad;
  let y = clientY + pad;
  if (x + r.width > window.innerWidth - 4) x = Math.max(4, clientX - pad - r.width);
  if (y + r.height > window.innerHeight - 4) y = Math.max(4, clientY - pad - r.height);
  tipNode.style.left = x + "px";
  tipNode.style.top = y + "px";
}

export function hideTooltip() {
  tooltip(null);
}

/** Saves a Blob through a temporary download link (CSP allows blob: URLs). */
export function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: filename, class: "hidden-link" }, filename);
  document.body.appendChild(a);
  a.click();
  setTimeout(() => {
    a.remove();
    URL.revokeObjectURL(url);
  }, 10000);
}

/** A file-name-safe slug. */
export function slug(s) {
  return String(s).replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 80) || "x";
}

/** requestAnimationFrame as a promise. */
export function nextFrame() {
  return new Promise((resolve) => requestAnimationFrame(() => resolve()));
}

/**
 * A white figure canvas of w x h CSS pixels drawn at 2x (crisp when the PNG is
 * zoomed), with `title` in bold at (x, y). Returns {canvas, ctx}; ctx is left
 * scaled, with the title's fill colour, font and top baseline, which the
 * figure exporters of every view build on.
 */
export function figureCanvas(w, h, title, x = 8, y = 8) {
  const canvas = document.createElement("canvas");
  canvas.width = w * 2;
  canvas.height = h * 2;
  const ctx = canvas.getContext("2d");
  ctx.scale(2, 2);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  ctx.fillStyle = "#222";
  ctx.font = "bold 13px sans-serif";
  ctx.textBaseline = "top";
  ctx.fillText(title || "", x, y);
  return { canvas, ctx };
}

/**
 * The head row of a view's panel: its title (a string, or a node when it needs
 * an id) followed by the panel's controls.
 */
export function panelHead(title, ...controls) {
  const titleNode = typeof title === "string" ? el("span", { class: "panel-title" }, title) : title;
  return el("div", { class: "panel-head" }, titleNode, ...controls);
}
