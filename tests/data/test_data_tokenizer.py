"""TextVectorizer: in-graph tokenization, reserved ids, truncation, persistence."""

import json

import numpy as np
import pytest
import tensorflow as tf

from attn_tf.data import DataError, TextVectorizer, vectorize_numpy

VOCAB = ["[PAD]", "[UNK]", "the", "movie", "was", "good", ".", ",", "!", "it", "'", "s"]


@pytest.fixture(scope="module")
def vec():
    return TextVectorizer(VOCAB, max_length=6)


def ids_of(vec, texts):
    ids, counts = vec(tf.constant(texts))
    return ids.numpy(), counts.numpy()


def test_reserved_ids_and_prepending():
    v = TextVectorizer(["good", "bad"])
    assert v.vocabulary[:2] == ["[PAD]", "[UNK]"] and v.vocabulary_size == 4
    assert v.pad_id == 0 and v.unk_id == 1
    with pytest.raises(ValueError):
        TextVectorizer(["good", "[UNK]"])
    with pytest.raises(ValueError):
        TextVectorizer(["good", "good"])


def test_lowercase_punctuation_split_oov_and_padding(vec):
    ids, counts = ids_of(vec, ["The MOVIE, was GOOD!"])
    assert vec.tokens_for(["The MOVIE, was GOOD!"]) == [["the", "movie", ",", "was", "good", "!"]]
    assert ids.tolist() == [[2, 3, 7, 4, 5, 8]] and counts.tolist() == [6]
    ids, counts = ids_of(vec, ["it's terrible"])
    assert vec.tokens_for(["it's terrible"]) == [["it", "'", "s", "terrible"]]
    assert ids.tolist() == [[9, 10, 11, 1, 0, 0]]  # OOV -> 1, padding -> 0
    assert counts.tolist() == [4]
    assert ids.dtype == np.int32 and counts.dtype == np.int32


def test_no_lowercase_and_whitespace_tokenizer():
    v = TextVectorizer(VOCAB, max_length=4, lowercase=False)
    assert ids_of(v, ["The movie"])[0].tolist() == [[1, 3, 0, 0]]
    w = TextVectorizer(VOCAB + ["good!"], max_length=4, tokenizer="whitespace")
    assert w.tokens_for(["Movie was good!"]) == [["movie", "was", "good!"]]
    assert ids_of(w, ["Movie was good!"])[0].tolist() == [[3, 4, 12, 0]]


def test_unknown_tokenizer_lists_allowed():
    with pytest.raises(ValueError) as ei:
        TextVectorizer(VOCAB, tokenizer="bpe")
    assert "unicode_script" in str(ei.value) and "whitespace" in str(ei.value)


def test_truncation_and_token_count(vec):
    text = "the movie was good , the movie was good"
    ids, counts = ids_of(vec, [text, "good"])
    assert ids.shape == (2, 6)
    assert ids[0].tolist() == [2, 3, 4, 5, 7, 2]
    assert counts.tolist() == [9, 1]  # before truncation
    assert vec.tokens_for([text])[0] == ["the", "movie", "was", "good", ",", "the"]
    assert vec.truncation_report([text, "good", "a b c d e f"]) == (1, 3)


def test_empty_and_whitespace_strings(vec):
    ids, counts = ids_of(vec, ["", "   \t\n ", "good"])
    assert ids[:2].tolist() == [[0] * 6, [0] * 6]
    assert counts.tolist() == [0, 0, 1]
    assert vec.tokens_for(["", " "]) == [[], []]


def test_invalid_utf8_is_replaced(vec):
    """Documented behaviour: ill-formed UTF-8 becomes U+FFFD (an OOV token), no error."""
    ids, counts = ids_of(vec, [b"good \xff\xfe movie", b"\xc3"])
    assert ids[0].tolist() == [5, 1, 3, 0, 0, 0] and counts.tolist() == [3, 1]
    assert vec.tokens_for([b"good \xff movie"]) == [["good", "\ufffd", "movie"]]


