"""Command line of train.py. Flags are a documented contract (README "train.py flags")."""

import argparse

from attn_tf.training.devices import STRATEGIES

from attn_tf.dataset_names import canonical_dataset_name
from attn_tf.models import registry
from tb_plugin.metadata import STORAGES as ATTENTION_STORAGES

# The model names, their tasks and training defaults live in the registry
# (attn_tf.models.registry); these names are kept for existing imports.
CLASSIFIER_MODELS = registry.names(registry.CLASSIFIER)
SEQ2SEQ_MODELS = registry.names(registry.SEQ2SEQ)
MODELS = registry.names()
SEQ2SEQ_ATTENTION = ("additive", "dot", "general", "scaled")
AUGMENTATIONS = ("none", "noise")
# Faithful-attention options of bilstm_attention (issue 13); flag -> model option, given to the models
# whose registry entry lists it in `options`.
LSTM_VARIANTS = ("vanilla", "diversity", "orthogonal")
ATTENTION_NORMALIZERS = ("softmax", "sparsemax", "entmax15")
MODEL_OPTION_FLAGS = {"lstm": "--lstm", "conicity_weight": "--conicity-weight", "tying_weight": "--tying-weight",
                      "attention_normalizer": "--attention-normalizer"}

DEFAULT_BATCH_SIZE = 64  # unless the model's registry training defaults name one
DEFAULT_DATASET = {"classifier": "movie_reviews", "seq2seq": "cmudict"}

# Documents in the topic datasets are long (r8: median ~65 tokens, many over 200);
# sentences elsewhere fit in 64.
DATASET_MAX_LENGTH = {"r8": 256, "r52": 256, "20newsgroups": 256}


def _number(kind, ok, expected):
    """An argparse type: `kind(value)` that satisfies `ok`, else "expected <expected>, got ..."."""

    def parse(value):
        try:
            x = kind(value)
        except ValueError:
            x = None
        if x is None or not ok(x):
            raise argparse.ArgumentTypeError("expected %s, got %r" % (expected, value))
        return x

    parse.__name__ = expected.replace(" ", "_")  # argparse names the type in its message
    return parse


_positive_int = _number(int, lambda n: n > 0, "a positive integer")
_non_negative_int = _number(int, lambda n: n >= 0, "an integer >= 0")
_positive_float = _number(float, lambda x: x > 0, "a positive number")
_non_negative_float = _number(float, lambda x: x >= 0, "a number >= 0")


def _defaults_help(key, fallback=None):
    """The per-model defaults of training key `key`, written from the registry (their one owner).

    "bilstm_attention 4 (r8: 8); transformer 8; ..."; models that only inherit `fallback` are left out
    when `fallback` is given (the flag's help states it once).
    """
    parts = []
    for name in registry.names():
        table = registry.get(name).training or {}
        base = table.get("default", {}).get(key)
        per = ["%s: %s" % ("--data pairs" if ds == "user" else ds, "%g" % v[key])
               for ds, v in table.items() if ds != "default" and key in v and v[key] != base]
        if base is None and not per:
            continue
        if base is None or base == fallback:
            parts.append("%s (%s)" % (name, ", ".join(per)) if per else None)
        else:
            parts.append("%s %g" % (name, base) + (" (%s)" % ", ".join(per) if per else ""))
    return "; ".join(p for p in parts if p)


