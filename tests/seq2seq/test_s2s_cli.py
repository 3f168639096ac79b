"""train.py with seq2seq models, as a user runs it: short runs on a generated TSV of pairs."""

import glob
import json
import os

import pytest

import train as train_script
from s2s_synthetic import write_tsv
from tb_plugin import metadata


def _events(logdir):
    from tensorboard.backend.event_processing import event_file_loader

    out = []
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        for event in event_file_loader.EventFileLoader(path).Load():
            for value in event.summary.value:
                out.append((value.tag, event.step, value))
    return out


def _headers(run):
    headers = {}
    for tag, step, value in _events(os.path.join(run, "attention")):
        blobs = value.tensor.string_val
        header = metadata.decode_header(blobs[0])
        arrays = [metadata.decode_array(b) for b in blobs[1:]]
        headers[(tag, step)] = (header, arrays)
    return headers


def _run(tmp_path, *extra):
    data = write_tsv(tmp_path / "copy.tsv", "copy", n=300)
    code = train_script.main(["--data", str(data), "--logdir", str(tmp_path / "runs"), "--batch-size", "32",
                              "--verbose", "0", "--probe-examples", "2", *extra])
    assert code == 0
    (run,) = glob.glob(str(tmp_path / "runs" / "*"))
    return run


def test_train_gru_on_pairs_logs_attention_and_exports(tmp_path):
    run = _run(tmp_path, "--model", "seq2seq_gru", "--attention", "dot", "--epochs", "2",
               "--attention-every", "8", "--export-dir", str(tmp_path / "saved"))
    results = json.load(open(os.path.join(run, "results.json")))
    assert results["model"] == "seq2seq_gru" and results["attention"] == "dot"
    assert {"test_bleu", "test_chrf", "test_loss", "test_token_accuracy"} <= set(results)
    assert 0 <= results["test_bleu"] <= 100
    for name in ("model.keras", "source_vocab.json", "target_vocab.json", "config.json", "predictions.tsv"):
        assert os.path.isfile(os.path.join(run, name)), name
    assert results["export"]["path"].startswith(str(tmp_path / "saved"))
    assert os.path.isfile(os.path.join(results["export"]["path"], "saved_model.pb"))

    headers = _headers(run)
    steps = sorted({s for (_, s) in headers})
    assert steps[0] == 0 and steps[-1] == results["steps"] and len(steps) >= 3
    header, arrays = headers[(metadata.probe_tag(0), steps[-1])]
    (layer,) = header["layers"]
    assert layer["kind"] == "cross" and layer["query"] == "target" and layer["key"] == "source"
    assert header["tokens"]["target"][-1] == "[END]"
    assert arrays[0].shape == (1, len(header["tokens"]["target"]), len(header["tokens"]["source"]))
    assert abs(float(arrays[0].sum()) - arrays[0].shape[1]) < 0.05  # rows are distributions
    assert header["label"] and header["prediction"] is not None

    scalars = {tag for tag, _, _ in _events(os.path.join(run, "test"))}
    assert {"test/bleu", "test/chrf", "test/loss", "test/token_accuracy"} <= scalars
    # A translation run decodes the validation split every epoch and keeps the best validation BLEU.
    validation = {tag for tag, _, _ in _events(os.path.join(run, "validation"))}
    assert {"epoch_bleu", "epoch_chrf", "epoch_accuracy"} <= validation
    state = json.load(open(os.path.join(run, "checkpoints", "state.json")))
    assert state["monitor"] == "val_bleu" and state["best"] is not None


def test_beam_size_and_length_penalty_reach_the_test_decode_and_the_export(tmp_path):
    run = _run(tmp_path, "--model", "seq2seq_gru", "--max-steps", "4", "--beam-size", "3",
               "--length-penalty", "1.4", "--export-dir", str(tmp_path / "saved"))
    config = json.load(open(os.path.join(run, "config.json")))
    results = json.load(open(os.path.join(run, "results.json")))
    assert (config["beam_size"], config["length_penalty"]) == (3, 1.4)
    assert (results["beam_size"], results["length_penalty"]) == (3, 1.4)
    assert (results["export"]["beam_size"], results["export"]["length_penalty"]) == (3, 1.4)


def test_decoding_defaults_come_from_the_registry_and_flags_override_them():
    from attn_tf.decoding.settings import LENGTH_PENALTY, length_penalty
    from attn_tf.models import registry
    from attn_tf.training.cli import parse_args

    de_en = registry.get("seq2seq_gru").training_defaults({"dataset": "de_en"})
    args = parse_args(["--model", "seq2seq_gru", "--dataset", "de_en"])
    assert args.beam_size == de_en["beam_size"] > 1 and args.length_penalty == de_en["length_penalty"]
    args = parse_args(["--model", "seq2seq_gru", "--dataset", "deen", "--beam-size", "1", "--length-penalty", "0"])
    assert (args.beam_size, args.length_penalty) == (1, 0.0)
    cmudict = parse_args(["--model", "seq2seq_gru"])  # greedy where nothing was measured better
    assert cmudict.beam_size == 1 and cmudict.length_penalty is None
    assert length_penalty(vars(cmudict)) == LENGTH_PENALTY and length_penalty({"length_penalty": 0.0}) == 0.0


