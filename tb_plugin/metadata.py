"""The attention summary format. This module owns it; writers and readers import it.

One summary series ("tag") per probe example, e.g. ``attention/probe_003``.
Each step of a series is a *blob sequence* (a rank-1 string tensor):

* blob 0: a UTF-8 JSON header (see `make_header`), with the per-step facts:
  token strings, layer descriptions, label, prediction, probabilities;
* blob 1..L: one ``np.save`` of a float16 array ``[H, Q, K]`` per layer, in the
  order of ``header["layers"]``. Rows are queries ("attending from"), columns
  are keys ("attended to"). Padding is stripped: Q and K are the real lengths.
  Pooling attention is stored as ``[1, 1, K]``.

Only the first event's SummaryMetadata of a tag is kept by TensorBoard, so the
metadata content holds only the format version; everything that changes per
step lives in the header blob. Steps of a series must strictly increase.
"""

import json

from tensorboard.compat.proto import summary_pb2

PLUGIN_NAME = "attention"

# Bump when the header or blob layout changes incompatibly; readers refuse
# versions they do not know instead of drawing garbage.
FORMAT_VERSION = 1

# Layer kinds. "causal" is self-attention with a causal mask (upper triangle 0).
KINDS = ("self", "causal", "cross", "pooling")

TAG_PREFIX = "attention/"


def probe_tag(index):
    """The tag for the probe example number `index` (0-based)."""
    return "%sprobe_%03d" % (TAG_PREFIX, index)


def create_summary_metadata(display_name=None, description=None):
    """SummaryMetadata for an attention series.

    `data_class` must be BLOB_SEQUENCE: without it the Rust data server drops
    the series and the Python reader shows an empty tab.
    """
    content = json.dumps({"version": FORMAT_VERSION}).encode("utf-8")
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
                probabilities=None, class_names=None, extra=None):
    """Builds the JSON-able header (blob 0).

    Args:
      tokens: dict name -> list of token strings (e.g. {"input": [...]} or
        {"source": [...], "target": [...]}); padding excluded.
      layers: list of `make_layer` dicts, one per stored array.
      text: the raw input text, if any.
      label, prediction: class names (strings) or None.
      probabilities: list of floats over `class_names`, or None.
      extra: dict of further JSON-able fields (kept under "extra").
    """
    if isinstance(tokens, (list, tuple)):
        tokens = {"input": list(tokens)}
    header = {
        "version": FORMAT_VERSION,
        "tokens": {k: [str(t) for t in v] for k, v in tokens.items()},
        "layers": list(layers),
        "dtype": "float16",
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


def encode_array(array):
    """float16 .npy bytes of one layer's [H, Q, K] weights."""
    import io

    import numpy as np

    arr = np.asarray(array, dtype=np.float16)
    if arr.ndim != 3:
        raise ValueError("attention array must be [heads, queries, keys], got shape %s" % (arr.shape,))
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def decode_array(blob):
    """Inverse of `encode_array`; never unpickles."""
    import io

    import numpy as np

    try:
        arr = np.load(io.BytesIO(bytes(blob)), allow_pickle=False)
    except ValueError as e:
        raise ValueError("attention blob is not a .npy array: %s" % e)
    if arr.ndim != 3:
        raise ValueError("attention array must be 3-D [H, Q, K], got %s" % (arr.shape,))
    return arr
