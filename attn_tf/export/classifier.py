"""The serving signatures of the text classifiers (bilstm_attention, transformer, and any registered classifier).

Three signatures, all with the input `text: tf.string [B]` (raw texts; tokenizer inside):

  predict            the prediction only, no attention computed (Transformer blocks take the fused
                     `keras.ops.dot_product_attention` path: flash attention on GPU backends):
      "probabilities": float32 [B, C], "label": string [B], "token_count": int32 [B]

  serving_default    the prediction plus ONE compact explanation per example:
      "probabilities", "label", "token_count" as above,
      "tokens":        string  [B, T]   the model's tokens (case-folded, truncated to T), "" padded,
      "explanation":   float32 [B, T]   sums to 1 over the real tokens, 0 on padding:
                       pooling attention (bilstm_attention): the pooling weights themselves;
                       self-attention (transformer): the attention rollout (Abnar & Zuidema 2020:
                       per block A' = 0.5 * mean over heads + 0.5 * I, rows renormalised, multiplied
                       bottom to top) read at the pooled output: the mean of the rollout rows of the
                       real tokens for a mean-pooled model, the [CLS] (first token) row otherwise.

  attention          the full attention tensors, optionally a part of them:
      inputs "text", "layers": int32 [n], "heads": int32 [n] (block / head indices; an empty list = all;
      all three inputs are required: a SignatureDef written by Keras' ExportArchive has no defaults, and
      layers / heads are not batch-aligned, so REST clients use the columnar {"inputs": {...}} form),
      outputs "probabilities", "label", "tokens", "token_count" as above and
      "attention": float32 [B, len(layers), len(heads), T, T] (transformer: every block's
                   self-attention, rows = queries); [B, T] for pooling attention (layers/heads must be empty).

T is the tokenizer's max_length. Texts without any token (empty, whitespace only): token_count 0,
uniform probabilities (1/C each), label "" and an all-zero explanation / attention, never a confident
answer. Invalid UTF-8 bytes are replaced by U+FFFD before tokenization (never an error). An index out of
range in `layers` / `heads` is an InvalidArgumentError naming the valid range (HTTP 400 from TF Serving).
README.md, section 'Serve with TF Serving', and saved_models/README.md document the contract and its
migration (serving_default used to return the full tensors as "attention").

Generic over the model: a classifier qualifies when its Keras model maps int ids [B, T] to a dict
{"probabilities" [B, C], "attention": [B, T] (pooling) or [B, L, H, T, T] (self-attention)}. Its tokenizer
is the run's (the registry's `load_tokenizer`, default vectorizer.json) and needs `max_length` and either
`tokenize(strings) -> ragged string tokens` + `lookup(tokens) -> ids` (as TextVectorizer), or
`__call__(strings) -> (ids, token_count)` + `vocabulary` (tokens are then read back from the ids).
The attention-free `predict` uses the model module's `forward(model, ids, return_attention=False)`
when it has one, else the model's own call (same answer, attention computed and dropped).
"""

import importlib
import inspect
import os

import numpy as np

from attn_tf.export.run import CLASS_NAMES, MODEL, VECTORIZER, ExportError

SIGNATURE = "serving_default"
PREDICT = "predict"
ATTENTION = "attention"
SIGNATURES = (SIGNATURE, PREDICT, ATTENTION)
INPUT = "text"
OUTPUTS = {
    SIGNATURE: ("probabilities", "label", "tokens", "token_count", "explanation"),
    PREDICT: ("probabilities", "label", "token_count"),
    ATTENTION: ("probabilities", "label", "tokens", "token_count", "attention"),
}
REQUIRED_FILES = (MODEL, VECTORIZER)


def class_names_of(run, class_names=None):
    """The class names of a run, index = class id.

    In order: the `class_names` argument, config.json's "class_names",
    class_names.json in the run directory, else the run's dataset loaded again
    (as train.py loaded it: named dataset from the cache, or the --data file).
    """
    import json

    if class_names:
        return [str(c) for c in class_names]
    if run.config.get("class_names"):
        return [str(c) for c in run.config["class_names"]]
    path = run.file(CLASS_NAMES)
    if os.path.isfile(path):
        try:
            with open(path) as f:
                names = json.load(f)
        except (OSError, ValueError) as e:
            raise ExportError("%s is unreadable or not JSON (%s)" % (path, e)) from e
        if not isinstance(names, list):
            raise ExportError("%s must be a JSON list of class names" % path)
        return [str(c) for c in names]
    from attn_tf.data import DataError
    from attn_tf.data.run_data import load_classification_data  # below export: imports point one way

    try:
        return list(load_classification_data(run.config).class_names)
    except (DataError, KeyError, OSError) as e:
        raise ExportError(
            "cannot find the class names of %s: config.json has no \"class_names\", there is no %s, and "
            "loading the training data again failed (%s). Pass them in class-id order with "
            "--class-names NAME,NAME,..." % (run.path, CLASS_NAMES, e)) from e