def test_de_en_phrases_per_epoch_default_is_recorded_and_overridable():
    from attn_tf.models import registry
    from attn_tf.training.cli import parse_args

    recipe = registry.get("seq2seq_gru").training_defaults({"dataset": "de_en"})["phrases_per_epoch"]
    assert recipe > 0 and parse_args(["--model", "seq2seq_gru", "--dataset", "de_en"]).phrases_per_epoch == recipe
    assert parse_args(["--model", "seq2seq_gru", "--dataset", "de_en", "--phrases-per-epoch", "0"]
                      ).phrases_per_epoch == 0
    assert parse_args(["--model", "seq2seq_gru"]).phrases_per_epoch is None  # cmudict: no phrases


def test_token_budget_batches_hold_more_short_pairs():
    import numpy as np

    from attn_tf.training.seq2seq_trainer import make_pair_dataset

    rng = np.random.default_rng(0)
    short = [rng.integers(4, 50, size=3).astype(np.int32) for _ in range(300)]
    long = [rng.integers(4, 50, size=30).astype(np.int32) for _ in range(40)]
    sources = short + long
    ds = make_pair_dataset(sources, sources, batch_size=16, shuffle=True, seed=0, batch_tokens=256)
    sizes = [int(t.shape[0]) for (_, t) in ds]
    assert len(sizes) == int(ds.cardinality().numpy())  # the announced number of batches is exact
    assert sum(sizes) == len(sources)
    # Pairs of 3 tokens (bucket < 4): 256 // 4 = 64 per batch; pairs of 30 (bucket < 32): 256 // 32 = 8,
    # so they keep --batch-size (16) batches, the last one partial.
    assert sorted(sizes) == [8, 16, 16, 44, 64, 64, 64, 64]
    fixed = [int(t.shape[0]) for (_, t) in make_pair_dataset(sources, sources, batch_size=16, shuffle=True)]
    assert max(fixed) == 16


def test_train_transformer_logs_all_attention_kinds(tmp_path):
    run = _run(tmp_path, "--model", "seq2seq_transformer", "--max-steps", "8", "--attention-every", "4",
               "--max-length", "12", "--no-export")
    results = json.load(open(os.path.join(run, "results.json")))
    assert results["beam_size"] == 1 and results["steps"] == 8
    header, arrays = _headers(run)[(metadata.probe_tag(1), 8)]
    kinds = [(l["kind"], l["query"], l["key"]) for l in header["layers"]]
    n = json.load(open(os.path.join(run, "config.json")))["model_sizes"]["num_layers"]  # the default sizes'
    assert kinds == [("self", "source", "source")] * n + [("causal", "target_input", "target_input")] * n + \
        [("cross", "target", "source")] * n
    t, s = len(header["tokens"]["target"]), len(header["tokens"]["source"])
    assert header["tokens"]["target_input"][0] == "[START]"
    assert [a.shape for a in arrays] == [(4, s, s)] * n + [(4, t, t)] * n + [(4, t, s)] * n


def test_bad_pairs_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("only one column\n")
    code = train_script.main(["--model", "seq2seq_gru", "--data", str(bad), "--logdir", str(tmp_path / "runs")])
    assert code == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "source<TAB>target" in err


def test_defaults_depend_on_model_and_dataset():
    from attn_tf.training.cli import parse_args

    g2p = parse_args(["--model", "seq2seq_gru"])
    assert (g2p.dataset, g2p.epochs, g2p.learning_rate) == ("cmudict", 10, 2e-3)
    subwords = parse_args(["--model", "seq2seq_gru", "--dataset", "de_en"])  # 17k sentences, token batches
    assert (subwords.epochs, subwords.learning_rate) == (16, 2e-3)
    user = parse_args(["--model", "seq2seq_gru", "--data", "pairs.tsv", "--learning-rate", "1e-3"])
    assert (user.epochs, user.learning_rate) == (20, 1e-3)  # an explicit flag wins
    classifier = parse_args([])
    assert (classifier.dataset, classifier.epochs, classifier.learning_rate) == ("movie_reviews", 4, 2e-3)
    assert parse_args(["--dataset", "r8"]).epochs == 8
    assert parse_args(["--dataset", "r8", "--model", "transformer"]).epochs == 8
    assert parse_args(["--dataset", "r8", "--epochs", "3"]).epochs == 3
