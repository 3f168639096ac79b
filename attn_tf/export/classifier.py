"""The `serving_default` signature of the text classifiers (bilstm_attention, transformer).

    text: tf.string [B]  ->  {
      "probabilities": float32 [B, C]   softmax over the classes,
      "label":         string  [B]      class name of the argmax ("" when the text has no token),
      "tokens":        string  [B, T]   the model's tokens (case-folded, truncated to T), "" padded,
      "token_count":   int32   [B]      tokens BEFORE truncation (> T: the text was truncated),
      "attention":     float32 [B, T] (bilstm_attention: pooling weights) or
                       [B, L, H, T, T] (transformer: self-attention of every block),
    }

T is the run's max_length. Texts without any token (empty, whitespace only):
token_count 0, uniform probabilities (1/C each), label "" and all-zero
attention, never a confident answer; see README.md, section 'Serve with TF Serving'. Invalid UTF-8 bytes
are replaced by U+FFFD before tokenization (never an error).
"""

import os

import numpy as np

from attn_tf.export.run import CLASS_NAMES, MODEL, VECTORIZER, ExportError

SIGNATURE = "serving_default"
INPUT = "text"
OUTPUTS = ("probabilities", "label", "tokens", "token_count", "attention")
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
    from attn_tf.training.trainer import load_data

    try:
        return list(load_data(run.config).class_names)
    except (DataError, KeyError, OSError) as e:
        raise ExportError(
            "cannot find the class names of %s: config.json has no \"class_names\", there is no %s, and "
            "loading the training data again failed (%s). Pass them in class-id order with "
            "--class-names NAME,NAME,..." % (run.path, CLASS_NAMES, e)) from e


class ClassifierExport:
    """What export_run needs: the archive to write, warmup requests, a description."""

    signature_name = SIGNATURE

    def __init__(self, archive, serve, warmup_inputs, description):
        self.archive = archive
        self.serve = serve
        self.warmup_inputs = warmup_inputs
        self.description = description


def make_serving_fn(model, vectorizer, class_names):
    """The traced tf.function behind `serving_default` (also used by the benchmark)."""
    import tensorflow as tf

    max_length = vectorizer.max_length
    num_classes = len(class_names)
    names = tf.constant(class_names, dtype=tf.string)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT)])
    def serve(text):
        tokens = vectorizer.tokenize(text)  # ragged [B, (n)], U+FFFD for invalid UTF-8
        token_count = tf.cast(tokens.row_lengths(), tf.int32)
        kept = tokens[:, :max_length]
        ids = vectorizer.lookup(kept).to_tensor(default_value=0, shape=[None, max_length])
        outputs = model(ids, training=False)
        probabilities = tf.cast(outputs["probabilities"], tf.float32)
        attention = tf.cast(outputs["attention"], tf.float32)

        # No token: no evidence. Answer "don't know" (uniform, label "") instead
        # of whatever the biases say. The attention of such a row is already all
        # zero (attn_tf masking: a fully masked row gets zero weights; tested),
        # so the [B, L, H, T, T] tensor is not copied again here.
        empty = tf.equal(token_count, 0)
        probabilities = tf.where(empty[:, None], tf.fill(tf.shape(probabilities), 1.0 / num_classes),
                                 probabilities)
        label = tf.where(empty, tf.constant("", tf.string),
                         tf.gather(names, tf.argmax(probabilities, axis=-1, output_type=tf.int32)))
        return {
            "probabilities": tf.ensure_shape(probabilities, [None, num_classes]),
            "label": label,
            "tokens": kept.to_tensor(default_value="", shape=[None, max_length]),
            "token_count": token_count,
            "attention": attention,
        }

    return serve


def warmup_texts(vectorizer):
    """A few requests for assets.extra/tf_serving_warmup_requests: batch 1, a mixed batch, a long text."""
    vocab = [t for t in vectorizer.vocabulary[2:] if t.strip()]
    words = vocab[:8] or ["hello"]
    long_text = " ".join((vocab or ["word"]) * (vectorizer.max_length // max(len(vocab), 1) + 2))
    long_text = " ".join(long_text.split()[: vectorizer.max_length + 8])
    return [
        [" ".join(words[:5])],
        [" ".join(words[:3]), " ".join(words[3:8]) or "hello", "", long_text],
        [long_text] * 8,
    ]


def build(run, log=print, class_names=None):
    """Builds the export archive of a classifier run (model.keras + vectorizer.json)."""
    import keras

    from attn_tf.data import DataError, TextVectorizer

    run.require(*REQUIRED_FILES)
    try:
        vectorizer = TextVectorizer.load(run.file(VECTORIZER))
    except DataError as e:
        raise ExportError(str(e)) from e
    model = run.load_keras_model()
    names = class_names_of(run, class_names)
    num_classes = int(model.output["probabilities"].shape[-1])
    if len(names) != num_classes:
        raise ExportError("%s: the model has %d classes but %d class names were found (%s); pass the right "
                          "ones with --class-names" % (run.path, num_classes, len(names), ", ".join(names)))
    model_length = model.input.shape[1] if not isinstance(model.input, (list, dict)) else None
    if model_length is not None and model_length != vectorizer.max_length:
        raise ExportError("%s: model.keras takes %s tokens but vectorizer.json pads to %d"
                          % (run.path, model_length, vectorizer.max_length))

    serve = make_serving_fn(model, vectorizer, names)
    serve.get_concrete_function()
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(vectorizer)
    archive.add_endpoint(SIGNATURE, serve)
    warmup = [{INPUT: np.array(batch, dtype=object)} for batch in warmup_texts(vectorizer)]
    spec = serve.get_concrete_function().structured_outputs
    description = {
        "signature": SIGNATURE,
        "inputs": {INPUT: "string [None]"},
        "outputs": {k: "%s %s" % (v.dtype.name, v.shape.as_list()) for k, v in sorted(spec.items())},
        "class_names": names,
        "max_length": vectorizer.max_length,
    }
    return ClassifierExport(archive, serve, warmup, description)
