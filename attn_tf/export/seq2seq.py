"""The signatures of seq2seq runs (seq2seq_gru, seq2seq_transformer): translate (= serving_default), predict,
attention.

translate, also serving_default (unchanged; the default and compact form):
    text: tf.string [B]  ->  {
      "translation":     string  [B]             the output text ("" for an empty input),
      "tokens":          string  [B, T_out]      output tokens, "[END]" included, "" padding,
      "source_tokens":   string  [B, S]          the model's source tokens (case-folded,
                                                 truncated to max_length), "" padding,
      "cross_attention": float32 [B, T_out, S]   row t: the attention over the source tokens
                                                 when output token t was produced (zeros on
                                                 padding), seq2seq_transformer: the last
                                                 decoder block, mean over heads,
    }

predict (translation only):  text [B] -> {"translation": string [B]}. The same decoding; no attention is
    returned (a response is one string per text). The decode loop still computes the cross-attention the
    decoder itself needs (the GRU's context, the Transformer's cross-attention blocks).

attention (the full tensors): text [B], layers int32 [n], heads int32 [n] (empty = all) -> translate's
    "translation", "tokens", "source_tokens" and
      "cross_attention": float32 [B, len(layers), len(heads), T_out, S]: every decoder block's cross-
                         attention per head (seq2seq_gru: one layer, one head), computed by one teacher-forced
                         pass over the decoded output ([START] + output tokens), which is exactly what
                         the decoder attended to at each step; rows after [END] are 0. Its mean over the
                         heads of the last layer (GRU: the one map) is translate's "cross_attention".
    An index out of range is an InvalidArgumentError naming the valid range (HTTP 400).

T_out is the longest output of the request (at most max_length + 1) and S its
longest source; clients trim rows with the "" padding of `tokens` and
`source_tokens` (also needed with server-side batching, which pads [B, T]
outputs to the longest request of the merged batch). Decoding (greedy, or
beam search with the run's --beam-size) is one tf.while_loop inside the
signature (`attn_tf.decoding`), with early exit when every row has finished,
interpreted by default (no XLA op: stock TF Serving runs it). With
`build(..., jit_compile=True)` (`python -m attn_tf.export RUN --xla`) the search is
compiled whole with XLA (the same ids as the interpreted loop, tested; about half
the CPU time per greedy batch): the graph then holds a function marked
`_XlaMustCompile`, which `tf.saved_model.load` runs in any TensorFlow process
(tensorflow + tensorflow_text imported), and TF Serving only with
`--xla_cpu_compilation_enabled=true` (experimental there; without it the first
request fails). XLA compiles once per padded request shape (batch rounded up to a
power of two, source length to a multiple of 8): the first request of each shape
takes seconds.

Empty input: a text without any source token (empty or white space only)
is not decoded: translation "", no output tokens, zero attention. If every
text of a request is empty, T_out is 0 and S is 1 (one "" source token). An
empty request (B = 0) gives empty outputs. Invalid UTF-8 bytes become U+FFFD
(an unknown token), never an error.

Registered through the model registry (exporter "seq2seq"); `export_run(run_dir, ...,
beam_size=K)` overrides the run's beam size (used by bench/decode_throughput.py).
`export_run(run_dir, ensemble_with=[other runs])` (`--ensemble-with`) exports the runs as one
`Seq2SeqEnsemble` (the mean of their next-token probabilities), with the same signatures; its
`attention` signature has one layer and one head: the mean of the members' maps as translate gives them.
"""

import numpy as np

from attn_tf.export.run import MODEL, ExportError

SIGNATURE = "translate"
PREDICT = "predict"
ATTENTION = "attention"
SIGNATURES = ("serving_default", SIGNATURE, PREDICT, ATTENTION)
INPUT = "text"
OUTPUTS = ("translation", "tokens", "source_tokens", "cross_attention")
SOURCE_VOCAB = "source_vocab.json"
TARGET_VOCAB = "target_vocab.json"
REQUIRED_FILES = (MODEL, SOURCE_VOCAB, TARGET_VOCAB)


class Seq2SeqExport:
    """What export_run needs: the archive to write, warmup requests, a description."""

    signature_name = "serving_default"

    def __init__(self, archive, serve, warmup_inputs, description, signatures=None):
        self.archive = archive
        self.serve = serve
        self.signatures = signatures or {SIGNATURE: serve}
        self.warmup_inputs = warmup_inputs
        self.description = description


