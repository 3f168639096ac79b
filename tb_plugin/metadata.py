"""The attention summary format. This module owns it; writers and readers import it.

One summary series ("tag") per probe example, e.g. ``attention/probe_003``.
Each step of a series is a *blob sequence* (a rank-1 string tensor):

* blob 0: a UTF-8 JSON header (see `make_header`), with the per-step facts:
  token strings, layer descriptions, label, prediction, probabilities;
* blob 1..L: one array ``[H, Q, K]`` per layer, in the order of
  ``header["layers"]``. Rows are queries ("attending from"), columns are keys
  ("attended to"). Padding is stripped: Q and K are the real lengths. Pooling
  attention is stored as ``[1, 1, K]``. Two storages (``STORAGES``):

  - ``float16`` (the default; format version 1, unchanged since the first
    release, so older plugins read it): an ``np.save`` of a float16 array.
  - ``uint8`` (format version 2; compact, <= 1 byte per weight): a ``.npz``
    (zip, deflate level 1) holding ``q`` uint8 ``[H, Q, K]``, ``lo`` and
    ``step`` float32 ``[H]``; weight = ``lo[h] + q * step[h]``. Each head's
    matrix is quantised on its own range ``[min(0, min), max]`` with 255
    steps, so a dequantised weight is within ``step / 2 <= max / 510`` of the
    float16 one (the heatmap, drawn on ``0 .. max`` with 256 colours, moves by
    at most one colour). Deflate makes it ~0.1-0.6 bytes per weight on
    softmax attention (mostly near-zero weights); 1.0 + a few hundred bytes
    per layer in the worst case (uniform noise).

  Both are self-describing (``.npy`` magic ``\x93NUMPY``, ``.npz`` magic
  ``PK``): `decode_array` reads either without the header.

Only the first event's SummaryMetadata of a tag is kept by TensorBoard, so the
metadata content holds only the format version; everything that changes per
step lives in the header blob. Steps of a series must strictly increase.
"""

import json

from tensorboard.compat.proto import summary_pb2

PLUGIN_NAME = "attention"

# Bump when the header or blob layout changes incompatibly; readers refuse
# versions they do not know instead of drawing garbage. Version 1: float16
# blobs. Version 2: adds the uint8 storage (header "dtype": "uint8", metadata
# {"version": 2, "storage": "uint8"}). A writer stamps the *lowest* version
# that describes its data, so float16 logs stay readable by version-1 plugins.
FORMAT_VERSION = 2

# Storage of the layer blobs -> the format version that introduced it.
STORAGES = {"float16": 1, "uint8": 2}
DEFAULT_STORAGE = "float16"

# Layer kinds. "causal" is self-attention with a causal mask (upper triangle 0).
KINDS = ("self", "causal", "cross", "pooling")

TAG_PREFIX = "attention/"


def probe_tag(index):
    """The tag for the probe example number `index` (0-based)."""
    return "%sprobe_%03d" % (TAG_PREFIX, index)


def check_storage(storage):
    """Returns `storage` if known; raises ValueError naming the choices."""
    if storage not in STORAGES:
        raise ValueError(
            "unknown attention storage %r; expected one of %s" % (storage, ", ".join(STORAGES))
        )
    return storage


def create_summary_metadata(display_name=None, description=None, storage=DEFAULT_STORAGE):
    """SummaryMetadata for an attention series.

    `data_class` must be BLOB_SEQUENCE: without it the Rust data server drops
    the series and the Python reader shows an empty tab. The content is
    ``{"version": 1}`` for float16 and ``{"version": 2, "storage": "uint8"}``
    for the compact storage.
    """
    check_storage(storage)
    info = {"version": STORAGES[storage]}
    if storage != DEFAULT_STORAGE:
        info["storage"] = storage
    content = json.dumps(info).encode("utf-8")
    return summary_pb2.SummaryMetadata(
        display_name=display_name or "",
        summary_description=description or "",
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=PLUGIN_NAME, content=content
        ),
        data_class=summary_pb2.DATA_CLASS_BLOB_SEQUENCE,
    )


