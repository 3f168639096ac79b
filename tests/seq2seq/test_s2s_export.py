"""The exported `translate` signature: fresh-process load, same outputs as in memory and as the
interpreted reference decoder (the default export is the interpreted loop, which stock TF Serving runs;
`jit_compile=True` / `--xla` exports the XLA-compiled search), empty input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from s2s_synthetic import LETTERS, pairs

TEXTS = [s for s, _ in pairs("copy", 12, seed=7)] + ["", "a", "   ", "l k j i h g f e", "A B C"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, copy_model):
    """The copy model exported as a run would be (greedy = version 1, the default interpreted loop;
    beam 3 = version 2, XLA-compiled), with the in-memory outputs of the same signature function, and
    of the signature decoding with the interpreted search (the reference the XLA search must equal)."""
    from attn_tf.data.seq2seq_vocab import SequenceVocabulary
    from attn_tf.export import export_run
    from attn_tf.export.seq2seq import make_translate_fn

    run = tmp_path_factory.mktemp("run")
    source = SequenceVocabulary(list(LETTERS), tokenizer="unicode_script", max_length=8)
    target = SequenceVocabulary(list(LETTERS), tokenizer="unicode_script", max_length=8)
    source.save(run / "source_vocab.json")
    target.save(run / "target_vocab.json")
    copy_model.save(run / "model.keras")
    with open(run / "config.json", "w") as f:
        json.dump({"model": "seq2seq_gru", "dataset": "copy", "max_length": 8, "beam_size": 1}, f)
    base = run / "saved"
    info = {"greedy": export_run(str(run), base_dir=str(base), log=lambda *a: None),
            "beam": export_run(str(run), base_dir=str(base), log=lambda *a: None, beam_size=3, jit_compile=True)}
    fns = {"greedy": make_translate_fn(copy_model, source, target, 9, jit_compile=False),
           "beam": make_translate_fn(copy_model, source, target, 9, beam_size=3, jit_compile=True)}
    memory = {k: {n: v.numpy() for n, v in fn(tf.constant(TEXTS)).items()} for k, fn in fns.items()}
    reference_fns = {"greedy": make_translate_fn(copy_model, source, target, 9, jit_compile=False),
                     "beam": make_translate_fn(copy_model, source, target, 9, beam_size=3, jit_compile=False)}
    reference = {k: {n: v.numpy() for n, v in fn(tf.constant(TEXTS)).items()} for k, fn in reference_fns.items()}
    return {"run": run, "info": info, "fns": fns, "memory": memory, "reference": reference}


def _xla_compiled_functions(export_dir):
    """Names of the SavedModel's library functions marked for XLA compilation (jit_compile=True)."""
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    return [fn.signature.name for meta in sm.meta_graphs for fn in meta.graph_def.library.function
            if fn.attr["_XlaMustCompile"].b]


FRESH = r"""
import sys, json
import numpy as np
import tensorflow as tf
import tensorflow_text  # registers the TF Text ops used by the signature
assert not any(m == "attn_tf" or m.startswith("attn_tf.") for m in sys.modules)
texts = json.loads(sys.argv[2])
out = {}
for kind, path in json.loads(sys.argv[3]).items():
    model = tf.saved_model.load(path)
    assert sorted(model.signatures) == ["attention", "predict", "serving_default", "translate"]
    for key in ("serving_default", "translate", "predict", "attention"):
        fn = model.signatures[key]
        inputs = sorted(fn.structured_input_signature[1])
        extra = {}
        if key == "attention":
            assert inputs == ["heads", "layers", "text"], inputs
            extra = {"layers": tf.constant([], tf.int32), "heads": tf.constant([], tf.int32)}
        else:
            assert inputs == ["text"], inputs
        for name, value in fn(text=tf.constant(texts, tf.string), **extra).items():
            out["%s/%s/%s" % (kind, key, name)] = value.numpy()
np.savez(sys.argv[1], **out)
"""


