"""Your own text in the Attention tab: run a run's exported SavedModel on typed texts.

Routes (registered by `tb_plugin.plugin`, specified in docs/plugin_api.md):

    GET  /live_runs      the runs that have an exported model, and why the others have none
    POST /live           {"run", "texts": [...], "encoding"?, "compare"?} -> per text the /header
                         JSON plus the layers' weights
    POST /live_rollout   {"run", "text", "head_fusion"?, "exclude_first"?} -> as GET /rollout
    POST /live_flow      {... , "position"} -> as GET /flow

Where the model comes from: a run name is accepted only if the data provider
lists it (so never a path from the request); it is mapped to its run
directory under the logdir TensorBoard was given (the nearest directory at or
above the run's directory holding results.json or config.json), and the
SavedModel is the one train.py / `python -m attn_tf.export` recorded there,
`results.json` -> "export" -> "path".

TensorFlow is imported on the first inference only (TensorBoard starts as
fast as before, and a TensorBoard without TensorFlow still serves the tab);
at most MAX_MODELS SavedModels are held (LRU). Requests are bounded
(MAX_TEXTS texts of MAX_TEXT_CHARS characters, MAX_BODY_BYTES of body,
MAX_CONCURRENT inferences at a time), each refusal a 4xx naming the limit.
Nothing is ever written to the logdir.

Signatures (saved_models/README.md): a model's `attention` signature (full
tensors; newer exports) is used when present, else `serving_default` (older
exports return the full tensors there); seq2seq exports use `translate`
(decoded output + cross-attention).
"""

import base64
import collections
import difflib
import json
import os
import threading
import time

import numpy as np
from werkzeug import wrappers

from tensorboard import errors
from tensorboard import plugin_util
from tensorboard.backend import http_util
from tensorboard.util import tb_logging

from tb_plugin import flows
from tb_plugin import metadata

logger = tb_logging.get_logger()

# -- limits (named in every refusal; docs/plugin_api.md lists them) -----------
MAX_TEXT_CHARS = 2000  # characters per text (a long review is ~1,500)
MAX_TEXTS = 16  # texts (lines of the text box) per request
MAX_BODY_BYTES = 1024 * 1024  # request body
MAX_CONCURRENT = 2  # inferences running at once (the machine has 2 cores)
MAX_MODELS = 2  # SavedModels held in memory; the least recently used is dropped
# Inference results kept for /live_rollout and /live_flow (and repeated texts).
RESULT_CACHE_BYTES = 64 * 1024 * 1024
RESULT_CACHE_ENTRIES = 256

RUN_FILES = ("results.json", "config.json")  # what makes a directory a run directory
ENCODINGS = ("json", "base64")
PROBE_COMMAND = "python -m attn_tf.probe"
# Names of the stored layers, as the training callbacks name them
# (attn_tf/training/probes.py, seq2seq_trainer.py), so a typed text and a
# probe example of the same run read alike.
POOLING_LAYER = "attention_pooling"
BLOCK_LAYER = "encoder/block_%d"
CROSS_LAYER = "decoder/cross_attention"


class LimitError(errors.PublicError):
    """A request over one of the limits above (413: too large)."""

    http_code = 413


class BusyError(errors.PublicError):
    """MAX_CONCURRENT inferences are already running (429, with Retry-After)."""

    http_code = 429

    def __init__(self, details):
        super().__init__(details)
        self.headers = [("Retry-After", "1")]


class MethodError(errors.PublicError):
    http_code = 405

    def __init__(self, details):
        super().__init__(details)
        self.headers = [("Allow", "POST")]


class MediaTypeError(errors.PublicError):
    http_code = 415


class ModelError(errors.PublicError):
    """The exported model cannot be loaded or answers in a form we cannot read (500)."""

    http_code = 500


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- run -> run directory -> export ---------------------------------------------


