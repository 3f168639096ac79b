"""The tokenizer splits at every space: punctuation and digits separated by spaces stay apart."""

import numpy as np

from attn_tf.data import TextVectorizer


def test_spaces_separate_punctuation_and_digits():
    v = TextVectorizer.adapt(["a . , b 1 2"], max_length=16, min_count=1)
    assert v.tokens_for(["a . , b", "1 2 3", "well ?!  ok", "A wonderful, moving film."]) == [
        ["a", ".", ",", "b"], ["1", "2", "3"], ["well", "?!", "ok"], ["a", "wonderful", ",", "moving", "film", "."]]
    ids, counts = v(np.array(["a . , b", "", "   "], dtype=object))
    assert counts.numpy().tolist() == [4, 0, 0]
    assert ids.numpy()[0, :4].tolist() == [v.vocabulary.index(t) for t in ("a", ".", ",", "b")]


def test_vectorizers_saved_before_the_fix_keep_their_tokens(tmp_path):
    v = TextVectorizer.adapt(["a .,"], max_length=8)
    config = v.get_config()
    assert config["split_on_whitespace"] is True
    del config["split_on_whitespace"]  # a vectorizer.json of an older run
    old = TextVectorizer.from_config(config)
    assert old.tokens_for(["a . , b"]) == [["a", ".,", "b"]]  # the tokens its model was trained on
    path = v.save(tmp_path / "vectorizer.json")
    assert TextVectorizer.load(path).tokens_for(["x . , y"]) == [["x", ".", ",", "y"]]
