"""Seq2SeqEnsemble: the members' mean next-token probabilities, decoded by every search; load_ensemble's checks."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from attn_tf.decoding import decode
from attn_tf.errors import UsageError
from attn_tf.models.seq2seq_ensemble import Seq2SeqEnsemble
from s2s_synthetic import LETTERS, alignment_score
from s2s_train import held_out, train_small

V = 4 + len(LETTERS)
MAX_LEN = 9  # copy outputs: at most 8 letters and [END]; the small Transformer has 10 target positions


@pytest.fixture(scope="module")
def copy_transformer():
    return train_small("seq2seq_transformer", "copy", epochs=4)


def _write_run(path, model, kind, max_length=8):
    from attn_tf.data.seq2seq_vocab import SequenceVocabulary

    os.makedirs(path, exist_ok=True)
    for name in ("source_vocab.json", "target_vocab.json"):
        SequenceVocabulary(list(LETTERS), tokenizer="unicode_script", max_length=8).save(os.path.join(path, name))
    model.save(os.path.join(path, "model.keras"))
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump({"model": kind, "dataset": "copy", "seed": 0, "max_length": max_length, "beam_size": 2}, f)
    return str(path)


def _decoded(model, src, beam_size=1, jit_compile=False):
    fn = tf.function(lambda ids: decode(model, ids, MAX_LEN, beam_size=beam_size, jit_compile=jit_compile))
    return {k: v.numpy() for k, v in fn(tf.constant(src)).items()}


def test_step_is_the_log_of_the_members_mean_probabilities(copy_model, copy_transformer):
    src, tin, _ = held_out("copy", n=8)
    members = [copy_model, copy_transformer]
    ensemble = Seq2SeqEnsemble(members)
    enc = ensemble.encode(src)
    state = ensemble.initial_state(enc)
    alone = [(m, m.encode(src)) for m in members]
    alone = [(m, e, m.initial_state(e)) for m, e in alone]
    teacher_forced = ensemble.attention_maps(src, tin)
    for t in range(4):
        logits, state, attention = ensemble.decode_step(tin[:, t], state, enc, t)
        probs, rows, next_alone = [], [], []
        for m, e, s in alone:
            member_logits, s, row = m.decode_step(tin[:, t], s, e, t)
            probs.append(tf.nn.softmax(member_logits).numpy())
            rows.append(row.numpy())
            next_alone.append((m, e, s))
        alone = next_alone
        np.testing.assert_allclose(np.exp(logits.numpy()), np.mean(probs, axis=0), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(attention.numpy(), np.mean(rows, axis=0), atol=1e-6)
        np.testing.assert_allclose(attention.numpy().sum(-1), 1.0, atol=1e-5)
        np.testing.assert_allclose(teacher_forced["cross"][:, 0, 0, t].numpy(), attention.numpy(), atol=1e-5)
        np.testing.assert_allclose(teacher_forced["logits"][:, t].numpy(), logits.numpy(), atol=1e-4)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_an_ensemble_of_one_model_twice_decodes_as_the_model(copy_model, beam_size):
    src, _, _ = held_out("copy", n=32)
    src[4] = 0  # an empty source among the others
    alone = _decoded(copy_model, src, beam_size)
    twice = _decoded(Seq2SeqEnsemble([copy_model, copy_model]), src, beam_size)
    np.testing.assert_array_equal(twice["ids"], alone["ids"])
    np.testing.assert_array_equal(twice["lengths"], alone["lengths"])
    np.testing.assert_allclose(twice["attention"], alone["attention"], atol=1e-5)
    np.testing.assert_allclose(twice["scores"], alone["scores"], atol=1e-4)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_gru_and_transformer_copy_together_in_both_decoders(copy_model, copy_transformer, beam_size):
    src, _, _ = held_out("copy", n=64)
    ensemble = Seq2SeqEnsemble([copy_model, copy_transformer])
    out = _decoded(ensemble, src, beam_size)
    accuracy, diagonal = alignment_score(src, out["ids"], out["lengths"], out["attention"], "copy")
    assert accuracy >= 0.95 and diagonal >= 0.9, (accuracy, diagonal)
    compiled = _decoded(ensemble, src, beam_size, jit_compile=True)
    np.testing.assert_array_equal(compiled["ids"], out["ids"])
    np.testing.assert_array_equal(compiled["lengths"], out["lengths"])
    np.testing.assert_allclose(compiled["attention"], out["attention"], atol=1e-4)


def test_an_ensemble_needs_two_models(copy_model):
    with pytest.raises(ValueError, match="at least two"):
        Seq2SeqEnsemble([copy_model])


def test_load_ensemble_of_two_runs_and_its_refusals(tmp_path, copy_model, copy_transformer):
    from attn_tf.training.seq2seq_trainer import load_ensemble

    gru = _write_run(tmp_path / "gru", copy_model, "seq2seq_gru")
    transformer = _write_run(tmp_path / "transformer", copy_transformer, "seq2seq_transformer", max_length=7)
    config, ensemble, source_vocab, target_vocab = load_ensemble([gru, transformer])
    assert config["members"] == [gru, transformer] and len(ensemble.members) == 2
    assert config["max_length"] == 7 and config["model"] == "seq2seq_gru"  # the shortest; the first run's own
    ids, _ = source_vocab.encode(tf.constant(["a b c", ""]))
    out = decode(ensemble, ids, int(config["max_length"]) + 1, beam_size=2)
    assert target_vocab.decode(out["ids"]).numpy().tolist() == [b"a b c", b""]  # copies; "" is not decoded

    with pytest.raises(UsageError, match="at least two runs"):
        load_ensemble([gru])
    other_seed = str(tmp_path / "other-seed")
    shutil.copytree(transformer, other_seed)
    path = os.path.join(other_seed, "config.json")
    config = json.load(open(path))
    json.dump(dict(config, seed=int(config["seed"]) + 1), open(path, "w"))
    with pytest.raises(UsageError, match="seed=.*same data split"):
        load_ensemble([gru, other_seed])
    other_vocab = str(tmp_path / "other-vocab")
    shutil.copytree(transformer, other_vocab)
    path = os.path.join(other_vocab, "target_vocab.json")
    saved = json.load(open(path))
    saved["config"]["vocabulary"] = saved["config"]["vocabulary"][:-1]
    json.dump(saved, open(path, "w"))
    with pytest.raises(UsageError, match="different target vocabularies"):
        load_ensemble([gru, other_vocab])


FRESH = r"""
import sys, json
import numpy as np
import tensorflow as tf
import tensorflow_text  # registers the TF Text ops used by the signature
assert not any(m == "attn_tf" or m.startswith("attn_tf.") for m in sys.modules)
model = tf.saved_model.load(sys.argv[2])
out = model.signatures["translate"](text=tf.constant(json.loads(sys.argv[3]), tf.string))
full = model.signatures["attention"](text=tf.constant(json.loads(sys.argv[3]), tf.string),
                                     layers=tf.constant([], tf.int32), heads=tf.constant([], tf.int32))
