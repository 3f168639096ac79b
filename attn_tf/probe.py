"""The attention of any text, without training: BertViz's use case inside TensorBoard.

    python -m attn_tf.probe --pretrained minilm --text "..." [--text ...] [--file FILE] --logdir DIR
    python -m attn_tf.probe RUN_DIR             --text "..." [--text ...] [--file FILE] --logdir DIR

`--pretrained minilm`: all-MiniLM-L6-v2 as pretrained (no head): the 6 x 12
self-attention maps over its word pieces ([CLS] ... [SEP]).
`RUN_DIR`: a finished train.py run of any model. Classifiers: the attention
the model returns, with its prediction and class probabilities. Seq2seq
models: the greedy decoded output and the attention along it (the decoder
teacher-forced on its own output, which reproduces the decoding's attention):
cross-attention, and for the Transformer its self-attention too.

The texts' attention is written in the Attention tab's summary format
(`tb_plugin.metadata`, one tag per text: attention/probe_000, ...; step 0)
into a new run directory DIR/<--run-name, default probe-<model>-<timestamp>>,
so earlier probes stay as they are:

    tensorboard --logdir DIR --samples_per_plugin=attention=0

`--file FILE`: one text per line (blank lines skipped), after the --text ones.
`--merge-word-pieces` (WordPiece models): word-level maps instead of pieces,
keys summed and queries averaged over a word's pieces (`attn_tf.data.wordpiece.
merge_word_pieces`). Bad input (no text, an empty text, a missing file, a
path that is not a finished run) prints one message and exits with status 2.
"""

import argparse
import datetime
import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from attn_tf.errors import UsageError  # noqa: E402

PRETRAINED = ("minilm",)
DEFAULT_PRETRAINED_LENGTH = 128


def build_parser():
    p = argparse.ArgumentParser(prog="python -m attn_tf.probe",
                                description="Write the attention of given texts for the TensorBoard Attention tab.")
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR", default=None,
                   help="a finished train.py run (any model); or use --pretrained")
    p.add_argument("--pretrained", choices=PRETRAINED, default=None,
                   help="a pretrained model instead of a run: minilm (all-MiniLM-L6-v2)")
    p.add_argument("--text", action="append", default=[], metavar="TEXT", help="a text to probe (repeatable)")
    p.add_argument("--file", default=None, metavar="FILE", help="a UTF-8 file with one text per line")
    p.add_argument("--logdir", required=True, metavar="DIR", help="where the probe's run directory is created")
    p.add_argument("--run-name", default=None, help="name of that run directory (default probe-<model>-<time>)")
    p.add_argument("--max-length", type=int, default=None,
                   help="pieces kept per text with --pretrained, [CLS]/[SEP] included (default %d); "
                        "a run uses its own" % DEFAULT_PRETRAINED_LENGTH)
    p.add_argument("--merge-word-pieces", action="store_true",
                   help="WordPiece models: merge pieces into words (keys summed, queries averaged)")
    return p


def read_texts(texts, path):
    """The --text values then the non-blank lines of --file; UsageError for nothing or an empty text."""
    out = []
    for i, t in enumerate(texts):
        if not t.strip():
            raise UsageError("--text number %d is empty; give a text with at least one word" % (i + 1))
        out.append(t)
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                out.extend(line.rstrip("\n") for line in f if line.strip())
        except FileNotFoundError:
            raise UsageError("--file %s does not exist; pass a UTF-8 text file with one text per line" % path) from None
        except UnicodeDecodeError as e:
            raise UsageError("--file %s is not UTF-8 text (%s); save it as UTF-8" % (path, e)) from None
        except OSError as e:
            raise UsageError("--file %s cannot be read (%s)" % (path, e)) from None
    if not out:
        raise UsageError("no text to probe: pass --text \"...\" (repeatable) or --file FILE")
    return out