class ClassifierExport:
    """What export_run needs: the archive to write, warmup requests, a description."""

    signature_name = SIGNATURE

    def __init__(self, archive, signatures, warmup_inputs, description):
        self.archive = archive
        self.signatures = signatures
        self.serve = signatures[SIGNATURE]
        self.warmup_inputs = warmup_inputs
        self.description = description


# ----------------------------------------------------------------------------- model facts

def _model_spec(kind):
    try:
        from attn_tf.models import registry
    except ImportError:  # before the registry: the module is attn_tf.models.<kind>
        return None
    try:
        return registry.get(kind)
    except ValueError:
        return None


def load_tokenizer(run):
    """The run's tokenizer: its registry entry's `load_tokenizer`, else vectorizer.json."""
    from attn_tf.data import DataError, TextVectorizer

    spec = _model_spec(run.kind)
    try:
        if spec is not None and hasattr(spec, "saved_tokenizer"):
            return spec.saved_tokenizer(run.path, run.config)
        return TextVectorizer.load(run.file(VECTORIZER))
    except DataError as e:
        raise ExportError(str(e)) from e


def attention_free_forward(kind, model):
    """`ids -> probabilities` without attention: the model module's forward(..., return_attention=False).

    The module is the one of the registry builder ("module:function"), else attn_tf.models.<kind>. A model
    whose module has no such forward runs its own call (attention computed and dropped: same answer).
    """
    spec = _model_spec(kind)
    builder = getattr(spec, "builder", None)
    module_name = builder.partition(":")[0] if isinstance(builder, str) else "attn_tf.models.%s" % kind
    try:
        forward = getattr(importlib.import_module(module_name), "forward", None)
    except ImportError:
        forward = None
    if forward is not None and "return_attention" in inspect.signature(forward).parameters:
        return lambda ids: forward(model, ids, return_attention=False, training=False)["probabilities"]
    return lambda ids: model(ids, training=False)["probabilities"]


def pooled_position(model):
    """How a self-attention model reads its sequence: "mean" (masked mean pooling) or "first" ([CLS])."""
    import keras

    for layer in model.layers:
        if isinstance(layer, (keras.layers.GlobalAveragePooling1D,)):
            return "mean"
    return "first"


def attention_kind(model):
    """"pooling" ([B, T] output) or "self" ([B, L, H, T, T]); ExportError for anything else."""
    shape = model.output["attention"].shape
    if len(shape) == 2:
        return "pooling"
    if len(shape) == 5 and shape[-1] == shape[-2]:
        return "self"
    raise ExportError("the model's \"attention\" output has shape %s; the classifier export supports [B, T] "
                      "(pooling weights) or [B, L, H, T, T] (self-attention)" % (tuple(shape),))


# ----------------------------------------------------------------------------- graph pieces

def encode_texts(tokenizer, text):
    """[B] strings -> (ids int32 [B, T], tokens string [B, T] ("" padded), token_count int32 [B])."""
    import tensorflow as tf

    max_length = int(tokenizer.max_length)
    if hasattr(tokenizer, "tokenize") and hasattr(tokenizer, "lookup"):
        pieces = tokenizer.tokenize(text)  # ragged [B, (n)], U+FFFD for invalid UTF-8
        token_count = tf.cast(pieces.row_lengths(), tf.int32)
        kept = pieces[:, :max_length]
        ids = tf.cast(tokenizer.lookup(kept).to_tensor(default_value=0, shape=[None, max_length]), tf.int32)
        tokens = kept.to_tensor(default_value="", shape=[None, max_length])
        return ids, tokens, token_count
    ids, token_count = tokenizer(text)
    ids = tf.cast(ids, tf.int32)
    vocab = tf.constant([str(t) for t in tokenizer.vocabulary], tf.string)
    tokens = tf.where(tf.equal(ids, 0), tf.constant("", tf.string), tf.gather(vocab, ids))
    return ids, tokens, tf.cast(token_count, tf.int32)