def parse_plugin_metadata(content):
    """Returns the metadata dict of a series; raises ValueError if unreadable."""
    if not isinstance(content, (bytes, bytearray)):
        raise TypeError("content must be bytes, got %r" % type(content))
    if not content:
        return {"version": FORMAT_VERSION}
    try:
        result = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError("attention plugin metadata is not JSON: %s" % e)
    if result.get("version", 0) > FORMAT_VERSION:
        raise ValueError(
            "attention summary format version %s is newer than this plugin "
            "understands (%d): upgrade attn-tf" % (result.get("version"), FORMAT_VERSION)
        )
    if result.get("storage", DEFAULT_STORAGE) not in STORAGES:
        raise ValueError(
            "attention storage %r is unknown to this plugin (%s): upgrade attn-tf"
            % (result.get("storage"), ", ".join(STORAGES))
        )
    return result


def make_layer(name, kind, shape, query="input", key="input"):
    """Describes one layer's attention matrix in the header.

    Args:
      name: display name, e.g. "encoder/block_0".
      kind: one of KINDS.
      shape: [H, Q, K] of the stored array.
      query, key: names of the token sequences (keys of header["tokens"])
        labelling the rows and the columns. For pooling, `query` is None.
    """
    if kind not in KINDS:
        raise ValueError("unknown attention kind %r; expected one of %s" % (kind, KINDS))
    if len(shape) != 3:
        raise ValueError("layer shape must be [heads, queries, keys], got %r" % (shape,))
    return {
        "name": str(name),
        "kind": kind,
        "shape": [int(s) for s in shape],
        "query": query,
        "key": key,
    }


def make_header(tokens, layers, *, text=None, label=None, prediction=None,
                probabilities=None, class_names=None, extra=None, storage=DEFAULT_STORAGE):
    """Builds the JSON-able header (blob 0).

    Args:
      tokens: dict name -> list of token strings (e.g. {"input": [...]} or
        {"source": [...], "target": [...]}); padding excluded.
      layers: list of `make_layer` dicts, one per stored array.
      text: the raw input text, if any.
      label, prediction: class names (strings) or None.
      probabilities: list of floats over `class_names`, or None.
      extra: dict of further JSON-able fields (kept under "extra").
      storage: how the layer blobs are stored, one of STORAGES ("float16",
        the default, or the compact "uint8"); recorded as header["dtype"].
    """
    check_storage(storage)
    if isinstance(tokens, (list, tuple)):
        tokens = {"input": list(tokens)}
    header = {
        "version": STORAGES[storage],
        "tokens": {k: [str(t) for t in v] for k, v in tokens.items()},
        "layers": list(layers),
        "dtype": storage,
        "text": text,
        "label": label,
        "prediction": prediction,
        "probabilities": None if probabilities is None else [float(p) for p in probabilities],
        "class_names": None if class_names is None else [str(c) for c in class_names],
    }
    if extra:
        header["extra"] = extra
    validate_header(header)
    return header


def validate_header(header):
    """Checks the header is self-consistent; raises ValueError naming the problem."""
    if header.get("version", 0) > FORMAT_VERSION:
        raise ValueError("header version %r is newer than %d" % (header.get("version"), FORMAT_VERSION))
    dtype = header.get("dtype", DEFAULT_STORAGE)
    if dtype not in STORAGES:
        raise ValueError("header['dtype'] %r is not one of %s" % (dtype, ", ".join(STORAGES)))
    tokens = header.get("tokens")
    if not isinstance(tokens, dict):
        raise ValueError("header['tokens'] must be a dict of token lists")
    for layer in header.get("layers", []):
        h, q, k = layer["shape"]
        if layer["key"] not in tokens:
            raise ValueError("layer %r: key tokens %r not in header['tokens']" % (layer["name"], layer["key"]))
        if len(tokens[layer["key"]]) != k:
            raise ValueError("layer %r: %d key tokens but K=%d" % (layer["name"], len(tokens[layer["key"]]), k))
        if layer["kind"] == "pooling":
            if q != 1:
                raise ValueError("pooling layer %r must have Q=1" % layer["name"])
        else:
            if layer["query"] not in tokens:
                raise ValueError("layer %r: query tokens %r not in header['tokens']" % (layer["name"], layer["query"]))
            if len(tokens[layer["query"]]) != q:
                raise ValueError("layer %r: %d query tokens but Q=%d" % (layer["name"], len(tokens[layer["query"]]), q))