def _new_dir(logdir, run_name, model):
    if run_name is None:
        run_name = "probe-%s-%s" % (re.sub(r"[^A-Za-z0-9_.-]+", "_", model),
                                    datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    path = os.path.join(logdir, run_name)
    base, n = path, 1
    while os.path.exists(path):
        n += 1
        path = "%s_%d" % (base, n)
    try:
        os.makedirs(path)
    except OSError as e:
        raise UsageError("cannot create %s (%s); pass a writable --logdir" % (path, e)) from None
    return path


def _merge(tokens, header_layers, arrays):
    """Word-level version of self-attention layers over one token sequence."""
    from attn_tf.data.wordpiece import merge_word_pieces
    from tb_plugin import metadata

    words, layers, merged = None, [], []
    for layer, arr in zip(header_layers, arrays):
        words, m = merge_word_pieces(tokens, arr)
        merged.append(m)
        layers.append(metadata.make_layer(layer["name"], layer["kind"], m.shape, query=layer["query"],
                                          key=layer["key"]))
    return words, layers, merged


def _empty_rows(counts, texts):
    empty = [i for i, c in enumerate(counts) if int(c) == 0]
    if empty:
        raise UsageError("text %d (%r) has no token the model knows how to read; give it some words"
                         % (empty[0] + 1, texts[empty[0]][:40]))


def probe_pretrained(name, texts, max_length=None, merge=False, log=print):
    """[(header, arrays)] of the texts under the pretrained model `name`."""
    import numpy as np

    from attn_tf.data.wordpiece import WordPieceVectorizer
    from attn_tf.models.minilm import minilm_backbone
    from attn_tf.pretrained.minilm import MINILM, minilm_vocabulary
    from attn_tf.training import probes as probes_lib
    from tb_plugin import metadata

    max_length = max_length or DEFAULT_PRETRAINED_LENGTH
    try:
        vectorizer = WordPieceVectorizer(minilm_vocabulary(), max_length=max_length)
    except ValueError as e:
        raise UsageError("--max-length: %s" % e) from None
    ids, counts = vectorizer(texts)
    ids, counts = ids.numpy(), counts.numpy()
    _empty_rows(counts, texts)
    truncated = int(np.sum(counts > max_length))
    log("%d text%s; %d truncated to %d word pieces" % (len(texts), "" if len(texts) == 1 else "s", truncated,
                                                     max_length))
    backbone = minilm_backbone(max_length=max_length)
    attention = np.asarray(backbone(ids, training=False)["attention"])
    records = []
    for i, text in enumerate(texts):
        tokens = vectorizer.ids_to_tokens(ids[i])[0]
        layers = probes_lib.attention_layers(attention[i], len(tokens))
        arrays = [arr for _, _, arr in layers]
        header_layers = [metadata.make_layer(n, k, a.shape) for n, k, a in layers]
        if merge:
            tokens, header_layers, arrays = _merge(tokens, header_layers, arrays)
        extra = {"model": MINILM.name, "pretrained": True, "token_count": int(counts[i]),
                 "truncated": bool(counts[i] > max_length), "word_pieces": "merged" if merge else "as is"}
        records.append((metadata.make_header({"input": tokens}, header_layers, text=text, extra=extra), arrays))
    return records


def probe_classifier(run_dir, config, texts, merge=False, log=print):
    import keras
    import numpy as np

    import attn_tf.layers  # noqa: F401  (registers the layers for load_model)
    from attn_tf.training import probes as probes_lib

    tokenizer = load_run_tokenizer(run_dir, config)
    ids, counts = tokenizer(texts)
    ids, counts = ids.numpy(), counts.numpy()
    _empty_rows(counts, texts)
    log("%d text%s; %d truncated to %d tokens" % (len(texts), "" if len(texts) == 1 else "s",
                                                int(np.sum(counts > tokenizer.max_length)), tokenizer.max_length))
    model = keras.saving.load_model(os.path.join(run_dir, "model.keras"), compile=False)
    out = model(ids, training=False)
    probs, attention = np.asarray(out["probabilities"]), np.asarray(out["attention"])
    class_names = config.get("class_names") or [str(c) for c in range(probs.shape[-1])]
    token_lists = tokenizer.tokens_for(texts)
    records = []
    for i, text in enumerate(texts):
        tokens = token_lists[i]
        header, arrays = probes_lib.probe_record(tokens, attention[i], probs[i], None, class_names, text=text)
        if merge and attention.ndim == 5:
            words, layers, arrays = _merge(tokens, header["layers"], arrays)
            from tb_plugin import metadata

            header = metadata.make_header({"input": words}, layers, text=text, prediction=header["prediction"],
                                          probabilities=header["probabilities"], class_names=class_names)
        header.setdefault("extra", {}).update({"model": config["model"], "run": os.path.abspath(run_dir),
                                               "token_count": int(counts[i])})
        records.append((header, arrays))
    return records


def load_run_tokenizer(run_dir, config):
    """The tokenizer a classifier run saved (its registry entry knows which)."""
    from attn_tf.models import registry

    return registry.get(config["model"]).saved_tokenizer(run_dir, config)


def probe_seq2seq(run_dir, config, texts, log=print):
    """Greedy decoding of each text, and the attention along the decoded output."""
    import tensorflow as tf

    from attn_tf.training.seq2seq_trainer import Seq2SeqProbes, Translator, decode_max_length, load_run

    config, model, source_vocab, target_vocab = load_run(run_dir)
    src_tokens = source_vocab.tokens_for(texts)
    empty = [i for i, t in enumerate(src_tokens) if not t]
    if empty:
        raise UsageError("text %d (%r) has no source token; give it some characters or words"
                         % (empty[0] + 1, texts[empty[0]][:40]))
    translator = Translator(model, source_vocab, target_vocab, decode_max_length(config))
    decoded = translator(texts)
    # The training-time probe records (one owner of the layout), teacher-forced on the model's own
    # greedy output instead of a reference: that reproduces the attention of the decoding itself.
    records = []
    for _, header, arrays in Seq2SeqProbes(model, source_vocab, target_vocab, texts, decoded, translator)(0):
        header["label"] = None  # there is no reference for a free text
        header["extra"] = {"task": "seq2seq", "teacher_forced": False, "decoded": "greedy",
                           "model": config["model"], "run": os.path.abspath(run_dir)}
        records.append((header, arrays))
    log("%d text%s decoded" % (len(texts), "" if len(texts) == 1 else "s"))
    return records


def _run_config(run_dir):
    import json

    config_path = os.path.join(run_dir, "config.json")
    if not os.path.isdir(run_dir) or not os.path.isfile(config_path):
        raise UsageError("%s is not a run directory (no config.json); pass a directory made by train.py, or "
                         "--pretrained minilm" % run_dir)
    try:
        with open(config_path) as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError("%s is unreadable or not JSON (%s)" % (config_path, e)) from None
    if not isinstance(config, dict) or not config.get("model"):
        raise UsageError("%s has no \"model\" entry; it was not written by train.py" % config_path)
    if not os.path.isfile(os.path.join(run_dir, "model.keras")):
        raise UsageError("%s has no model.keras: the run has not finished; finish it with "
                         "`python train.py --resume %s` or probe a finished run" % (run_dir, run_dir))
    return config


def _is_seq2seq(config):
    from attn_tf.models import registry

    try:
        return registry.get(config["model"]).task == registry.SEQ2SEQ
    except registry.UnknownModel as e:
        raise UsageError("%s: %s" % (os.path.join("RUN_DIR", "config.json"), e)) from None


def write(records, path):
    """Writes one tag per text (attention/probe_000, ...) at step 0 into the run directory `path`."""
    from tb_plugin import metadata
    from tb_plugin.summary import AttentionEventWriter

    with AttentionEventWriter(path) as writer:
        for i, (header, arrays) in enumerate(records):
            writer.add(header, arrays, step=0, tag=metadata.probe_tag(i))


def run(args, log=print):
    """Probes the texts of `args`; returns the directory written."""
    if (args.run_dir is None) == (args.pretrained is None):
        raise UsageError("pass either RUN_DIR (a train.py run) or --pretrained minilm, not %s"
                         % ("both" if args.run_dir else "neither"))
    if args.max_length is not None and args.max_length < 3:
        raise UsageError("--max-length must be at least 3 ([CLS], a piece, [SEP]), got %d" % args.max_length)
    texts = read_texts(args.text, args.file)
    from attn_tf.data import DataError

    try:
        if args.pretrained:
            records = probe_pretrained(args.pretrained, texts, args.max_length, args.merge_word_pieces, log=log)
            name = args.pretrained
        else:
            config = _run_config(args.run_dir)
            if args.max_length is not None:
                raise UsageError("--max-length applies to --pretrained; a run uses its own (%s)"
                                 % config.get("max_length"))
            if _is_seq2seq(config):
                if args.merge_word_pieces:
                    raise UsageError("--merge-word-pieces applies to WordPiece models, not %s" % config["model"])
                records = probe_seq2seq(args.run_dir, config, texts, log=log)
            else:
                records = probe_classifier(args.run_dir, config, texts, args.merge_word_pieces, log=log)
            name = os.path.basename(os.path.normpath(args.run_dir))
    except DataError as e:
        raise UsageError(str(e)) from None
    path = _new_dir(args.logdir, args.run_name, name)
    write(records, path)
    log("Wrote the attention of %d text%s to %s (view with: tensorboard --logdir %s "
        "--samples_per_plugin=attention=0)" % (len(records), "" if len(records) == 1 else "s", path, args.logdir))
    return path


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except UsageError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