np.savez(sys.argv[1], translation=out["translation"].numpy(), cross=out["cross_attention"].numpy(),
         full=full["cross_attention"].numpy())
"""


@pytest.mark.slow
def test_exported_ensemble_in_a_fresh_process(tmp_path, copy_model, copy_transformer):
    """`python -m attn_tf.export GRU_RUN --ensemble-with TRANSFORMER_RUN`: one SavedModel that decodes as the
    in-memory ensemble, loaded by a process that does not import attn_tf."""
    import subprocess
    import sys

    from attn_tf.data.seq2seq_vocab import SequenceVocabulary
    from attn_tf.export import export_run
    from attn_tf.export.__main__ import main as export_main
    from attn_tf.export.seq2seq import make_translate_fn
    from s2s_synthetic import pairs

    gru = _write_run(tmp_path / "gru", copy_model, "seq2seq_gru")
    transformer = _write_run(tmp_path / "transformer", copy_transformer, "seq2seq_transformer")
    info = export_run(gru, base_dir=str(tmp_path / "saved"), log=lambda *a: None, ensemble_with=[transformer])
    assert info["name"] == "seq2seq_ensemble-copy" and info["ensemble_of"] == [gru, transformer]
    assert info["beam_size"] == 2 and info["max_output_length"] == 9

    texts = [s for s, _ in pairs("copy", 12, seed=7)] + ["", "A B C"]
    vocab = SequenceVocabulary(list(LETTERS), tokenizer="unicode_script", max_length=8)
    memory = make_translate_fn(Seq2SeqEnsemble([copy_model, copy_transformer]), vocab, vocab, 9, beam_size=2,
                               jit_compile=False)(tf.constant(texts))
    npz = tmp_path / "out.npz"
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", FRESH, str(npz), info["path"], json.dumps(texts)], check=True, env=env,
                   timeout=300)
    loaded = np.load(npz, allow_pickle=True)
    np.testing.assert_array_equal(loaded["translation"], memory["translation"].numpy())
    np.testing.assert_allclose(loaded["cross"], memory["cross_attention"].numpy(), atol=1e-5)
    np.testing.assert_allclose(loaded["full"][:, 0, 0], memory["cross_attention"].numpy(), atol=1e-5)
    copies = [t.decode() for t in loaded["translation"][:12]]
    assert sum(a == b for a, b in zip(copies, texts[:12])) >= 11
    assert loaded["translation"][12] == b"" and loaded["translation"][13] == b"a b c"

    # a member trained on another split: a clear message and exit 2, nothing written
    other = _write_run(tmp_path / "other", copy_transformer, "seq2seq_transformer")
    config = json.load(open(os.path.join(other, "config.json")))
    json.dump(dict(config, seed=1), open(os.path.join(other, "config.json"), "w"))
    assert export_main([gru, "--ensemble-with", other, "--base-dir", str(tmp_path / "saved2")]) == 2
    assert not os.path.exists(tmp_path / "saved2" / "seq2seq_ensemble-copy")