def run_directory(logdir, run):
    """The run directory of TensorBoard run `run` under `logdir`, or None.

    A TensorBoard run is a directory holding event files, e.g.
    `<run dir>/attention` for train.py's probe summaries; the run directory is
    the nearest directory at or above it (never above `logdir`) that holds
    results.json or config.json. `run` must already be a name the data
    provider listed; the realpath check keeps symlinks from leaving `logdir`.
    """
    root = os.path.realpath(logdir)
    path = os.path.realpath(os.path.join(root, run))
    if path != root and not path.startswith(root + os.sep):
        return None
    while True:
        if any(os.path.isfile(os.path.join(path, f)) for f in RUN_FILES):
            return path
        if path == root:
            return None
        path = os.path.dirname(path)


class NoExport(Exception):
    """A run directory without a usable export; the message says why and what to do."""


def find_export(run_dir):
    """-> (SavedModel directory, results.json "export" entry) or raises NoExport.

    A relative "path" (export_run records it relative to the directory
    train.py ran in, e.g. saved_models/<name>/<version>) is looked up
    relative to the run directory and then to each directory above it.
    """
    results_path = os.path.join(run_dir, "results.json")
    fix = "export it with `python -m attn_tf.export %s` (or finish training: train.py exports at the end)" % run_dir
    if not os.path.isfile(results_path):
        raise NoExport("%s has no results.json (the run has not finished); %s" % (run_dir, fix))
    try:
        with open(results_path, encoding="utf-8") as f:
            results = json.load(f)
    except (OSError, ValueError) as e:
        raise NoExport("%s is unreadable or not JSON (%s)" % (results_path, e))
    entry = results.get("export") if isinstance(results, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"]:
        raise NoExport('%s records no export ("export": {"path": ...}); %s' % (results_path, fix))
    recorded = entry["path"]
    if os.path.isabs(recorded):
        candidates = [recorded]
    else:
        candidates, here = [], run_dir
        while True:
            candidates.append(os.path.join(here, recorded))
            parent = os.path.dirname(here)
            if parent == here:
                break
            here = parent
    for path in candidates:
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            return os.path.realpath(path), entry
    raise NoExport("the export %s recorded in %s is not there (no saved_model.pb); it was moved or deleted: %s"
                   % (recorded, results_path, fix))


# -- models ---------------------------------------------------------------------------


def _import_tensorflow():
    """TensorFlow (and TF Text's ops, which the tokenizers in our exports use), imported on first use."""
    import tensorflow as tf

    try:
        import tensorflow_text  # noqa: F401  (registers the ops the SavedModel's tokenizer needs)
    except ImportError:
        pass
    return tf


def _strings(row):
    return [t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t) for t in row]


