"""The server side of TensorBoard's "Attention" tab.

Reads attention summaries (format: `tb_plugin.metadata`) only through
`context.data_provider`, so it works with the Python event reader and with the
Rust data server (where `context.multiplexer` is None). The HTTP routes are
specified in docs/plugin_api.md; the frontend in `tb_plugin/static/` is an
iframe ES module served from `/index.js`.
"""

import collections
import concurrent.futures
import json
import re
import threading
import time

import numpy as np
from werkzeug import wrappers

from tensorboard import errors
from tensorboard import plugin_util
from tensorboard.backend import http_util
from tensorboard.data import provider
from tensorboard.plugins import base_plugin
from tensorboard.util import tb_logging

from tb_plugin import flows
from tb_plugin import live
from tb_plugin import metadata
from tb_plugin import static_files
from tb_plugin import stats as stats_lib
from tb_plugin import thumbnails

logger = tb_logging.get_logger()

# Samples per series read when `--samples_per_plugin` does not name the plugin;
# the same default as both readers' retention of blob sequences.
DEFAULT_DOWNSAMPLING = 10
# `--samples_per_plugin=attention=0` means "keep all"; the providers want a
# number, so ask for more than any series holds.
_ALL_SAMPLES = 2**31 - 1

SAMPLING_HINT = (
    "TensorBoard keeps only %d sampled steps of each attention series. Start it with "
    "--samples_per_plugin=attention=0 to see every step."
)

_BOOLEANS = {"0": False, "1": True, "false": False, "true": True}
# Any number of digits: a value beyond int64 gets "must be in [...]" (out of
# range), not "must be an integer" (issue 10); int() of 4300+ digits raises, hence the cap.
_INTEGER = re.compile(r"^[+-]?[0-9]{1,4000}$")
_LAYER_FORMATS = ("bin", "json")
# `/layer?dtype=` of the binary answer: float16 halves the transfer and is
# what the default storage holds anyway (exact for it).
_LAYER_DTYPES = {"float32": "<f4", "float16": "<f2"}
_HEAD_AGGREGATES = ("mean", "max")
# Reuse a series listing this many seconds for /header, /layer, /rollout and
# /flow (a step missing from it triggers a fresh read); /steps, /tags and
# /stats always read afresh.
_SERIES_MAX_AGE = 5.0
_SERIES_CACHE_ENTRIES = 256
# Threads reading the steps of one /stats request.
_STATS_THREADS = 4
_SELF_KINDS = ("self", "causal")


class DataError(errors.PublicError):
    """The stored attention data is unreadable (corrupt or inconsistent blob)."""

    http_code = 500

    def __init__(self, details):
        super().__init__("Invalid attention data: %s" % details)


class _LRUCache:
    """A small thread-safe LRU, bounded by entries and by approximate bytes."""

    def __init__(self, max_entries, max_bytes):
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._items = collections.OrderedDict()  # key -> (value, nbytes)
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key, value, nbytes):
        if nbytes > self._max_bytes:
            return value
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, nbytes)
            self._bytes += nbytes
            while self._items and (
                len(self._items) > self._max_entries or self._bytes > self._max_bytes
            ):
                _, (_, size) = self._items.popitem(last=False)
                self._bytes -= size
        return value

    def __len__(self):
        with self._lock:
            return len(self._items)


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _arg(request, name, default=None, required=False):
    value = request.args.get(name)
    if value is None or value == "":
        if required:
            raise errors.InvalidArgumentError("missing required parameter %r" % name)
        return default
    return value


def _int_arg(request, name, default=None, required=False, minimum=None, maximum=None):
    value = _arg(request, name, None, required)
    if value is None:
        return default
    if not _INTEGER.match(value):
        raise errors.InvalidArgumentError(
            "parameter %r must be an integer, got %s" % (name, _short(value))
        )
    number = int(value)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        low = "" if minimum is None else str(minimum)
        high = "" if maximum is None else str(maximum)
        raise errors.InvalidArgumentError(
            "parameter %r is out of range: it must be in [%s, %s], got %s"
            % (name, low, high, _short(value))
        )
    return number


def _enum_arg(request, name, allowed, default):
    value = _arg(request, name, default)
    if value not in allowed:
        raise errors.InvalidArgumentError(
            "parameter %r must be one of %s, got %s" % (name, ", ".join(allowed), _short(value))
        )
    return value