def test_inside_tf_function_with_string_signature(vec):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(s):
        ids, counts = vec(s)
        return ids, counts

    ids, counts = serve(tf.constant(["The movie", "", "good good good good good good good"]))
    assert ids.shape == (3, 6)
    assert ids.numpy().tolist() == [[2, 3, 0, 0, 0, 0], [0] * 6, [5] * 6]
    assert counts.numpy().tolist() == [2, 0, 7]
    # a different batch size reuses the same concrete function
    assert serve(tf.constant(["good"]))[0].shape == (1, 6)
    assert serve.experimental_get_tracing_count() == 1


def test_inside_dataset_map(vec):
    ds = tf.data.Dataset.from_tensor_slices(["The movie", "was good!", ""]).batch(2).map(lambda s: vec(s)[0])
    got = np.concatenate([b.numpy() for b in ds])
    assert got.tolist() == ids_of(vec, ["The movie", "was good!", ""])[0].tolist()
    # per-example (scalar) map is accepted too: a scalar becomes a batch of one
    ds1 = tf.data.Dataset.from_tensor_slices(["The movie"]).map(lambda s: vec(s)[0])
    assert next(iter(ds1)).numpy().tolist() == [[2, 3, 0, 0, 0, 0]]


def test_saved_model_round_trip(vec, tmp_path):
    module = tf.Module()
    module.vectorizer = vec
    module.serve = tf.function(lambda s: vec(s)[0], input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, str(tmp_path / "sm"))
    restored = tf.saved_model.load(str(tmp_path / "sm"))
    texts = ["The movie was GOOD!", "it's terrible", ""]
    assert restored.serve(tf.constant(texts)).numpy().tolist() == ids_of(vec, texts)[0].tolist()


def test_adapt_frequency_ties_min_count_and_determinism():
    texts = ["b a c", "a b", "c a", "Zed d", "d", "once"]
    v = TextVectorizer.adapt(texts, max_tokens=100, min_count=2, max_length=8)
    # counts: a=3, b=2, c=2, d=2, zed=1, once=1  -> ties broken alphabetically
    assert v.vocabulary == ["[PAD]", "[UNK]", "a", "b", "c", "d"]
    assert v.max_length == 8
    again = TextVectorizer.adapt(list(reversed(texts)), max_tokens=100, min_count=2, max_length=8)
    assert again.vocabulary == v.vocabulary
    small = TextVectorizer.adapt(texts, max_tokens=4, min_count=1)
    assert small.vocabulary == ["[PAD]", "[UNK]", "a", "b"]
    ws = TextVectorizer.adapt(["Hi, you", "hi, you"], min_count=1, tokenizer="whitespace", lowercase=False)
    assert ws.vocabulary == ["[PAD]", "[UNK]", "you", "Hi,", "hi,"] and ws.tokenizer == "whitespace"


def test_config_and_file_round_trip(tmp_path):
    v = TextVectorizer.adapt(["Ünïcode wörds, café!", "café"], min_count=1, max_length=5, tokenizer="whitespace")
    cfg = v.get_config()
    assert json.loads(json.dumps(cfg)) == cfg
    v2 = TextVectorizer.from_config(cfg)
    assert v2.get_config() == cfg
    path = v.save(tmp_path / "run" / "vectorizer.json")
    v3 = TextVectorizer.load(path)
    assert v3.get_config() == cfg
    texts = ["CAFÉ wörds, x", ""]
    assert ids_of(v3, texts)[0].tolist() == ids_of(v, texts)[0].tolist()


def test_load_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        TextVectorizer.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(DataError, match=str(bad)):
        TextVectorizer.load(bad)
    other = tmp_path / "other.json"
    other.write_text('{"vocabulary": []}')
    with pytest.raises(DataError):
        TextVectorizer.load(other)


def test_vectorize_numpy_matches(vec):
    texts = ["The movie", "good", "", "x y z"] * 3
    out = vectorize_numpy(texts, vec, batch_size=5)
    assert out.dtype == np.int32 and out.shape == (12, 6)
    assert out.tolist() == ids_of(vec, texts)[0].tolist()
    assert vectorize_numpy([], vec).shape == (0, 6)