class LoadedModel:
    """One exported SavedModel and the signature the tab calls."""

    def __init__(self, path):
        tf = _import_tensorflow()
        self.path = path
        start = time.perf_counter()
        try:
            self._module = tf.saved_model.load(path)
        except Exception as e:  # noqa: BLE001 - any load failure is reported to the user
            raise ModelError("cannot load the exported model %s (%s: %s); re-export the run with "
                             "python -m attn_tf.export RUN_DIR" % (path, type(e).__name__, e))
        signatures = self._module.signatures
        self.signatures = sorted(signatures.keys())
        if "translate" in signatures:
            self.task, self.signature = "seq2seq", "translate"
        elif "attention" in signatures:
            self.task, self.signature = "classifier", "attention"
        elif "serving_default" in signatures:
            self.task, self.signature = "classifier", "serving_default"
        else:
            raise ModelError("the exported model %s has none of the signatures attention, serving_default, "
                             "translate (it has %s)" % (path, ", ".join(self.signatures) or "none"))
        self._fn = signatures[self.signature]
        # The prediction when the `attention` signature carries only the tensors.
        self._default = signatures.get("serving_default") if self.signature == "attention" else None
        self._tf = tf
        self.load_seconds = time.perf_counter() - start
        # The first call traces and optimises the graph (seconds); do it now so
        # that "after load" latency is what a user sees on every later text.
        start = time.perf_counter()
        self._call(["warm up"])
        self.warmup_seconds = time.perf_counter() - start

    def _extra_inputs(self, fn):
        """Values meaning "all" for inputs other than `text` (the `attention` signature's layers/heads)."""
        _, kwargs = fn.structured_input_signature
        extra = {}
        for name, spec in kwargs.items():
            if name == "text":
                continue
            shape = [0 if d is None else d for d in spec.shape.as_list()] if spec.shape.rank is not None else [0]
            extra[name] = self._tf.zeros([0 if i == 0 else d for i, d in enumerate(shape)] or [], dtype=spec.dtype)
        return extra

    def _call(self, texts):
        tf = self._tf
        text = tf.constant(texts, dtype=tf.string)
        out = {k: v.numpy() for k, v in self._fn(text=text, **self._extra_inputs(self._fn)).items()}
        if self._default is not None and "probabilities" not in out:
            for k, v in self._default(text=text).items():
                out.setdefault(k, v.numpy())
        return out

    def infer(self, texts, class_names=None):
        """-> one (header, [float32 [H, Q, K] per layer]) per text."""
        out = self._call(list(texts))
        try:
            if self.task == "seq2seq":
                return [self._seq2seq_record(out, i, t) for i, t in enumerate(texts)]
            return [self._classifier_record(out, i, t, class_names) for i, t in enumerate(texts)]
        except (KeyError, ValueError, IndexError) as e:
            raise ModelError("the %s signature of %s answered in an unexpected form (%s: %s); see "
                             "saved_models/README.md" % (self.signature, self.path, type(e).__name__, e))

    def _classifier_record(self, out, i, text, class_names):
        tokens_row = _strings(out["tokens"][i])
        width = len(tokens_row)
        count = int(out["token_count"][i]) if "token_count" in out else sum(1 for t in tokens_row if t)
        n = min(count, width)
        tokens = tokens_row[:n]
        attention = np.asarray(out["attention"][i], dtype=np.float32)
        if attention.ndim == 1:  # bilstm_attention: pooling weights [T]
            layers = [(POOLING_LAYER, "pooling", attention[None, None, :n])]
        elif attention.ndim == 4:  # transformer: [L, H, T, T]
            layers = [(BLOCK_LAYER % b, "self", attention[b, :, :n, :n]) for b in range(attention.shape[0])]
        elif attention.ndim == 3:  # one layer [H, T, T]
            layers = [(BLOCK_LAYER % 0, "self", attention[:, :n, :n])]
        else:
            raise ValueError("attention of shape %s" % (attention.shape,))
        probabilities = np.asarray(out["probabilities"][i], dtype=np.float64)
        names = list(class_names) if class_names and len(class_names) == len(probabilities) else [
            "class %d" % c for c in range(len(probabilities))]
        prediction = None
        if "label" in out:
            prediction = _strings([out["label"][i]])[0] or None
        if prediction is None and n:
            prediction = names[int(np.argmax(probabilities))]
        header = metadata.make_header(
            {"input": tokens},
            [metadata.make_layer(name, kind, arr.shape, query=None if kind == "pooling" else "input", key="input")
             for name, kind, arr in layers],
            text=text, label=None, prediction=prediction, probabilities=probabilities.tolist(),
            class_names=names,
            extra={"live": True, "task": "classifier", "token_count": count, "truncated": count > width,
                   "max_tokens": width},
        )
        return header, [np.ascontiguousarray(arr) for _, _, arr in layers]

    def _seq2seq_record(self, out, i, text):
        target = _strings(out["tokens"][i])
        source = _strings(out["source_tokens"][i])
        t = next((k for k, tok in enumerate(target) if not tok), len(target))
        s = next((k for k, tok in enumerate(source) if not tok), len(source))
        cross = np.asarray(out["cross_attention"][i], dtype=np.float32)[:t, :s]
        layer = metadata.make_layer(CROSS_LAYER, "cross", (1, t, s), query="target", key="source")
        header = metadata.make_header(
            {"source": source[:s], "target": target[:t]}, [layer], text=text,
            prediction=_strings([out["translation"][i]])[0],
            extra={"live": True, "task": "seq2seq"},
        )
        return header, [np.ascontiguousarray(cross[None])]