def make_translate_fn(model, source_vocab, target_vocab, max_length, beam_size=1, length_penalty=0.6,
                      jit_compile=True):
    """The traced tf.function behind `translate` (also used in memory by tests and the benchmark).

    Args:
      model: a seq2seq model with the decoding API of `attn_tf.decoding`.
      source_vocab, target_vocab: the run's `SequenceVocabulary`s.
      max_length: the most output tokens ([END] included).
      beam_size, length_penalty: the search (1 = greedy).
      jit_compile: decode with the XLA-compiled search (`attn_tf.decoding.compiled`, the same ids);
        False: the interpreted tf.while_loop (a graph without XLA ops).
    Returns:
      a `tf.function` text [B] -> the outputs of `translate` (module docstring).
    """
    import tensorflow as tf

    from attn_tf.decoding import decode
    from attn_tf.decoding.greedy import at_least_one_column

    source_length = source_vocab.max_length

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=INPUT)])
    def translate(text):
        ids, _ = source_vocab.encode(text)
        ids = at_least_one_column(ids)  # as decode() does: S >= 1 even if every text is empty
        # The ids and the tokens have the same width: the longest kept row (at least 1).
        source_tokens = source_vocab.tokenize(text)[:, :source_length].to_tensor(
            default_value="", shape=tf.shape(ids))
        out = decode(model, ids, max_length, beam_size=beam_size, length_penalty=length_penalty,
                     jit_compile=jit_compile)
        return {
            "translation": target_vocab.decode(out["ids"]),
            "tokens": target_vocab.id_to_token(out["ids"]),
            "source_tokens": source_tokens,
            "cross_attention": tf.cast(out["attention"], tf.float32),
        }

    return translate


def model_size(model):
    """(decoder layers, heads) of the full cross-attention: Transformer blocks x heads; 1 x 1 for the GRU."""
    blocks = getattr(model, "decoder_blocks", None)
    return (len(blocks), int(model.num_heads)) if blocks else (1, 1)


def make_signatures(model, source_vocab, target_vocab, max_length, beam_size=1, length_penalty=0.6,
                    jit_compile=True):
    """The traced tf.functions {"translate", "predict", "attention"} (also used in memory by the tests).

    Arguments as for `make_translate_fn`; every signature decodes the same way.
    """
    import tensorflow as tf

    from attn_tf.data.seq2seq_vocab import PAD_ID, START_ID
    from attn_tf.decoding import decode
    from attn_tf.decoding.greedy import at_least_one_column
    from attn_tf.export.classifier import select_indexes

    translate = make_translate_fn(model, source_vocab, target_vocab, max_length, beam_size=beam_size,
                                  length_penalty=length_penalty, jit_compile=jit_compile)
    source_length = source_vocab.max_length
    num_layers, num_heads = model_size(model)
    text_spec = tf.TensorSpec([None], tf.string, name=INPUT)

    @tf.function(input_signature=[text_spec])
    def predict(text):
        ids, _ = source_vocab.encode(text)
        out = decode(model, at_least_one_column(ids), max_length, beam_size=beam_size,
                     length_penalty=length_penalty, jit_compile=jit_compile)
        return {"translation": target_vocab.decode(out["ids"])}

    @tf.function(input_signature=[text_spec, tf.TensorSpec([None], tf.int32, name="layers"),
                                  tf.TensorSpec([None], tf.int32, name="heads")])
    def attention(text, layers, heads):
        ids, _ = source_vocab.encode(text)
        ids = at_least_one_column(ids)
        source_tokens = source_vocab.tokenize(text)[:, :source_length].to_tensor(
            default_value="", shape=tf.shape(ids))
        out = decode(model, ids, max_length, beam_size=beam_size, length_penalty=length_penalty,
                     jit_compile=jit_compile)
        output_ids = tf.cast(out["ids"], tf.int32)
        steps = tf.shape(output_ids)[1]
        # Teacher forcing on the decoded output: [START] y1 .. y_{n-1} (at least one column, so
        # that a request where nothing was decoded still runs; cut back to T_out = 0 below).
        start = tf.fill([tf.shape(output_ids)[0], 1], tf.constant(START_ID, tf.int32))
        target_in = tf.concat([start, output_ids[:, :-1]], axis=1)
        full = tf.cast(model.attention_maps(ids, target_in)["cross"], tf.float32)[:, :, :, :steps]
        produced = tf.cast(tf.not_equal(output_ids, PAD_ID), tf.float32)  # 0 after [END]
        full = full * produced[:, None, None, :, None]
        full = select_indexes(full, layers, 1, num_layers, "layers")
        full = select_indexes(full, heads, 2, num_heads, "heads")
        return {
            "translation": target_vocab.decode(out["ids"]),
            "tokens": target_vocab.id_to_token(out["ids"]),
            "source_tokens": source_tokens,
            "cross_attention": full,
        }

    return {SIGNATURE: translate, PREDICT: predict, ATTENTION: attention}


def warmup_texts(source_vocab):
    """A few requests for assets.extra/tf_serving_warmup_requests."""
    vocab = [t for t in source_vocab.vocabulary[4:] if t.strip()] or ["a"]
    sep = source_vocab.separator
    short = sep.join(vocab[:5])
    longer = sep.join((vocab * 4)[: min(source_vocab.max_length, 24)])
    return [[short], [short, "", longer, sep.join(vocab[:2])], [longer] * 8]


def load_vocabularies(run):
    from attn_tf.data import DataError
    from attn_tf.data.seq2seq_vocab import SequenceVocabulary

    try:
        return (SequenceVocabulary.load(run.file(SOURCE_VOCAB)), SequenceVocabulary.load(run.file(TARGET_VOCAB)))
    except DataError as e:
        raise ExportError(str(e)) from e


