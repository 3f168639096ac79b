// Client of the plugin's HTTP routes (docs/plugin_api.md). Every URL is
// relative ("./layer?..."), resolved against the iframe's
// <base href="plugin/attention/">, so --path_prefix and /experiment/<eid>/ work.

export class ApiError extends Error {
  constructor(status, message, route) {
    super(message);
    this.status = status;
    this.route = route;
  }
}

function url(route, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null) q.set(k, String(v));
  }
  const qs = q.toString();
  return "./" + route + (qs ? "?" + qs : "");
}

async function errorOf(response, route) {
  let text = "";
  try {
    text = await response.text();
  } catch (e) {
    text = "";
  }
  let message = text.trim();
  try {
    const j = JSON.parse(text);
    if (j && typeof j === "object") message = j.error || j.message || j.detail || message;
    else if (typeof j === "string") message = j;
  } catch (e) {
    // plain text
  }
  if (!message) message = response.status + " " + response.statusText;
  return new ApiError(response.status, String(message), route);
}

async function getJSON(route, params, signal) {
  const r = await fetch(url(route, params), { signal, credentials: "same-origin" });
  if (!r.ok) throw await errorOf(r, route);
  return r.json();
}

/** A small LRU of promises keyed by string, bounded by an estimated byte size. */
class Cache {
  constructor(maxBytes) {
    this.maxBytes = maxBytes;
    this.bytes = 0;
    this.map = new Map();
  }
  get(key, make, sizeOf) {
    if (this.map.has(key)) {
      const entry = this.map.get(key);
      this.map.delete(key);
      this.map.set(key, entry);
      return entry.promise;
    }
    const entry = { promise: null, size: 0 };
    entry.promise = make().then(
      (value) => {
        entry.size = sizeOf ? sizeOf(value) : 1024;
        if (this.map.get(key) === entry) {
          this.bytes += entry.size;
          this.evict();
        }
        return value;
      },
      (err) => {
        if (this.map.get(key) === entry) this.map.delete(key);
        throw err;
      }
    );
    this.map.set(key, entry);
    return entry.promise;
  }
  evict() {
    for (const [key, entry] of this.map) {
      if (this.bytes <= this.maxBytes || this.map.size <= 1) break;
      this.map.delete(key);
      this.bytes -= entry.size;
    }
  }
  clear() {
    this.map.clear();
    this.bytes = 0;
  }
}

let HALF = null;
/** Little-endian IEEE float16 bytes -> Float32Array (one 64 Ki-entry table, built once). */
export function halfToFloat(buffer) {
  if (!HALF) {
    HALF = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 0x1f;
      const f = h & 0x3ff;
      HALF[h] = e === 0 ? s * f * 2 ** -24 : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * 2 ** (e - 15);
    }
  }
  const bytes = new Uint8Array(buffer);
  const out = new Float32Array(bytes.length >> 1);
  for (let i = 0, b = 0; i < out.length; i++, b += 2) out[i] = HALF[bytes[b] | (bytes[b + 1] << 8)];
  return out;
}

/** Little-endian float32 bytes -> Float32Array on any host. */
function littleFloat32(buf) {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) return new Float32Array(buf);
  const view = new DataView(buf);
  const data = new Float32Array(buf.byteLength / 4);
  for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(i * 4, true);
  return data;
}

export class Api {
  /** `earlyTags`: an optional fetch("./tags") promise started before the modules loaded. */
  constructor({ earlyTags } = {}) {
    this.layers = new Cache(256 * 1024 * 1024);
    this.json = new Cache(32 * 1024 * 1024);
    this.earlyTags = earlyTags || null;
  }

  /** Forgets cached answers that can change when TensorBoard reloads data. */
  invalidate() {
    this.json.clear();
  }

  async tags() {
    const early = this.earlyTags;
    this.earlyTags = null;
    if (early) {
      try {
        const r = await early;
        if (r.ok) return await r.json();
      } catch (e) {
        // fall through to a fresh request
      }
    }
    return getJSON("tags");
  }

  steps(run, tag) {
    return getJSON("steps", { run, tag });
  }

  header(run, tag, step) {
    // A step's header never changes once written.
    return this.json.get("h|" + run + "|" + tag + "|" + step, () => getJSON("header", { run, tag, step }));
  }