def test_fresh_process_matches_in_memory(tmp_path, exported):
    """Loaded in a new process that imports only tensorflow and tensorflow_text, both exports
    (greedy and beam search) give exactly what the same function gives in memory."""
    info = exported["info"]
    assert (info["greedy"]["version"], info["beam"]["version"]) == (1, 2)
    assert (info["greedy"]["beam_size"], info["beam"]["beam_size"]) == (1, 3)
    assert set(info["greedy"]["outputs"]) == {"translation", "tokens", "source_tokens", "cross_attention"}
    npz = tmp_path / "out.npz"
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    paths = {k: v["path"] for k, v in info.items()}
    subprocess.run([sys.executable, "-c", FRESH, str(npz), json.dumps(TEXTS), json.dumps(paths)],
                   check=True, env=env, timeout=300)
    loaded = np.load(npz, allow_pickle=True)
    for kind in ("greedy", "beam"):
        expected = exported["memory"][kind]
        for key in ("serving_default", "translate"):
            for name in ("translation", "tokens", "source_tokens"):
                np.testing.assert_array_equal(loaded["%s/%s/%s" % (kind, key, name)], expected[name])
            np.testing.assert_allclose(loaded["%s/%s/cross_attention" % (kind, key)], expected["cross_attention"],
                                       atol=1e-5)
        # predict: the same translations, nothing else; attention: the full tensors ([B, 1, 1, T, S]
        # for the GRU), teacher-forced over the decoded output: the same rows the decode loop recorded
        assert sorted(k.split("/")[2] for k in loaded.files if k.startswith(kind + "/predict/")) == ["translation"]
        np.testing.assert_array_equal(loaded["%s/predict/translation" % kind], expected["translation"])
        for name in ("translation", "tokens", "source_tokens"):
            np.testing.assert_array_equal(loaded["%s/attention/%s" % (kind, name)], expected[name])
        full = loaded["%s/attention/cross_attention" % kind]
        assert full.shape[1:3] == (1, 1)
        np.testing.assert_allclose(full[:, 0, 0], expected["cross_attention"], atol=1e-5)
        # the default export has no XLA op (stock TF Serving runs it); the XLA-compiled search of the
        # opt-in export gives the interpreted reference decoder's output
        if kind == "greedy":
            assert info[kind]["decoder"] == "interpreted" and not _xla_compiled_functions(info[kind]["path"])
        else:
            assert info[kind]["decoder"] == "xla" and _xla_compiled_functions(info[kind]["path"])
        reference = exported["reference"][kind]
        for name in ("translation", "tokens", "source_tokens"):
            np.testing.assert_array_equal(loaded["%s/translate/%s" % (kind, name)], reference[name])
        np.testing.assert_allclose(loaded["%s/translate/cross_attention" % kind], reference["cross_attention"],
                                   atol=1e-5)
        # the model really copies, and the strings line up with the attention rows
        translations = [t.decode() for t in expected["translation"]]
        expected_copies = [s for s, _ in pairs("copy", 12, seed=7)]
        assert sum(a == b for a, b in zip(translations, expected_copies)) >= 10
        b, t_out, s = expected["cross_attention"].shape
        assert expected["tokens"].shape == (b, t_out) and expected["source_tokens"].shape == (b, s)


def test_empty_and_odd_inputs(exported):
    out = exported["memory"]["greedy"]
    for i, text in enumerate(TEXTS):
        if not text.strip():
            assert out["translation"][i] == b""
            assert (out["tokens"][i] == b"").all() and (out["source_tokens"][i] == b"").all()
            assert (out["cross_attention"][i] == 0).all()
    upper = TEXTS.index("A B C")  # case-folded like the training data
    assert out["translation"][upper] == b"a b c"
    assert list(out["source_tokens"][upper][:3]) == [b"a", b"b", b"c"]
    row = list(out["tokens"][upper])
    assert row[:4] == [b"a", b"b", b"c", b"[END]"] and all(t == b"" for t in row[4:])

    fn = exported["fns"]["greedy"]
    all_empty = fn(tf.constant(["", " "]))
    assert all_empty["translation"].numpy().tolist() == [b"", b""]
    assert all_empty["cross_attention"].shape == (2, 0, 1)
    nothing = fn(tf.constant([], tf.string))
    assert nothing["translation"].shape == (0,)
    bad_utf8 = fn(tf.constant([b"a \xff b"]))
    assert bad_utf8["translation"].numpy()[0].startswith(b"a")


def test_export_layout_and_warmup(exported):
    path = exported["info"]["greedy"]["path"]
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert os.path.isfile(os.path.join(path, "assets.extra", "tf_serving_warmup_requests"))
    from attn_tf.export import graph_ops

    assert not graph_ops.gpu_only_ops(graph_ops.saved_model_ops(path))


def test_transformer_attention_signature_is_the_full_form_of_translate():
    """seq2seq_transformer: the `attention` signature's [B, L, H, T_out, S] cross-attention, averaged over
    the heads of the last block, is translate's cross_attention; layers/heads select; bad index -> error."""
    import keras

    from attn_tf.data.seq2seq_vocab import SequenceVocabulary
    from attn_tf.export.seq2seq import make_signatures
    from attn_tf.models.seq2seq_transformer import Seq2SeqTransformer

    keras.utils.set_random_seed(5)
    vocab = SequenceVocabulary(list(LETTERS), tokenizer="unicode_script", max_length=8)
    model = Seq2SeqTransformer(len(vocab.vocabulary), len(vocab.vocabulary), max_source_length=8,
                               max_target_length=10, hidden_dim=16, num_layers=2, num_heads=2, intermediate_dim=32,
                               dropout=0.0)
    model.build_dummy()
    sigs = make_signatures(model, vocab, vocab, 6)
    texts = tf.constant(["a b c", "", "l k j i h g f e"])
    compact = sigs["translate"](texts)
    none = tf.constant([], tf.int32)
    full = sigs["attention"](texts, none, none)
    att = full["cross_attention"].numpy()
    b, t_out, s = compact["cross_attention"].shape
    assert att.shape == (b, 2, 2, t_out, s)
    np.testing.assert_allclose(att[:, -1].mean(1), compact["cross_attention"].numpy(), atol=1e-5)
    assert not att[1].any()  # the empty text: nothing decoded
    np.testing.assert_array_equal(full["translation"].numpy(), compact["translation"].numpy())
    np.testing.assert_array_equal(sigs["predict"](texts)["translation"].numpy(), compact["translation"].numpy())
    part = sigs["attention"](texts, tf.constant([0]), tf.constant([1]))["cross_attention"].numpy()
    np.testing.assert_array_equal(part[:, 0, 0], att[:, 0, 1])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`heads` indexes must be in \[0, 2\)"):
        sigs["attention"](texts, none, tf.constant([2]))