def build_parser():
    p = argparse.ArgumentParser(
        prog="train.py",
        description="Train an attention text classifier and log its attention for TensorBoard.",
    )
    p.add_argument("--model", choices=registry.names(), default="bilstm_attention",
                   help="model to train: " + "; ".join(
                       "%s (%s)" % (n, registry.get(n).description or registry.get(n).task)
                       for n in registry.names()))
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", default=None,
                     help="named dataset: movie_reviews (default), r8, r52, 20newsgroups; "
                          "for seq2seq models cmudict (default) or de_en")
    src.add_argument("--data", metavar="PATH", default=None,
                     help="your own CSV, TSV or JSONL file with a text and a label column "
                          "(seq2seq: a TSV of source<TAB>target pairs)")
    p.add_argument("--text-column", default="text", help="text column of --data (default: text)")
    p.add_argument("--label-column", default="label", help="label column of --data (default: label)")
    p.add_argument("--epochs", type=_positive_int, default=None,
                   help="training epochs (default: %s)" % _defaults_help("epochs"))
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="global batch size (default: %d; %s)" % (
                       DEFAULT_BATCH_SIZE, _defaults_help("batch_size", DEFAULT_BATCH_SIZE)))
    p.add_argument("--max-steps", type=_positive_int, default=None,
                   help="stop after this many optimizer steps in total (default: no limit)")
    p.add_argument("--learning-rate", type=_positive_float, default=None,
                   help="Adam learning rate, the peak of the model's schedule (default: %s)"
                        % _defaults_help("learning_rate"))
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--logdir", default="runs", help="parent directory of run directories (default: runs)")
    p.add_argument("--run-name", default=None,
                   help="run directory name (default: <model>-<dataset>-<timestamp>)")
    p.add_argument("--attention-every", type=_non_negative_int, default=50, metavar="N",
                   help="log probe attention every N optimizer steps; 0 disables (default: 50)")
    p.add_argument("--probe-examples", type=_non_negative_int, default=8, metavar="K",
                   help="number of fixed test examples whose attention is logged (default: 8)")
    p.add_argument("--attention-storage", choices=tuple(ATTENTION_STORAGES), default="float16",
                   help="how the probe attention is logged: float16 (exact, default; 2 bytes per weight) or "
                        "uint8 (each matrix 8-bit quantised: <= 1 byte per weight, its heatmap within 1/255 "
                        "of the matrix max)")
    p.add_argument("--max-length", type=_positive_int, default=None,
                   help="tokens kept per text; longer texts are truncated (default: %s; 64 otherwise; %s)" % (
                       "; ".join("%d for %s" % (n, ", ".join(d for d in DATASET_MAX_LENGTH if DATASET_MAX_LENGTH[d] == n))
                                 for n in sorted(set(DATASET_MAX_LENGTH.values()))),
                       _defaults_help("max_length")))
    p.add_argument("--vocab-size", type=_positive_int, default=20000,
                   help="largest vocabulary, reserved tokens included (default: 20000)")
    p.add_argument("--mixed-precision", action="store_true",
                   help="train in mixed_float16 (useful on GPUs; softmax stays float32)")
    p.add_argument("--strategy", choices=STRATEGIES, default="default",
                   help="tf.distribute strategy: default (one device), mirrored (all local GPUs), "
                        "multi_worker (TF_CONFIG)")
    p.add_argument("--resume", nargs="?", const="latest", default=None, metavar="RUN_DIR",
                   help="continue a run from its last checkpoint; without a value, the newest run "
                        "in --logdir")
    p.add_argument("--checkpoint-every", type=_non_negative_int, default=0, metavar="N",
                   help="also checkpoint every N optimizer steps, so a crash loses at most N steps and "
                        "--resume continues at the next batch; 0: at epoch ends only (default). "
                        "Ctrl-C always checkpoints the current step")
    p.add_argument("--no-export", dest="export", action="store_false",
                   help="do not write a TF Serving SavedModel under saved_models/ at the end")
    p.add_argument("--export-dir", default="saved_models",
                   help="parent directory of exported models (default: saved_models)")
    p.add_argument("--augment", choices=AUGMENTATIONS, default="none",
                   help="training-time text augmentation: noise = random character edits and word "
                        "drops/swaps (robustness remedy)")
    p.add_argument("--adversarial-training", action="store_true",
                   help="train on adversarial (HotFlip-style) perturbations as well (robustness remedy)")
    p.add_argument("--lstm", choices=LSTM_VARIANTS, default=None,
                   help="bilstm_attention encoder: vanilla (default), diversity (LSTM + conicity penalty) or "
                        "orthogonal (Orthogonal LSTM); Mohankumar et al. 2020")
    p.add_argument("--conicity-weight", type=_non_negative_float, default=None, metavar="X",
                   help="bilstm_attention: weight of the conicity penalty (default 1.0 with --lstm diversity, "
                        "0 otherwise)")
    p.add_argument("--tying-weight", type=_non_negative_float, default=None, metavar="X",
                   help="bilstm_attention: weight of the word-level tying penalty (Tutek & Snajder 2020; "
                        "default 0 = off)")
    p.add_argument("--attention-normalizer", choices=ATTENTION_NORMALIZERS, default=None,
                   help="bilstm_attention and transformer (every block): how attention scores become weights: "
                        "softmax (default), sparsemax or entmax15 (exact zeros on unused words)")
    p.add_argument("--faithfulness-every", type=_non_negative_int, default=1, metavar="N",
                   help="classifiers: log faithfulness/* scalars (tau attention vs gradient and LOO, AOPC of "
                        "attention and random, entropy ratio) on validation examples every N epochs; "
                        "0 disables (default: 1)")
    p.add_argument("--faithfulness-samples", type=_positive_int, default=100, metavar="K",
                   help="validation examples of the faithfulness curve (default: 100)")
    p.add_argument("--attention", choices=SEQ2SEQ_ATTENTION, default="additive",
                   help="seq2seq_gru attention score: additive (Bahdanau, default), dot, general, scaled")
    p.add_argument("--beam-size", type=_positive_int, default=None,
                   help="seq2seq decoding of the test split and the export: 1 = greedy, >1 = beam search "
                        "(default: the model's registry default for the dataset, e.g. 4 for de_en, else 1)")
    p.add_argument("--length-penalty", type=_non_negative_float, default=None, metavar="ALPHA",
                   help="beam search length penalty alpha (GNMT: score / ((5 + n) / 6) ** alpha; 0 = none); "
                        "default: the registry's value for the dataset, else 0.6")
    p.add_argument("--phrases-per-epoch", type=_non_negative_int, default=None, metavar="N",
                   help="de_en: dictionary word/phrase pairs mixed into each training epoch (a fresh sample, "
                        "tokenized with the sentences' vocabularies; default: the model's registry default for "
                        "de_en, e.g. 10000 for seq2seq_gru; 0 = none)")
    p.add_argument("--average-epochs", type=_non_negative_int, default=None, metavar="K",
                   help="checkpoint averaging: also score the mean of the weights at the last K epoch ends on "
                        "validation and keep it if it beats the best epoch (0 or 1 = off; default: the model's "
                        "registry default for the dataset, else 0). Saves checkpoints/epoch-NNN.weights.npz")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                   help="Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch")
    return p


