"""train.py --help states the registry's training defaults (their one owner), not a hand-kept copy."""

import re

from attn_tf.models import registry
from attn_tf.training.cli import build_parser, parse_args


def _help():
    return re.sub(r"\s+", " ", build_parser().format_help())


def test_help_defaults_are_the_ones_a_run_gets():
    text = _help()
    for name, dataset, flag in [("seq2seq_gru", "de_en", "epochs"), ("bilstm_attention", "r8", "epochs"),
                                ("minilm", "movie_reviews", "max_length"), ("minilm", "r8", "max_length")]:
        args = parse_args(["--model", name, "--dataset", dataset])
        value = getattr(args, flag)
        assert "%s: %g" % (dataset, value) in text, (name, dataset, flag, value)
    for name in ("transformer", "seq2seq_transformer"):
        args = parse_args(["--model", name])
        assert "%s %g" % (name, args.epochs) in text and "%s %g" % (name, args.learning_rate) in text
    assert "minilm %g" % parse_args(["--model", "minilm"]).batch_size in text