def default_name(run, ensemble_with=(), **_):
    """<model>-<dataset>; an ensemble: seq2seq_ensemble-<dataset> (a different model from the run's own)."""
    from attn_tf.export.run import safe_name

    return safe_name("seq2seq_ensemble-%s" % run.dataset_name()) if ensemble_with else run.default_name()


def _members(run, ensemble_with):
    """(model, source_vocab, target_vocab, max_length config value, member paths) of a run or an ensemble."""
    from attn_tf.export import exporter_for
    from attn_tf.export.run import RunDir
    from attn_tf.models.seq2seq_ensemble import Seq2SeqEnsemble, check_members

    runs = [run] + [RunDir(path) for path in ensemble_with]
    for member in runs:
        if exporter_for(member).__name__ != __name__:
            raise ExportError("%s is a %s run: an ensemble's members are seq2seq runs" % (member.path, member.kind))
        member.require(*REQUIRED_FILES)
    vocabularies = [load_vocabularies(member) for member in runs]
    max_length = int(run.config["max_length"])
    if len(runs) > 1:
        max_length = check_members([(m.path, m.config, s, t) for m, (s, t) in zip(runs, vocabularies)])
    models = [member.load_keras_model() for member in runs]
    model = models[0] if len(models) == 1 else Seq2SeqEnsemble(models)
    source_vocab, target_vocab = vocabularies[0]
    return model, source_vocab, target_vocab, max_length, [m.path for m in runs]


def build(run, log=print, beam_size=None, length_penalty=None, jit_compile=False, ensemble_with=()):
    """Builds the export archive of a seq2seq run (model.keras + the two vocabularies).

    Args:
      run: the `RunDir`.
      log: progress messages.
      beam_size, length_penalty: override the run's search (default: its --beam-size, --length-penalty).
      jit_compile: False (default): the interpreted loop, no XLA op in the graph (any TF Serving);
        True: XLA-compiled decoding (TF Serving then needs `--xla_cpu_compilation_enabled=true`).
      ensemble_with: paths of more seq2seq runs (same data split and vocabularies) to decode together with
        `run` as one model, the mean of their next-token probabilities (`attn_tf.models.seq2seq_ensemble`);
        `run` gives the search settings.
    Returns:
      a `Seq2SeqExport`.
    """
    import keras

    import attn_tf.models.seq2seq_gru  # noqa: F401  (registers the model classes)
    import attn_tf.models.seq2seq_transformer  # noqa: F401
    from attn_tf.decoding.settings import beam_size as run_beam_size
    from attn_tf.decoding.settings import decode_max_length
    from attn_tf.decoding.settings import length_penalty as run_length_penalty

    model, source_vocab, target_vocab, max_length, members = _members(run, list(ensemble_with or ()))
    beam = run_beam_size(run.config) if beam_size is None else int(beam_size)
    if beam < 1:
        raise ExportError("beam size must be >= 1, got %d" % beam)
    penalty = run_length_penalty(run.config) if length_penalty is None else float(length_penalty)
    max_length = decode_max_length(dict(run.config, max_length=max_length))
    signatures = make_signatures(model, source_vocab, target_vocab, max_length, beam_size=beam,
                                 length_penalty=penalty, jit_compile=bool(jit_compile))
    translate = signatures[SIGNATURE]
    archive = keras.export.ExportArchive()
    # The variables the endpoint uses are tracked by add_endpoint; tracking the
    # model itself would make write_out walk (and trace) every Keras layer.
    archive.track(source_vocab)
    archive.track(target_vocab)
    for name in (SIGNATURE, PREDICT, ATTENTION):  # the first endpoint is also "serving_default"
        archive.add_endpoint(name, signatures[name])
    batches = [np.array(batch, dtype=object) for batch in warmup_texts(source_vocab)]
    warmup = [{INPUT: b} for b in batches] + [(PREDICT, {INPUT: b}) for b in batches]
    warmup.append((ATTENTION, {INPUT: batches[1], "layers": np.zeros([0], np.int32),
                               "heads": np.zeros([0], np.int32)}))
    spec = translate.get_concrete_function().structured_outputs
    description = {
        "signature": "serving_default",
        "signatures": list(SIGNATURES),
        "signature_outputs": {
            name: {k: "%s %s" % (v.dtype.name, v.shape.as_list())
                   for k, v in sorted(fn.get_concrete_function().structured_outputs.items())}
            for name, fn in signatures.items()},
        "inputs": {INPUT: "string [None]"},
        "outputs": {k: "%s %s" % (v.dtype.name, v.shape.as_list()) for k, v in sorted(spec.items())},
        "beam_size": beam,
        "length_penalty": penalty if beam > 1 else None,
        "max_output_length": max_length,
        "decoder": "xla" if jit_compile else "interpreted",
        "max_source_length": source_vocab.max_length,
    }
    if len(members) > 1:
        description["ensemble_of"] = members
    log("Seq2seq export: %s decoding (%s), at most %d output tokens" % (
        "greedy" if beam == 1 else "beam search (%d beams)" % beam,
        "XLA-compiled" if jit_compile else "interpreted", max_length))
    return Seq2SeqExport(archive, translate, warmup, description, signatures)
