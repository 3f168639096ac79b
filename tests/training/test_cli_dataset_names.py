"""A dataset named by an alias or another spelling gets the same per-dataset defaults as its canonical name."""

import pytest

from attn_tf.dataset_names import canonical_dataset_name
from attn_tf.models import registry
from attn_tf.training.cli import parse_args


@pytest.mark.parametrize("name, canonical", [
    ("MR", "movie_reviews"), ("movie-reviews", "movie_reviews"), (" R8 ", "r8"), ("reuters-r52", "r52"),
    ("20NG", "20newsgroups"), ("deen", "de_en"), ("DE-EN", "de_en"), ("cmudict", "cmudict"), ("nope", "nope"),
])
def test_canonical_dataset_name(name, canonical):
    assert canonical_dataset_name(name) == canonical


def test_an_alias_gets_the_registry_defaults_of_its_dataset():
    canonical = parse_args(["--model", "minilm", "--dataset", "movie_reviews"])
    for spelling in ("MR", "Movie-Reviews"):
        args = parse_args(["--model", "minilm", "--dataset", spelling])
        assert args.dataset == "movie_reviews"
        assert (args.epochs, args.max_length, args.batch_size) == (canonical.epochs, canonical.max_length,
                                                                   canonical.batch_size)
    assert registry.dataset_key({"dataset": "MR"}) == "movie_reviews"


def test_phrases_per_epoch_accepts_every_spelling_of_de_en_and_refuses_other_datasets(capsys):
    args = parse_args(["--model", "seq2seq_gru", "--dataset", "deen", "--phrases-per-epoch", "5"])
    assert args.dataset == "de_en" and args.phrases_per_epoch == 5
    assert args.epochs == registry.get("seq2seq_gru").training_defaults({"dataset": "de_en"})["epochs"]
    with pytest.raises(SystemExit) as e:
        parse_args(["--model", "seq2seq_gru", "--dataset", "cmudict", "--phrases-per-epoch", "5"])
    assert e.value.code == 2 and "de_en only" in capsys.readouterr().err