  /**
   * One layer's weights as {shape: [H, Q, K], data: Float32Array} from the
   * little-endian `/layer?format=bin&dtype=float16` route: half the bytes of
   * float32 and exact for the default float16 storage (a uint8-stored layer
   * moves by at most 2^-11 of a weight more).
   */
  layer(run, tag, step, layer) {
    const key = "l|" + run + "|" + tag + "|" + step + "|" + layer;
    return this.layers.get(
      key,
      async () => {
        const r = await fetch(url("layer", { run, tag, step, layer, format: "bin", dtype: "float16" }), { credentials: "same-origin" });
        if (!r.ok) throw await errorOf(r, "layer");
        const shapeHeader = r.headers.get("X-Attention-Shape");
        const buf = await r.arrayBuffer();
        const data = r.headers.get("X-Attention-Dtype") === "float16" ? halfToFloat(buf) : littleFloat32(buf);
        let shape = shapeHeader ? shapeHeader.split(",").map((s) => parseInt(s.trim(), 10)) : null;
        if (!shape || shape.length !== 3 || shape.some((n) => !(n >= 0))) {
          throw new ApiError(500, "layer answer has no valid X-Attention-Shape header", "layer");
        }
        if (shape[0] * shape[1] * shape[2] !== data.length) {
          throw new ApiError(500, "layer answer holds " + data.length + " floats, shape says " + shape.join("x"), "layer");
        }
        return { shape, data };
      },
      (v) => v.data.byteLength + 64
    );
  }

  /**
   * Per-head thumbnails of one layer pooled on the server (`/grid`, see
   * tb_plugin/thumbnails.py): {shape: [N, q, k], data: Uint8Array (255 = the
   * matrix max), maxima: [N], entropy: [N] (relative to uniform, null where
   * undefined; only with `entropy`, which costs the server more than the
   * pooling), source: [H, Q, K]}; N = H + 1 (the last: `agg` over heads).
   */
  grid(run, tag, step, layer, size, agg, entropy) {
    const key = ["g", run, tag, step, layer, size, agg, entropy ? 1 : 0].join("|");
    return this.layers.get(
      key,
      async () => {
        const r = await fetch(url("grid", { run, tag, step, layer, size, agg, entropy: entropy ? 1 : undefined }), { credentials: "same-origin" });
        if (!r.ok) throw await errorOf(r, "grid");
        const ints = (name) => (r.headers.get(name) || "").split(",").map((v) => parseInt(v, 10));
        const floats = (name) => (r.headers.get(name) || "").split(",").map((v) => (v === "nan" || v === "" ? null : parseFloat(v)));
        const shape = ints("X-Attention-Shape");
        const data = new Uint8Array(await r.arrayBuffer());
        if (shape.length !== 3 || shape[0] * shape[1] * shape[2] !== data.length) {
          throw new ApiError(500, "grid answer holds " + data.length + " bytes, shape says " + shape.join("x"), "grid");
        }
        return { shape, data, maxima: floats("X-Attention-Max"), entropy: floats("X-Attention-Entropy"), source: ints("X-Attention-Source-Shape") };
      },
      (v) => v.data.byteLength + 256
    );
  }

  /**
   * One matrix of a layer at full resolution, sent as float16 (half the
   * bytes; exact for the default storage): {shape: [1, Q, K], data: Float32Array}.
   * `head`: an index or "mean" / "max" over heads.
   */
  matrix(run, tag, step, layer, head) {
    const key = ["m", run, tag, step, layer, head].join("|");
    return this.layers.get(
      key,
      async () => {
        const r = await fetch(url("layer", { run, tag, step, layer, head, dtype: "float16", format: "bin" }), { credentials: "same-origin" });
        if (!r.ok) throw await errorOf(r, "layer");
        const shape = (r.headers.get("X-Attention-Shape") || "").split(",").map((v) => parseInt(v, 10));
        const data = halfToFloat(await r.arrayBuffer());
        if (shape.length !== 3 || shape[0] * shape[1] * shape[2] !== data.length) {
          throw new ApiError(500, "layer answer holds " + data.length + " values, shape says " + shape.join("x"), "layer");
        }
        return { shape, data };
      },
      (v) => v.data.byteLength + 64
    );
  }

  /** Every layer of a step, in header order. */
  async allLayers(run, tag, step, header) {
    return Promise.all(header.layers.map((_, i) => this.layer(run, tag, step, i)));
  }

  rollout(run, tag, step, headFusion, excludeFirst) {
    const key = ["r", run, tag, step, headFusion, excludeFirst ? 1 : 0].join("|");
    return this.json.get(key, () =>
      getJSON("rollout", { run, tag, step, head_fusion: headFusion, exclude_first: excludeFirst ? 1 : 0 })
    );
  }

  flow(run, tag, step, position, headFusion, excludeFirst) {
    const key = ["f", run, tag, step, position, headFusion, excludeFirst ? 1 : 0].join("|");
    return this.json.get(key, () =>
      getJSON("flow", { run, tag, step, position, head_fusion: headFusion, exclude_first: excludeFirst ? 1 : 0 })
    );
  }

  stats(run, tag) {
    return this.json.get("s|" + run + "|" + tag, () => getJSON("stats", { run, tag }));
  }
}