def parse_args(argv=None):
    args = build_parser().parse_args(argv)
    spec = registry.get(args.model)
    if args.dataset is None and args.data is None:
        args.dataset = DEFAULT_DATASET[spec.task]
    # One spelling from here on (run names, the registry's per-dataset defaults, the loaders): "MR" -> "movie_reviews".
    args.dataset = canonical_dataset_name(args.dataset)
    if args.phrases_per_epoch and (args.dataset != "de_en" or args.data):
        build_parser().error("--phrases-per-epoch applies to --dataset de_en only")
    defaults = spec.training_defaults(vars(args))
    if args.epochs is None:
        args.epochs = defaults["epochs"]
    if args.learning_rate is None:
        args.learning_rate = defaults["learning_rate"]
    # A model's registry training defaults may set its own batch size and max length (minilm).
    if args.batch_size is None:
        args.batch_size = defaults.get("batch_size", DEFAULT_BATCH_SIZE)
    if args.max_length is None:
        args.max_length = defaults.get("max_length") or DATASET_MAX_LENGTH.get(args.dataset, 64)
    # Decoding (seq2seq): chosen on validation per dataset where measured (registry), else greedy.
    if args.beam_size is None:
        args.beam_size = int(defaults.get("beam_size", 1))
    if args.length_penalty is None:
        args.length_penalty = defaults.get("length_penalty")  # None: attn_tf.decoding.settings.LENGTH_PENALTY
    if args.average_epochs is None:
        args.average_epochs = int(defaults.get("average_epochs", 0))
    # de_en's dictionary phrases: part of a model's de_en recipe (registry), recorded in config.json so
    # --resume and evaluation read the same data when the default changes (runs without it had none).
    if args.phrases_per_epoch is None and args.dataset == "de_en" and not args.data:
        args.phrases_per_epoch = defaults.get("phrases_per_epoch")
    for key, flag in MODEL_OPTION_FLAGS.items():
        if key not in spec.options:
            if getattr(args, key) is not None:
                build_parser().error("%s applies to %s, not --model %s" % (
                    flag, ", ".join(n for n in registry.names() if key in registry.get(n).options), args.model))
        elif getattr(args, key) is None and key in defaults:
            # Recorded in config.json, so --resume rebuilds the same model when a default changes.
            setattr(args, key, defaults[key])
    return args


def explicit_flags(argv=None):
    """Names of the flags given on the command line (for --resume overrides)."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    ns, _ = parser.parse_known_args(argv)
    return sorted(vars(ns))