def encode_header(header):
    return json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_header(blob):
    """Parses blob 0; raises ValueError with the reason if it is not a header."""
    try:
        header = json.loads(bytes(blob).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError("attention header blob is not UTF-8 JSON: %s" % e)
    if not isinstance(header, dict):
        raise ValueError("attention header blob is not a JSON object")
    validate_header(header)
    return header


def encode_array(array, storage=DEFAULT_STORAGE):
    """The blob of one layer's [H, Q, K] weights in `storage` (see module doc)."""
    import io

    import numpy as np

    check_storage(storage)
    arr = np.asarray(array)
    if arr.ndim != 3:
        raise ValueError("attention array must be [heads, queries, keys], got shape %s" % (arr.shape,))
    buf = io.BytesIO()
    if storage == "float16":
        np.save(buf, np.ascontiguousarray(arr, dtype=np.float16), allow_pickle=False)
        return buf.getvalue()
    q, lo, step = quantise_uint8(arr)
    import zipfile

    # np.savez_compressed would use deflate level 6: ~6x slower to write for
    # ~10% smaller files. np.load reads this zip as an ordinary .npz.
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, value in (("q", q), ("lo", lo), ("step", step)):
            part = io.BytesIO()
            np.save(part, value, allow_pickle=False)
            z.writestr(name + ".npy", part.getvalue())
    return buf.getvalue()


def quantise_uint8(array):
    """Per-head 8-bit quantisation: -> (q uint8 [H,Q,K], lo float32 [H], step float32 [H]).

    Head h is mapped from ``[lo, hi] = [min(0, min_h), max_h]`` (of its own
    matrix, after the float16 rounding the default storage applies) onto
    0..255; ``lo + q * step`` is within ``step / 2`` of the input.
    """
    import numpy as np

    a = np.asarray(array, dtype=np.float16).astype(np.float32)
    if not np.isfinite(a).all():
        raise ValueError("uint8 attention storage needs finite weights (use the float16 storage)")
    h = a.shape[0]
    if a.size == 0:
        return a.astype(np.uint8), np.zeros(h, np.float32), np.zeros(h, np.float32)
    flat = a.reshape(h, -1)
    lo = np.minimum(flat.min(axis=1), 0.0).astype(np.float32)
    hi = flat.max(axis=1).astype(np.float32)
    step = ((hi - lo) / 255.0).astype(np.float32)
    safe = np.where(step > 0, step, 1.0).astype(np.float32)
    q = np.rint((a - lo[:, None, None]) / safe[:, None, None])
    return np.clip(q, 0, 255).astype(np.uint8), lo, step


def _dequantise(q, lo, step):
    import numpy as np

    if q.ndim != 3 or q.dtype != np.uint8 or lo.shape != (q.shape[0],) or step.shape != (q.shape[0],):
        raise ValueError("uint8 attention blob has inconsistent parts: q %s %s, lo %s, step %s"
                         % (q.dtype, q.shape, lo.shape, step.shape))
    return (lo[:, None, None].astype(np.float32) + q.astype(np.float32) * step[:, None, None].astype(np.float32))


def decode_array(blob):
    """Inverse of `encode_array` for either storage: float16 or float32 [H, Q, K].

    float16 blobs come back as stored (float16); uint8 blobs dequantised to
    float32. Never unpickles.
    """
    import io
    import zipfile

    import numpy as np

    data = bytes(blob)
    try:
        if data[:4] == b"PK\x03\x04":
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                missing = {"q.npy", "lo.npy", "step.npy"} - set(z.zip.namelist())
                if missing:
                    raise ValueError("uint8 attention blob lacks %s" % ", ".join(sorted(missing)))
                arr = _dequantise(z["q"], z["lo"], z["step"])
        else:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise ValueError("attention blob is not a .npy/.npz array: %s" % e)
    if arr.ndim != 3:
        raise ValueError("attention array must be 3-D [H, Q, K], got %s" % (arr.shape,))
    return arr