def rollout_explanation(attention, token_mask, pooling="mean"):
    """Attention rollout row of the pooled output: [B, L, H, T, T], bool [B, T] -> float32 [B, T].

    A'_l = 0.5 * mean_h A_l + 0.5 * I, rows renormalised; rollout R = A'_L ... A'_1 (as
    tb_plugin.flows.rollout); the explanation is w R with w the pooling weights over query positions
    (mean pooling: 1/n on the n real tokens; "first": the first token). Computed as L vector-matrix
    products from the top. Padded query rows of A are zero, so A' is the identity there and no real
    row ever reaches a padded column: the result equals the rollout of the trimmed [n, n] matrices.
    """
    import tensorflow as tf

    # Only ops already checked against TF Serving 2.20 (graph_ops.VERIFIED_WITH_TF_2_20): the
    # identity from range == range, the first-token weights from range == 0 (not eye / one_hot).
    a = tf.reduce_mean(tf.cast(attention, tf.float32), axis=2)  # [B, L, T, T]
    positions = tf.range(tf.shape(a)[-1])
    eye = tf.cast(tf.equal(positions[:, None], positions[None, :]), tf.float32)
    a = 0.5 * a + 0.5 * eye
    a = a / tf.reduce_sum(a, axis=-1, keepdims=True)
    mask = tf.cast(token_mask, tf.float32)
    if pooling == "mean":
        w = mask / tf.maximum(tf.reduce_sum(mask, axis=-1, keepdims=True), 1.0)
    else:
        w = tf.cast(tf.equal(positions, 0), tf.float32)[None, :] * mask[:, :1]
    for layer in reversed(range(attention.shape[1])):
        w = tf.einsum("bt,bts->bs", w, a[:, layer])
    return w * mask


def select_indexes(full, index, axis, size, what):
    """tf.gather along `axis` with an index check (an empty index = all)."""
    import tensorflow as tf

    index = tf.cast(index, tf.int32)
    ok = tf.reduce_all(tf.logical_and(tf.less_equal(0, index), tf.less(index, size)))
    check = tf.debugging.Assert(ok, ["`%s` indexes must be in [0, %d); got" % (what, size), index], summarize=16)
    with tf.control_dependencies([check]):
        return tf.cond(tf.less(0, tf.shape(index)[0]), lambda: tf.gather(full, index, axis=axis),
                       lambda: tf.identity(full))


def make_signatures(model, tokenizer, class_names, predict_fn=None, pooling=None):
    """The traced tf.functions {"serving_default", "predict", "attention"} (also used by the benchmark)."""
    import tensorflow as tf

    max_length = int(tokenizer.max_length)
    num_classes = len(class_names)
    names = tf.constant(class_names, dtype=tf.string)
    kind = attention_kind(model)
    pooling = pooling or (pooled_position(model) if kind == "self" else None)
    predict_fn = predict_fn or (lambda ids: model(ids, training=False)["probabilities"])
    text_spec = tf.TensorSpec([None], tf.string, name=INPUT)

    def answer(probabilities, token_count):
        # No token: no evidence. Answer "don't know" (uniform, label "") instead of whatever the biases
        # say. The attention of such a row is already all zero (attn_tf masking: a fully masked row gets
        # zero weights; tested), and so is its explanation.
        probabilities = tf.cast(probabilities, tf.float32)
        empty = tf.equal(token_count, 0)
        probabilities = tf.where(empty[:, None], tf.fill(tf.shape(probabilities), 1.0 / num_classes),
                                 probabilities)
        label = tf.where(empty, tf.constant("", tf.string),
                         tf.gather(names, tf.argmax(probabilities, axis=-1, output_type=tf.int32)))
        return {"probabilities": tf.ensure_shape(probabilities, [None, num_classes]), "label": label,
                "token_count": token_count}

    def explain(attention, ids):
        if kind == "pooling":
            return attention
        return rollout_explanation(attention, tf.not_equal(ids, 0), pooling)

    @tf.function(input_signature=[text_spec])
    def predict(text):
        ids, _, token_count = encode_texts(tokenizer, text)
        return answer(predict_fn(ids), token_count)

    @tf.function(input_signature=[text_spec])
    def serve(text):
        ids, tokens, token_count = encode_texts(tokenizer, text)
        outputs = model(ids, training=False)
        result = answer(outputs["probabilities"], token_count)
        result["tokens"] = tokens
        result["explanation"] = tf.ensure_shape(explain(tf.cast(outputs["attention"], tf.float32), ids),
                                                [None, max_length])
        return result

    shape = model.output["attention"].shape
    num_layers, num_heads = (int(shape[1]), int(shape[2])) if kind == "self" else (0, 0)
    index_specs = [tf.TensorSpec([None], tf.int32, name="layers"), tf.TensorSpec([None], tf.int32, name="heads")]
    @tf.function(input_signature=[text_spec] + index_specs)
    def attention(text, layers, heads):
        ids, tokens, token_count = encode_texts(tokenizer, text)
        outputs = model(ids, training=False)
        result = answer(outputs["probabilities"], token_count)
        result["tokens"] = tokens
        full = tf.cast(outputs["attention"], tf.float32)
        if kind == "self":
            full = select_indexes(full, layers, 1, num_layers, "layers")
            full = select_indexes(full, heads, 2, num_heads, "heads")
        else:
            check = tf.debugging.Assert(
                tf.equal(tf.shape(layers)[0] + tf.shape(heads)[0], 0),
                ["this model's attention is one [B, T] pooling distribution: send empty `layers` and `heads`"])
            with tf.control_dependencies([check]):
                full = tf.identity(full)
        result["attention"] = full
        return result

    return {SIGNATURE: serve, PREDICT: predict, ATTENTION: attention}


