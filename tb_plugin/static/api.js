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
   * float32 little-endian `/layer?format=bin` route.
   */
  layer(run, tag, step, layer) {
    const key = "l|" + run + "|" + tag + "|" + step + "|" + layer;
    return this.layers.get(
      key,
      async () => {
        const r = await fetch(url("layer", { run, tag, step, layer, format: "bin" }), { credentials: "same-origin" });
        if (!r.ok) throw await errorOf(r, "layer");
        const shapeHeader = r.headers.get("X-Attention-Shape");
        const buf = await r.arrayBuffer();
        let data;
        if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) {
          data = new Float32Array(buf);
        } else {
          // Big-endian host: the route is little-endian.
          const view = new DataView(buf);
          data = new Float32Array(buf.byteLength / 4);
          for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(i * 4, true);
        }
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
