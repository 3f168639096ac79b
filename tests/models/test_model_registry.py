"""The model registry is the one place a model is described: CLI, export and evaluation read it."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from attn_tf.models import registry

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_cli_choices_and_defaults_come_from_the_registry():
    from attn_tf.training import cli

    parser = cli.build_parser()
    model_action = [a for a in parser._actions if "--model" in a.option_strings][0]
    assert tuple(model_action.choices) == registry.names()
    for name in registry.names():
        spec = registry.get(name)
        args = cli.parse_args(["--model", name])
        want = spec.training_defaults({"dataset": args.dataset})
        assert (args.epochs, args.learning_rate) == (want["epochs"], want["learning_rate"])
    # per-dataset defaults: r8 BiLSTM 8 epochs; word-level seq2seq_gru (--data) 20 epochs at 5e-4,
    # de_en (17k sentences in subwords, token batches) 16 epochs at 2e-3
    assert cli.parse_args(["--dataset", "r8"]).epochs == 8
    for extra, want in ((["--dataset", "de_en"], (16, 2e-3)), (["--data", "pairs.tsv"], (20, 5e-4))):
        args = cli.parse_args(["--model", "seq2seq_gru", *extra])
        assert (args.epochs, args.learning_rate) == want


def test_unknown_model_lists_the_registered_ones():
    with pytest.raises(registry.UnknownModel) as e:
        registry.get("nope")
    for name in registry.names():
        assert name in str(e.value)


def test_reading_the_registry_imports_no_tensorflow():
    code = ("import sys; from attn_tf.models import registry; from attn_tf.training import cli; "
            "import attn_tf.export; cli.parse_args([]); attn_tf.export.EXPORTERS; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_exporter_of_every_model_comes_from_its_entry():
    import attn_tf.export as export

    assert set(export.EXPORTERS) == {n for n in registry.names() if registry.get(n).exporter}
    for name, module in export.EXPORTERS.items():
        assert module == export.EXPORTER_MODULES[registry.get(name).exporter]


def test_build_passes_sizes_and_config_options_to_the_builder():
    seen = {}

    def tiny(vocab_size, num_classes, max_length, width=3, flavour="plain"):
        seen.update(vocab_size=vocab_size, num_classes=num_classes, max_length=max_length, width=width,
                    flavour=flavour)
        return "model"

    spec = registry.ModelSpec(name="tiny", task=registry.CLASSIFIER, builder=tiny,
                              sizes={"default": {"width": 5}, "r8": {"width": 7}},
                              training={"default": {"epochs": 1, "learning_rate": 0.1}},
                              options={"tiny_flavour": "flavour"})
    assert spec.build({"max_length": 9, "dataset": "movie_reviews"}, vocab_size=11, num_classes=2) == "model"
    assert seen == dict(vocab_size=11, num_classes=2, max_length=9, width=5, flavour="plain")
    spec.build({"max_length": 9, "dataset": "r8", "tiny_flavour": "spicy"}, vocab_size=11, num_classes=2)
    assert (seen["width"], seen["flavour"]) == (7, "spicy")
    # a run's saved sizes win over the defaults (resume rebuilds the same model)
    spec.build({"max_length": 9, "dataset": "r8", "model_sizes": {"width": 1}}, vocab_size=11, num_classes=2)
    assert seen["width"] == 1


def test_a_new_classifier_is_one_entry_plus_its_builder(monkeypatch):
    from attn_tf.training import cli

    base = registry.get("bilstm_attention")
    monkeypatch.setitem(registry._REGISTRY, "tiny_bilstm", dataclasses.replace(
        base, name="tiny_bilstm", sizes={"default": {"embedding_dim": 4, "lstm_units": 2}},
        training={"default": {"epochs": 1, "learning_rate": 0.01}}))
    args = cli.parse_args(["--model", "tiny_bilstm"])
    assert (args.epochs, args.learning_rate) == (1, 0.01)
    import attn_tf.export as export

    assert export.EXPORTERS["tiny_bilstm"] == "attn_tf.export.classifier"
    model = registry.get("tiny_bilstm").build(vars(args), vocab_size=10, num_classes=3)
    assert model.get_layer("embedding").output_dim == 4


@pytest.mark.parametrize("name", ["bilstm_attention", "transformer"])
def test_evaluation_hooks_reproduce_the_models_forward_pass(name):
    import tensorflow as tf

    spec = registry.get(name)
    model = spec.build({"max_length": 6, "dataset": "movie_reviews"}, vocab_size=20, num_classes=3)
    ids = tf.constant([[3, 4, 5, 0, 0, 0], [7, 8, 9, 10, 11, 2]], tf.int32)
    out = model(ids, training=False)
    hooks = spec.evaluation_hooks()
    probs, att = hooks.from_embeddings(model, hooks.embed(model, ids), ids)
    np.testing.assert_allclose(probs.numpy(), out["probabilities"].numpy(), atol=1e-5)
    np.testing.assert_allclose(att.numpy(), out["attention"].numpy(), atol=1e-5)
    if hooks.attention == "pooling":
        hidden = hooks.encode(model, ids)
        p = hooks.head(model, hidden, tf.not_equal(ids, 0), out["attention"])
        np.testing.assert_allclose(p.numpy(), out["probabilities"].numpy(), atol=1e-5)


def test_seq2seq_sizes_per_dataset():
    gru = registry.get("seq2seq_gru")
    assert gru.sizes_for({"dataset": "cmudict"})["decoder_units"] == 256
    de_en = gru.sizes_for({"dataset": "de_en"})
    assert (de_en["embedding_dim"], de_en["decoder_units"]) == (256, 512)
    assert gru.sizes_for({"data": "x.tsv"})["embedding_dim"] == 64
    assert gru.options_from({"attention": "dot"}) == {"attention": "dot"}
    assert registry.get("seq2seq_transformer").options_from({"attention": "dot"}) == {}