class ModelCache:
    """At most `max_models` LoadedModels, least recently used dropped first; one load per path at a time."""

    def __init__(self, max_models=MAX_MODELS, loader=LoadedModel):
        self._max = max_models
        self._loader = loader
        self._models = collections.OrderedDict()  # (path, mtime) -> LoadedModel
        self._lock = threading.Lock()
        self._loading = {}  # key -> Lock held while that model loads
        self.loads = 0

    def get(self, path):
        key = (path, os.path.getmtime(os.path.join(path, "saved_model.pb")))
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                return model, False
            load_lock = self._loading.setdefault(key, threading.Lock())
        with load_lock:
            with self._lock:
                model = self._models.get(key)
            if model is not None:
                return model, False
            model = self._loader(path)
            with self._lock:
                self.loads += 1
                self._models[key] = model
                self._loading.pop(key, None)
                while len(self._models) > self._max:
                    self._models.popitem(last=False)
            return model, True

    def __len__(self):
        with self._lock:
            return len(self._models)


# -- comparison ---------------------------------------------------------------------------


def align_tokens(a, b):
    """Aligned positions of two token lists: [[i, j], ...] with a[i] == b[j], in order.

    difflib.SequenceMatcher (autojunk off, so frequent tokens such as "the"
    still align) finds the longest matching blocks; the pairs are the
    positions inside those blocks. A token inserted, deleted or replaced in
    the edited copy has no partner and no difference is computed for it.
    """
    matcher = difflib.SequenceMatcher(None, list(a), list(b), autojunk=False)
    return [[blk.a + k, blk.b + k] for blk in matcher.get_matching_blocks() for k in range(blk.size)]


# -- request parsing ----------------------------------------------------------------------


def _read_json_body(request):
    if request.method != "POST":
        raise MethodError("this route takes a POST with a JSON body (Content-Type: application/json)")
    mime = (request.mimetype or "").lower()
    if mime != "application/json":
        # Also keeps a cross-site HTML form (which cannot send application/json
        # without a CORS preflight) from starting inferences.
        raise MediaTypeError("send the body as JSON with Content-Type: application/json (got %s)"
                             % _short(request.content_type or "none"))
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise LimitError("the request body has %d bytes; the limit is %d bytes (MAX_BODY_BYTES)"
                         % (length, MAX_BODY_BYTES))
    raw = request.stream.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise LimitError("the request body is over the limit of %d bytes (MAX_BODY_BYTES)" % MAX_BODY_BYTES)
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise errors.InvalidArgumentError("the request body is not UTF-8 JSON (%s)" % e)
    if not isinstance(body, dict):
        raise errors.InvalidArgumentError('the request body must be a JSON object like {"run": ..., "texts": [...]}')
    return body


def _check_text(text, where):
    if not isinstance(text, str):
        raise errors.InvalidArgumentError("%s must be a string, got %s" % (where, type(text).__name__))
    if len(text) > MAX_TEXT_CHARS:
        raise LimitError("%s has %d characters; the limit is %d characters per text (MAX_TEXT_CHARS): "
                         "shorten it" % (where, len(text), MAX_TEXT_CHARS))
    if not text.strip():
        raise errors.InvalidArgumentError("%s is empty: type a sentence" % where)
    return text


def _run_name(body):
    run = body.get("run")
    if not isinstance(run, str) or not run:
        raise errors.InvalidArgumentError('missing required field "run" (a run name listed by live_runs)')
    return run


# -- the routes ----------------------------------------------------------------------------