def _bool_arg(request, name, default=False):
    value = _arg(request, name, None)
    if value is None:
        return default
    if value.lower() not in _BOOLEANS:
        raise errors.InvalidArgumentError(
            "parameter %r must be 0 or 1, got %s" % (name, _short(value))
        )
    return _BOOLEANS[value.lower()]


def _finite_or_none(values):
    return [None if not np.isfinite(v) else float(v) for v in values]


def _json_response(request, obj):
    return http_util.Respond(request, obj, "application/json")


def _rounded(array, decimals=8):
    return np.round(np.asarray(array, dtype=np.float64), decimals).tolist()


class AttentionPlugin(base_plugin.TBPlugin):
    """The Attention tab: attention weights, rollout, flow and head statistics."""

    plugin_name = metadata.PLUGIN_NAME

    def __init__(self, context):
        hint = (context.sampling_hints or {}).get(self.plugin_name)
        if hint is None:
            self._downsample = DEFAULT_DOWNSAMPLING
            self._sampled = True
        elif hint <= 0:
            self._downsample = _ALL_SAMPLES
            self._sampled = False
        else:
            self._downsample = int(hint)
            self._sampled = True
        self._data_provider = context.data_provider
        # Decoded headers and layers keyed by blob key: one 8x128x128 float16
        # layer is 256 KiB, so this holds ~1000 of them at most.
        self._blobs = _LRUCache(max_entries=1024, max_bytes=256 * 1024 * 1024)
        # Computed rollouts, flows and statistics.
        self._results = _LRUCache(max_entries=2048, max_bytes=64 * 1024 * 1024)
        # (experiment, run, tag) -> (monotonic time, list of BlobSequenceDatum)
        self._series_cache = collections.OrderedDict()
        self._series_lock = threading.Lock()
        # Typed texts run through the run's exported model (tb_plugin/live.py).
        self._live = live.LiveRoutes(self, context.logdir, context.data_provider)

    # -- TBPlugin -------------------------------------------------------------

    def get_plugin_apps(self):
        return {
            "/index.js": self._serve_index_js,
            "/static/*": self._serve_static,
            "/tags": self._serve_tags,
            "/steps": self._serve_steps,
            "/header": self._serve_header,
            "/layer": self._serve_layer,
            "/grid": self._serve_grid,
            "/rollout": self._serve_rollout,
            "/flow": self._serve_flow,
            "/stats": self._serve_stats,
            **self._live.routes(),
        }

    def is_active(self):
        return False  # the core enables the tab from `data_provider.list_plugins`

    def frontend_metadata(self):
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="Attention")

    # -- data access ------------------------------------------------------------

    def _series(self, ctx, experiment, run, tag, max_age=0.0):
        """The sampled data of one series: list of BlobSequenceDatum.

        With `max_age` > 0 a listing read less than `max_age` seconds ago is
        reused: each read_blob_sequences call to the Rust data server costs
        ~40 ms (one round trip of a streaming RPC), which would otherwise
        dominate every /header and /layer request.
        """
        key = (experiment, run, tag)
        if max_age > 0:
            with self._series_lock:
                cached = self._series_cache.get(key)
            if cached is not None and time.monotonic() - cached[0] < max_age:
                return cached[1]
        result = self._data_provider.read_blob_sequences(
            ctx,
            experiment_id=experiment,
            plugin_name=self.plugin_name,
            downsample=self._downsample,
            run_tag_filter=provider.RunTagFilter(runs=[run], tags=[tag]),
        )
        data = result.get(run, {}).get(tag)
        with self._series_lock:
            if data is None:
                self._series_cache.pop(key, None)
            else:
                self._series_cache[key] = (time.monotonic(), data)
                self._series_cache.move_to_end(key)
                while len(self._series_cache) > _SERIES_CACHE_ENTRIES:
                    self._series_cache.popitem(last=False)
        if data is None:
            raise errors.NotFoundError(
                "no attention data for run %s, tag %s" % (_short(run), _short(tag))
            )
        return data

    def _datum(self, ctx, experiment, run, tag, step):
        data = self._series(ctx, experiment, run, tag, max_age=_SERIES_MAX_AGE)
        for datum in data:
            if datum.step == step:
                return datum
        # Maybe a step written since the cached listing: read it again.
        data = self._series(ctx, experiment, run, tag)
        for datum in data:
            if datum.step == step:
                return datum
        steps = [d.step for d in data]
        shown = ", ".join(str(s) for s in steps[:20]) + (", ..." if len(steps) > 20 else "")
        raise errors.NotFoundError(
            "no step %d in run %s, tag %s (sampled steps: %s)" % (step, _short(run), _short(tag), shown)
        )

    def _blob_key(self, experiment, datum, index):
        # The wall time is in the key so that a series rewritten in place (a
        # run directory deleted and written again) is not served stale.
        return (experiment, datum.values[index].blob_key, datum.wall_time)

    def _blob(self, ctx, experiment, datum, index, decode, sizeof):
        key = self._blob_key(experiment, datum, index)
        value = self._blobs.get(key)
        if value is not None:
            return value
        raw = self._data_provider.read_blob(ctx, blob_key=datum.values[index].blob_key)
        try:
            value = decode(raw)
        except ValueError as e:
            raise DataError("step %d, blob %d: %s" % (datum.step, index, e))
        return self._blobs.put(key, value, sizeof(value))

    def _header(self, ctx, experiment, datum):
        if not datum.values:
            raise DataError("step %d has no blobs" % datum.step)
        return self._blob(ctx, experiment, datum, 0, metadata.decode_header, lambda h: 4096)

    def _cached_header(self, experiment, datum):
        """The header if it is cached, else None (reading it costs a round trip)."""
        if not datum.values:
            return None
        return self._blobs.get(self._blob_key(experiment, datum, 0))

    def _layer(self, ctx, experiment, datum, header, index):
        """Layer `index` of a step as stored (float16 [H, Q, K]).

        `header` may be None (then the blob count bounds `index` and the shape
        is not compared with the header): /layer then needs no header read.
        """
        stored = len(datum.values) - 1
        if header is None and not 0 <= index < stored:
            # Error path: the header decides between 400 (no such layer) and
            # 404 (listed but not stored).
            header = self._header(ctx, experiment, datum)
        if header is not None:
            count = len(header.get("layers", []))
            what = "the header lists %d layers" % count
        else:
            count = stored
            what = "the step stores %d layers" % count
        if not 0 <= index < count:
            raise errors.InvalidArgumentError(
                "parameter 'layer' must be in [0, %d] (%s), got %d" % (count - 1, what, index)
            )
        if index >= stored:
            raise errors.NotFoundError(
                "layer %d of step %d is not stored (the step has %d layer blobs)"
                % (index, datum.step, stored)
            )
        arr = self._blob(ctx, experiment, datum, index + 1, metadata.decode_array, lambda a: a.nbytes)
        if header is not None:
            expected = tuple(header["layers"][index]["shape"])
            if tuple(arr.shape) != expected:
                raise DataError(
                    "layer %d of step %d has shape %s but the header says %s"
                    % (index, datum.step, tuple(arr.shape), expected)
                )
        return arr

    def _request_step(self, request):
        ctx = plugin_util.context(request.environ)
        experiment = plugin_util.experiment_id(request.environ)
        run = _arg(request, "run", required=True)
        tag = _arg(request, "tag", required=True)
        step = _int_arg(request, "step", required=True, minimum=-(2**63), maximum=2**63 - 1)
        return ctx, experiment, run, tag, step

    # -- static files -------------------------------------------------------------

    def _serve_file(self, request, relative_path):
        try:
            found = static_files.read(relative_path)
        except static_files.UnsafePathError as e:
            raise errors.InvalidArgumentError("refused static path: %s" % e)
        if found is None:
            raise errors.NotFoundError("no static file %s" % _short(relative_path))
        content, mime = found
        return http_util.Respond(request, content, mime)

    @wrappers.Request.application
    def _serve_index_js(self, request):
        plugin_util.context(request.environ)
        return self._serve_file(request, "index.js")

    @wrappers.Request.application
    def _serve_static(self, request):
        plugin_util.context(request.environ)
        prefix = "/data/plugin/%s/static/" % self.plugin_name
        path = request.environ.get("PATH_INFO", "")
        if not path.startswith(prefix):
            raise errors.NotFoundError("no static file %s" % _short(path))
        return self._serve_file(request, path[len(prefix):])

    # -- routes ---------------------------------------------------------------------

    @wrappers.Request.application
    def _serve_tags(self, request):
        ctx = plugin_util.context(request.environ)
        experiment = plugin_util.experiment_id(request.environ)
        mapping = self._data_provider.list_blob_sequences(
            ctx, experiment_id=experiment, plugin_name=self.plugin_name
        )
        result = {}
        for run, tags in mapping.items():
            for tag, series in tags.items():
                try:
                    metadata.parse_plugin_metadata(series.plugin_content)
                except (ValueError, TypeError) as e:
                    logger.warning("attention: skipping run %r tag %r: %s", run, tag, e)
                    continue
                result.setdefault(run, {})[tag] = {
                    "max_step": int(series.max_step),
                    "description": series.description or "",
                }
        return _json_response(request, result)

    @wrappers.Request.application
    def _serve_steps(self, request):
        ctx = plugin_util.context(request.environ)
        experiment = plugin_util.experiment_id(request.environ)
        run = _arg(request, "run", required=True)
        tag = _arg(request, "tag", required=True)
        data = self._series(ctx, experiment, run, tag)
        maybe_downsampled = self._sampled and len(data) >= self._downsample
        return _json_response(
            request,
            {
                "steps": [int(d.step) for d in data],
                "wall_times": [float(d.wall_time) for d in data],
                "maybe_downsampled": maybe_downsampled,
                "hint": SAMPLING_HINT % self._downsample if maybe_downsampled else None,
            },
        )

    @wrappers.Request.application
    def _serve_header(self, request):
        ctx, experiment, run, tag, step = self._request_step(request)
        datum = self._datum(ctx, experiment, run, tag, step)
        header = dict(self._header(ctx, experiment, datum))
        header["step"] = int(datum.step)
        header["wall_time"] = float(datum.wall_time)
        return _json_response(request, header)

    @wrappers.Request.application
    def _serve_layer(self, request):
        ctx, experiment, run, tag, step = self._request_step(request)
        index = _int_arg(request, "layer", required=True, minimum=0, maximum=2**31)
        fmt = _enum_arg(request, "format", _LAYER_FORMATS, "bin")
        dtype = _enum_arg(request, "dtype", tuple(_LAYER_DTYPES), "float32")
        head = _arg(request, "head")
        if head is not None and head not in _HEAD_AGGREGATES:
            head = _int_arg(request, "head", minimum=0, maximum=2**31)
        datum = self._datum(ctx, experiment, run, tag, step)
        # Under the Rust data server a small blob costs a ~40 ms round trip:
        # use the header only if an earlier request (/header) cached it.
        header = self._cached_header(experiment, datum)
        arr = self._layer(ctx, experiment, datum, header, index)
        if head is not None:
            # One matrix of the layer (the tab's enlarged heatmap): [1, Q, K].
            if not isinstance(head, str) and head >= arr.shape[0]:
                raise errors.InvalidArgumentError(
                    "parameter 'head' must be in [0, %d] or one of %s, got %d"
                    % (arr.shape[0] - 1, ", ".join(_HEAD_AGGREGATES), head)
                )
            arr = thumbnails.select_head(arr, head)[None]
        shape = [int(s) for s in arr.shape]
        if fmt == "json":
            data = arr.astype(np.float32)
            if np.isfinite(data).all():
                body = json.dumps({"shape": shape, "data": data.tolist()}, separators=(",", ":"))
                return http_util.Respond(request, body, "application/json")
            # Respond's JSON path turns NaN/Infinity into strings.
            return _json_response(request, {"shape": shape, "data": data.tolist()})
        body = np.ascontiguousarray(arr, dtype=_LAYER_DTYPES[dtype]).tobytes()
        return http_util.Respond(
            request,
            body,
            "application/octet-stream",
            headers=[("X-Attention-Shape", ",".join(str(s) for s in shape)),
                     ("X-Attention-Dtype", dtype)],
        )

    @wrappers.Request.application
    def _serve_grid(self, request):
        """Per-head thumbnails of one layer, pooled on the server (tb_plugin/thumbnails.py)."""
        ctx, experiment, run, tag, step = self._request_step(request)
        index = _int_arg(request, "layer", required=True, minimum=0, maximum=2**31)
        size = _int_arg(request, "size", default=thumbnails.DEFAULT_SIZE,
                        minimum=thumbnails.MIN_SIZE, maximum=thumbnails.MAX_SIZE)
        aggregate = _enum_arg(request, "agg", thumbnails.AGGREGATES, "mean")
        want_entropy = _bool_arg(request, "entropy")
        datum = self._datum(ctx, experiment, run, tag, step)
        blob = datum.values[min(index + 1, len(datum.values) - 1)].blob_key
        key = ("grid", experiment, blob, datum.wall_time, index, size, aggregate)
        result = self._results.get(key)
        if result is None:
            header = self._header(ctx, experiment, datum)  # cached by /header
            arr = self._layer(ctx, experiment, datum, header, index)
            pooled, maxima = thumbnails.layer_thumbnails(arr, size, aggregate)
            result = (pooled.tobytes(), [int(n) for n in pooled.shape], maxima.tolist(),
                      [int(n) for n in arr.shape])
            self._results.put(key, result, len(result[0]) + 256)
        body, shape, maxima, source = result
        mats = None
        extra = []
        if want_entropy:
            # A separate cache entry: the entropy costs ~5x the pooling (a
            # logarithm per weight), so the tab asks for it after drawing.
            ekey = ("grid-entropy", experiment, blob, datum.wall_time, index, aggregate)
            entropy = self._results.get(ekey)
            if entropy is None:
                header = self._header(ctx, experiment, datum)
                if mats is None:
                    mats = thumbnails.with_aggregate(self._layer(ctx, experiment, datum, header, index), aggregate)
                entropy = thumbnails.relative_entropy(mats, header["layers"][index].get("kind")).tolist()
                self._results.put(ekey, entropy, 16 * len(entropy) + 64)
            extra.append(("X-Attention-Entropy", ",".join("nan" if e != e else "%.6g" % e for e in entropy)))
        return http_util.Respond(
            request,
            body,
            "application/octet-stream",
            headers=[
                ("X-Attention-Shape", ",".join(str(n) for n in shape)),
                ("X-Attention-Max", ",".join(repr(float(m)) for m in maxima)),
                ("X-Attention-Source-Shape", ",".join(str(n) for n in source)),
            ] + extra,
        )

    def _square_layers(self, header):
        """Checks rollout/flow apply; returns (token list, layer names) or raises 400."""
        layers = header.get("layers", [])
        if not layers:
            raise errors.InvalidArgumentError("this example has no attention layers")
        token_set = layers[0].get("key")
        for layer in layers:
            name = layer.get("name")
            if layer.get("kind") not in _SELF_KINDS:
                raise errors.InvalidArgumentError(
                    "rollout and flow need self or causal attention in every layer; layer %s is %s"
                    % (_short(name), _short(layer.get("kind")))
                )
            h, q, k = layer["shape"]
            if q != k or layer.get("query") != layer.get("key"):
                raise errors.InvalidArgumentError(
                    "rollout and flow need square attention over one token set; layer %s is %dx%d "
                    "from %s to %s" % (_short(name), q, k, _short(layer.get("query")), _short(layer.get("key")))
                )
            if layer.get("key") != token_set:
                raise errors.InvalidArgumentError(
                    "rollout and flow need all layers over one token set; layer %s uses %s, "
                    "the first layer %s" % (_short(name), _short(layer.get("key")), _short(token_set))
                )
        return list(header["tokens"][token_set]), [layer["name"] for layer in layers]

    def _all_layers(self, ctx, experiment, datum, header):
        return [
            self._layer(ctx, experiment, datum, header, i) for i in range(len(header["layers"]))
        ]

    def _rollout(self, ctx, experiment, datum, header, head_fusion, exclude_first):
        key = ("rollout", experiment, datum.values[0].blob_key, datum.wall_time, head_fusion, exclude_first)
        result = self._results.get(key)
        if result is None:
            layers = self._all_layers(ctx, experiment, datum, header)
            result = flows.rollout(layers, head_fusion=head_fusion, exclude_first=exclude_first)
            result.setflags(write=False)
            self._results.put(key, result, result.nbytes)
        return result

    @wrappers.Request.application
    def _serve_rollout(self, request):
        ctx, experiment, run, tag, step = self._request_step(request)
        head_fusion = _enum_arg(request, "head_fusion", flows.HEAD_FUSIONS, "mean")
        exclude_first = _bool_arg(request, "exclude_first")
        datum = self._datum(ctx, experiment, run, tag, step)
        header = self._header(ctx, experiment, datum)
        tokens, names = self._square_layers(header)
        result = self._rollout(ctx, experiment, datum, header, head_fusion, exclude_first)
        return _json_response(
            request, {"tokens": tokens, "rollout": _rounded(result), "layers": names}
        )

    @wrappers.Request.application
    def _serve_flow(self, request):
        ctx, experiment, run, tag, step = self._request_step(request)
        position = _int_arg(request, "position", required=True, minimum=0, maximum=2**31)
        head_fusion = _enum_arg(request, "head_fusion", flows.HEAD_FUSIONS, "mean")
        exclude_first = _bool_arg(request, "exclude_first")
        datum = self._datum(ctx, experiment, run, tag, step)
        header = self._header(ctx, experiment, datum)
        tokens, _ = self._square_layers(header)
        if position >= len(tokens):
            raise errors.InvalidArgumentError(
                "parameter 'position' must be in [0, %d] (the example has %d tokens), got %d"
                % (len(tokens) - 1, len(tokens), position)
            )
        try:
            # Exact max-flow within flows.FLOW_CAP; above it (up to
            # flows.SPARSE_FLOW_CAP) exact on a sparsified graph.
            flows.flow_method(len(header["layers"]), len(tokens))
        except ValueError as e:
            raise errors.InvalidArgumentError(str(e))
        key = ("flow", experiment, datum.values[0].blob_key, datum.wall_time, head_fusion,
               exclude_first, position)
        cached = self._results.get(key)
        if cached is None:
            layers = self._all_layers(ctx, experiment, datum, header)
            try:
                cached = flows.flow(
                    layers, position, head_fusion=head_fusion, exclude_first=exclude_first
                )
            except ValueError as e:
                raise errors.InvalidArgumentError(str(e))
            self._results.put(key, cached, cached[0].nbytes + 256)
        flow, info = cached
        rollout_row = self._rollout(ctx, experiment, datum, header, head_fusion, exclude_first)[position]
        answer = {
            "tokens": tokens,
            "position": position,
            "flow": _rounded(flow),
            "rollout": _rounded(rollout_row),
        }
        answer.update(info)
        return _json_response(request, answer)

    def _layer_stats(self, ctx, experiment, datum, header, index, own_header):
        """Statistics of one layer of one step (cached).

        `own_header` is False when `header` is borrowed from another step of
        the series (same probe example, so the same layers): the layer's
        kind comes from it but its shape is not checked against it.
        """
        layer = header["layers"][index]
        key = ("stats", experiment, datum.values[index + 1].blob_key, datum.wall_time, layer.get("kind"))
        result = self._results.get(key)
        if result is None:
            arr = self._layer(ctx, experiment, datum, header if own_header else None, index)
            computed = stats_lib.layer_statistics(arr, layer.get("kind"))
            result = {name: _finite_or_none(computed[name]) for name in stats_lib.STATISTICS}
            self._results.put(key, result, 64 * int(arr.shape[0]) + 256)
        return result

    def _step_stats(self, ctx, experiment, datum, last_header):
        header = self._cached_header(experiment, datum)
        own = header is not None
        if header is None:
            if len(datum.values) - 1 == len(last_header.get("layers", [])):
                # Skip a header read (a ~40 ms round trip under the Rust
                # data server) per step: the layers are those of the last step.
                header = last_header
            else:
                header, own = self._header(ctx, experiment, datum), True
        return [
            self._layer_stats(ctx, experiment, datum, header, i, own)
            for i in range(len(header.get("layers", [])))
        ]

    @wrappers.Request.application
    def _serve_stats(self, request):
        ctx = plugin_util.context(request.environ)
        experiment = plugin_util.experiment_id(request.environ)
        run = _arg(request, "run", required=True)
        tag = _arg(request, "tag", required=True)
        data = self._series(ctx, experiment, run, tag)
        result = {"steps": [int(d.step) for d in data], "layers": [], "heads": []}
        for name in stats_lib.STATISTICS:
            result[name] = []
        if not data:
            return _json_response(request, result)
        last_header = self._header(ctx, experiment, data[-1])
        # Blob reads wait on the data server: overlap them.
        with concurrent.futures.ThreadPoolExecutor(max_workers=_STATS_THREADS) as pool:
            per_step = list(
                pool.map(lambda d: self._step_stats(ctx, experiment, d, last_header), data)
            )
        for per_layer in per_step:
            for name in stats_lib.STATISTICS:
                result[name].append([layer[name] for layer in per_layer])
        result["layers"] = [layer["name"] for layer in last_header.get("layers", [])]
        result["heads"] = [int(layer["shape"][0]) for layer in last_header.get("layers", [])]
        return _json_response(request, result)
