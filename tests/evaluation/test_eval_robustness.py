"""Random noise, DeepWordBug- and HotFlip-style attacks: alignment, success, budgets."""

import numpy as np

from attn_tf.evaluation import attacks, perturb
from eval_models import sentences


def test_noise_alignment():
    rng = np.random.default_rng(0)
    toks = "the movie was really good and its plot quite fun".split()
    p = perturb.char_noise(toks, 2, rng)
    assert len(p.tokens) == len(toks) and len(p.changed) == 2 and p.edit_distance >= 2
    assert sum(a != b for a, b in zip(p.tokens, toks)) == 2
    d = perturb.word_drop(toks, 0.2, rng)
    assert len(d.tokens) == len(toks) - 2
    assert [toks[i] for i in d.align] == d.tokens
    s = perturb.word_swap(toks, 0.2, rng)
    assert [toks[i] for i in s.align] == s.tokens and sorted(s.tokens) == sorted(toks)
    for cfg in perturb.NOISE_CONFIGS:
        out = perturb.apply_noise([toks, toks[:3]], cfg)
        assert len(out) == 2
    for kind in perturb.EDIT_KINDS:
        new, dist = perturb.char_edit("movie", kind, rng)
        assert new != "movie" and dist in (1, 2)


def test_tokens_to_ids_matches_vectorizer(vectorizer):
    from attn_tf.data import vectorize_numpy

    texts = ["the movie was good", "plot unknownword"]
    ids = perturb.tokens_to_ids(vectorizer, vectorizer.tokens_for(texts))
    np.testing.assert_array_equal(ids, vectorize_numpy(texts, vectorizer))


def test_attacks_break_the_key_model(key_adapter, vectorizer, key_data):
    texts, ids, _ = key_data
    toks = vectorizer.tokens_for(texts)
    labels = np.ones(len(texts), int)
    for name, r in (("deepwordbug", attacks.deepwordbug(key_adapter, vectorizer, toks, labels)),
                    ("hotflip", attacks.hotflip(key_adapter, vectorizer, toks, labels))):
        s = attacks.summarize(r)
        assert s["attack_success_rate"] == 1.0 and s["accuracy_under_attack"] == 0.0, name
        assert all(c == 1 for c in r["changed_words"]), name
        for orig, adv in zip(toks, r["tokens"]):
            changed = [a for a, b in zip(orig, adv) if a != b]
            assert changed == ["good"], (name, orig, adv)
    # already-wrong instances are skipped
    r = attacks.deepwordbug(key_adapter, vectorizer, toks[:4], np.zeros(4, int))
    assert attacks.summarize(r)["counts"]["skipped_already_wrong"] == 4


def test_attacks_respect_budgets(random_adapter, vectorizer):
    texts = sentences(40, seed=1, with_key=False)
    toks = vectorizer.tokens_for(texts)
    probs, _ = random_adapter.predict(perturb.tokens_to_ids(vectorizer, toks))
    labels = probs.argmax(-1)  # every instance is attacked
    words = np.array([sum(perturb.is_word(t) for t in tk) for tk in toks])
    r = attacks.deepwordbug(random_adapter, vectorizer, toks, labels, max_word_fraction=0.25, query_budget=7,
                            max_edit_distance=3)
    assert np.all(r["queries"] <= 7)
    assert np.all(r["changed_words"] <= np.maximum(1, np.floor(0.25 * words)))
    assert np.all(r["edit_distance"] <= 3)
    r = attacks.hotflip(random_adapter, vectorizer, toks, labels, max_words=1, query_budget=4, top_n=10)
    assert np.all(r["queries"] <= 4) and np.all(r["changed_words"] <= 1)
    r = attacks.hotflip(random_adapter, vectorizer, toks, labels, max_words=3, max_word_fraction=0.2)
    assert np.all(r["changed_words"] <= np.minimum(3, np.maximum(1, np.floor(0.2 * words))))
    s = attacks.summarize(r)
    assert s["counts"]["skipped_already_wrong"] == 0
    assert abs(s["accuracy_under_attack"] - (1 - s["attack_success_rate"])) < 1e-9


def test_training_remedies(key_adapter, vectorizer, key_data):
    from attn_tf.training.augment import adversarial_typos, noisy_ids

    texts, ids, key_pos = key_data
    toks = vectorizer.tokens_for(texts)
    rng = np.random.default_rng(0)
    adv = adversarial_typos(key_adapter, vectorizer, toks, ids, np.ones(len(ids), np.int32), rng)
    # the gradient points at the key word; its typo is out of vocabulary, everything else is kept
    assert (adv[np.arange(len(ids)), key_pos] == 1).all()
    rest = np.ones(ids.shape, bool)
    rest[np.arange(len(ids)), key_pos] = False
    np.testing.assert_array_equal(adv[rest], ids[rest])
    noisy = noisy_ids(toks, ids, vectorizer, np.random.default_rng(1), probability=1.0)
    assert (noisy != ids).any(1).mean() > 0.5
    np.testing.assert_array_equal(noisy_ids(toks, ids, vectorizer, rng, probability=0.0), ids)