class LiveRoutes:
    """The /live* routes of one AttentionPlugin."""

    def __init__(self, plugin, logdir, data_provider, loader=LoadedModel):
        self._plugin = plugin
        self._logdir = logdir or ""
        self._data_provider = data_provider
        self.models = ModelCache(loader=loader)
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT)
        self._results = collections.OrderedDict()  # (model path, text) -> (header, arrays, nbytes)
        self._results_bytes = 0
        self._results_lock = threading.Lock()

    def routes(self):
        return {
            "/live_runs": self._serve_runs,
            "/live": self._serve_live,
            "/live_rollout": self._serve_rollout,
            "/live_flow": self._serve_flow,
        }

    # -- runs ----------------------------------------------------------------------

    def _local_logdir(self):
        logdir = self._logdir
        if not logdir or "://" in logdir or not os.path.isdir(logdir):
            return None
        return logdir

    def _runs(self, ctx, experiment):
        """-> (list of available run dicts, list of {"run", "reason"}), one entry per run directory."""
        logdir = self._local_logdir()
        if logdir is None:
            return [], []
        names = sorted(r.run_name for r in self._data_provider.list_runs(ctx, experiment_id=experiment))
        try:
            with_attention = set(self._data_provider.list_blob_sequences(
                ctx, experiment_id=experiment, plugin_name=metadata.PLUGIN_NAME))
        except Exception:  # noqa: BLE001 - only a preference between names
            with_attention = set()
        by_dir = collections.OrderedDict()
        for name in names:
            run_dir = run_directory(logdir, name)
            if run_dir is not None:
                by_dir.setdefault(run_dir, []).append(name)
        available, missing = [], []
        for run_dir, runs in by_dir.items():
            # The name shown is the run whose probe examples the tab lists, so
            # the typed text and the probes of one model sit under one name.
            runs.sort(key=lambda r: (r not in with_attention, len(r), r))
            entry = {"run": runs[0], "runs": runs, "run_dir": run_dir,
                     "relative_run_dir": os.path.relpath(run_dir, os.path.realpath(logdir))}
            try:
                path, export = find_export(run_dir)
            except NoExport as e:
                missing.append({"run": runs[0], "reason": str(e)})
                continue
            entry["export_path"] = path
            entry["model"] = export.get("name") or os.path.basename(os.path.dirname(path))
            entry["signature"] = export.get("signature")
            available.append(entry)
        return available, missing

    def _resolve(self, ctx, experiment, run):
        """Run name from the request -> (run dir, SavedModel dir, export entry); 4xx otherwise."""
        logdir = self._local_logdir()
        if logdir is None:
            raise errors.NotFoundError(
                "typed texts need a local --logdir (this TensorBoard has %s); start tensorboard with "
                "--logdir DIR" % (("--logdir %s" % self._logdir) if self._logdir else "no --logdir"))
        names = {r.run_name for r in self._data_provider.list_runs(ctx, experiment_id=experiment)}
        if run not in names:
            raise errors.NotFoundError("no run %s in this TensorBoard (see live_runs for the runs with an "
                                       "exported model)" % _short(run))
        run_dir = run_directory(logdir, run)
        if run_dir is None:
            raise errors.NotFoundError("run %s is not inside a run directory of train.py (no results.json or "
                                       "config.json at or above it under the logdir)" % _short(run))
        try:
            path, export = find_export(run_dir)
        except NoExport as e:
            raise errors.NotFoundError("run %s has no exported model: %s" % (_short(run), e))
        return run_dir, path, export

    @staticmethod
    def _class_names(run_dir, export):
        names = export.get("class_names")
        if isinstance(names, list) and names:
            return [str(n) for n in names]
        for source in ("class_names.json", "config.json"):
            try:
                with open(os.path.join(run_dir, source), encoding="utf-8") as f:
                    data = json.load(f)
            except (OSError, ValueError):
                continue
            if source == "config.json":
                data = data.get("class_names") if isinstance(data, dict) else None
            if isinstance(data, list) and data:
                return [str(n) for n in data]
        return None

    @wrappers.Request.application
    def _serve_runs(self, request):
        ctx = plugin_util.context(request.environ)
        experiment = plugin_util.experiment_id(request.environ)
        available, missing = self._runs(ctx, experiment)
        logdir = self._local_logdir()
        return http_util.Respond(request, {
            "runs": available,
            "without_export": missing,
            "logdir": os.path.realpath(logdir) if logdir else None,
            "note": None if logdir else "typed texts need a local --logdir; this TensorBoard has %s"
            % (self._logdir or "none"),
            "limits": {"max_text_chars": MAX_TEXT_CHARS, "max_texts": MAX_TEXTS,
                       "max_concurrent": MAX_CONCURRENT, "max_models": MAX_MODELS,
                       "max_body_bytes": MAX_BODY_BYTES},
            "probe_command": PROBE_COMMAND,
        }, "application/json")

    # -- inference --------------------------------------------------------------------

    def _cached(self, key):
        with self._results_lock:
            item = self._results.get(key)
            if item is None:
                return None
            self._results.move_to_end(key)
            return item[0], item[1]

    def _remember(self, key, header, arrays):
        nbytes = sum(a.nbytes for a in arrays) + 4096
        with self._results_lock:
            old = self._results.pop(key, None)
            if old is not None:
                self._results_bytes -= old[2]
            self._results[key] = (header, arrays, nbytes)
            self._results_bytes += nbytes
            while self._results and (len(self._results) > RESULT_CACHE_ENTRIES
                                     or self._results_bytes > RESULT_CACHE_BYTES):
                _, (_, _, size) = self._results.popitem(last=False)
                self._results_bytes -= size

    def infer(self, ctx, experiment, run, texts):
        """-> (list of (header, arrays), timing dict). Runs the model on the texts not cached."""
        run_dir, path, export = self._resolve(ctx, experiment, run)
        if not self._slots.acquire(blocking=False):
            raise BusyError("%d inferences are already running (the limit, MAX_CONCURRENT); retry in a moment"
                            % MAX_CONCURRENT)
        try:
            start = time.perf_counter()
            model, loaded = self.models.get(path)
            load_seconds = time.perf_counter() - start
            results = [self._cached((path, t)) for t in texts]
            todo = sorted({t for t, r in zip(texts, results) if r is None})
            start = time.perf_counter()
            if todo:
                fresh = dict(zip(todo, model.infer(todo, self._class_names(run_dir, export))))
                for t, (header, arrays) in fresh.items():
                    self._remember((path, t), header, arrays)
                results = [r if r is not None else fresh[t] for t, r in zip(texts, results)]
            infer_seconds = time.perf_counter() - start
        finally:
            self._slots.release()
        timing = {"inference_seconds": round(infer_seconds, 4), "model_loaded_now": loaded,
                  "load_seconds": round(model.load_seconds + model.warmup_seconds, 3) if loaded else None}
        if loaded:
            logger.info("attention: loaded %s for run %r in %.1f s (wait %.1f s)", path, run,
                        model.load_seconds + model.warmup_seconds, load_seconds)
        for i, (header, _) in enumerate(results):
            if not header["tokens"].get("input", header["tokens"].get("source", [None])):
                raise errors.InvalidArgumentError(
                    "texts[%d] has no token the model reads (%s); type words" % (i, _short(texts[i])))
        return results, {"run_dir": run_dir, "export_path": path, "signature": model.signature,
                         "task": model.task, **timing}

    @staticmethod
    def _weights(arrays, encoding):
        if encoding == "base64":
            return [{"shape": [int(s) for s in a.shape], "dtype": "float32",
                     "base64": base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")}
                    for a in arrays]
        return [{"shape": [int(s) for s in a.shape], "data": np.round(a.astype(np.float64), 6).tolist()}
                for a in arrays]

    @wrappers.Request.application
    def _serve_live(self, request):
        ctx = plugin_util.context(request.environ)
        experiment = plugin_util.experiment_id(request.environ)
        body = _read_json_body(request)
        run = _run_name(body)
        texts = body.get("texts")
        if not isinstance(texts, list) or not texts:
            raise errors.InvalidArgumentError('"texts" must be a non-empty list of strings')
        if len(texts) > MAX_TEXTS:
            raise LimitError("the request has %d texts (lines); the limit is %d per request (MAX_TEXTS): "
                             "send fewer lines" % (len(texts), MAX_TEXTS))
        for i, text in enumerate(texts):
            _check_text(text, "texts[%d]" % i)
        encoding = body.get("encoding", "json")
        if encoding not in ENCODINGS:
            raise errors.InvalidArgumentError('"encoding" must be one of %s, got %s'
                                              % (", ".join(ENCODINGS), _short(encoding)))
        compare = body.get("compare", False)
        if not isinstance(compare, bool):
            raise errors.InvalidArgumentError('"compare" must be true or false')
        if compare and len(texts) != 2:
            raise errors.InvalidArgumentError('"compare": true needs exactly 2 texts (a text and its edited '
                                              'copy), got %d' % len(texts))
        results, info = self.infer(ctx, experiment, run, texts)
        answer = {"run": run, "signature": info["signature"], "task": info["task"],
                  "model_loaded_now": info["model_loaded_now"], "load_seconds": info["load_seconds"],
                  "inference_seconds": info["inference_seconds"], "results": []}
        for header, arrays in results:
            item = dict(header)
            item["step"] = None
            item["wall_time"] = None
            item["dtype"] = "float32"
            item["weights"] = self._weights(arrays, encoding)
            answer["results"].append(item)
        if compare:
            (ha, _), (hb, _) = results
            answer["alignment"] = {
                "method": "difflib.SequenceMatcher(autojunk=False) on the token sequences",
                "pairs": {name: align_tokens(ha["tokens"][name], hb["tokens"][name])
                          for name in ha["tokens"] if name in hb["tokens"]},
            }
        return http_util.Respond(request, json.dumps(answer, separators=(",", ":")), "application/json")

    def _one(self, request):
        ctx = plugin_util.context(request.environ)
        experiment = plugin_util.experiment_id(request.environ)
        body = _read_json_body(request)
        run = _run_name(body)
        text = _check_text(body.get("text"), '"text"')
        fusion = body.get("head_fusion", "mean")
        if fusion not in flows.HEAD_FUSIONS:
            raise errors.InvalidArgumentError('"head_fusion" must be one of %s, got %s'
                                              % (", ".join(flows.HEAD_FUSIONS), _short(fusion)))
        exclude_first = body.get("exclude_first", False)
        if not isinstance(exclude_first, bool):
            raise errors.InvalidArgumentError('"exclude_first" must be true or false')
        [(header, arrays)], _ = self.infer(ctx, experiment, run, [text])
        tokens, names = self._plugin._square_layers(header)
        return body, header, arrays, tokens, names, fusion, exclude_first

    @wrappers.Request.application
    def _serve_rollout(self, request):
        _, _, arrays, tokens, names, fusion, exclude_first = self._one(request)
        result = flows.rollout(arrays, head_fusion=fusion, exclude_first=exclude_first)
        return http_util.Respond(request, {"tokens": tokens, "rollout": _rounded(result), "layers": names},
                                 "application/json")

    @wrappers.Request.application
    def _serve_flow(self, request):
        body, header, arrays, tokens, _, fusion, exclude_first = self._one(request)
        position = body.get("position")
        if isinstance(position, bool) or not isinstance(position, int):
            raise errors.InvalidArgumentError('"position" must be an integer (a query token index)')
        if not 0 <= position < len(tokens):
            raise errors.InvalidArgumentError('"position" must be in [0, %d] (the text has %d tokens), got %d'
                                              % (len(tokens) - 1, len(tokens), position))
        try:
            # As GET /flow: exact within flows.FLOW_CAP, exact on a sparsified graph above it.
            flow, info = flows.flow(arrays, position, head_fusion=fusion, exclude_first=exclude_first)
        except ValueError as e:
            raise errors.InvalidArgumentError(str(e))
        row = flows.rollout(arrays, head_fusion=fusion, exclude_first=exclude_first)[position]
        answer = {"tokens": tokens, "position": position, "flow": _rounded(flow), "rollout": _rounded(row)}
        answer.update(info)
        return http_util.Respond(request, answer, "application/json")


def _rounded(array, decimals=8):
    return np.round(np.asarray(array, dtype=np.float64), decimals).tolist()