def make_serving_fn(model, vectorizer, class_names):
    """The `serving_default` tf.function alone (kept for callers of the single-signature export)."""
    return make_signatures(model, vectorizer, class_names)[SIGNATURE]


def warmup_texts(vectorizer):
    """A few requests for assets.extra/tf_serving_warmup_requests: batch 1, a mixed batch, a long text."""
    vocab = [t for t in vectorizer.vocabulary[2:] if t.strip() and not t.startswith("[")]
    words = vocab[:8] or ["hello"]
    long_text = " ".join((vocab or ["word"]) * (vectorizer.max_length // max(len(vocab), 1) + 2))
    long_text = " ".join(long_text.split()[: vectorizer.max_length + 8])
    return [
        [" ".join(words[:5])],
        [" ".join(words[:3]), " ".join(words[3:8]) or "hello", "", long_text],
        [long_text] * 8,
    ]


def _spec_text(spec):
    return "%s %s" % (spec.dtype.name, spec.shape.as_list())


def build(run, log=print, class_names=None):
    """Builds the export archive of a classifier run (model.keras + its tokenizer)."""
    import keras

    run.require(*REQUIRED_FILES)
    tokenizer = load_tokenizer(run)
    model = run.load_keras_model()
    names = class_names_of(run, class_names)
    outputs = model.output if isinstance(model.output, dict) else {}
    if "probabilities" not in outputs or "attention" not in outputs:
        raise ExportError("%s: model.keras must return a dict with \"probabilities\" and \"attention\" (has %s)"
                          % (run.path, sorted(outputs) or type(model.output).__name__))
    num_classes = int(outputs["probabilities"].shape[-1])
    if len(names) != num_classes:
        raise ExportError("%s: the model has %d classes but %d class names were found (%s); pass the right "
                          "ones with --class-names" % (run.path, num_classes, len(names), ", ".join(names)))
    model_length = model.input.shape[1] if not isinstance(model.input, (list, dict)) else None
    if model_length is not None and model_length != tokenizer.max_length:
        raise ExportError("%s: model.keras takes %s tokens but the tokenizer pads to %d"
                          % (run.path, model_length, tokenizer.max_length))

    signatures = make_signatures(model, tokenizer, names, predict_fn=attention_free_forward(run.kind, model))
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(tokenizer)
    for name in SIGNATURES:  # the first endpoint is also aliased as serving_default
        archive.add_endpoint(name, signatures[name])
    warmup = []
    for batch in warmup_texts(tokenizer):
        text = np.array(batch, dtype=object)
        warmup += [(SIGNATURE, {INPUT: text}), (PREDICT, {INPUT: text})]
    warmup.append((ATTENTION, {INPUT: np.array(warmup_texts(tokenizer)[1], dtype=object),
                               "layers": np.zeros([0], np.int32), "heads": np.zeros([0], np.int32)}))
    kind = attention_kind(model)
    description = {
        "signature": SIGNATURE,
        "signatures": list(SIGNATURES),
        "inputs": {INPUT: "string [None]"},
        "outputs": {k: _spec_text(v) for k, v in
                    sorted(signatures[SIGNATURE].get_concrete_function().structured_outputs.items())},
        "signature_outputs": {
            name: {k: _spec_text(v) for k, v in sorted(fn.get_concrete_function().structured_outputs.items())}
            for name, fn in signatures.items()},
        "explanation": ("pooling weights" if kind == "pooling" else
                        "attention rollout, %s row" % ("mean-pooled" if pooled_position(model) == "mean"
                                                       else "[CLS] (first token)")),
        "class_names": names,
        "max_length": int(tokenizer.max_length),
    }
    return ClassifierExport(archive, signatures, warmup, description)
