"""Permutation, adversarial attention, uniform gap, erasure and ERASER on hand-built models."""

import math

import numpy as np

from attn_tf.evaluation import erasure, faithfulness


def test_uniform_attention_gives_zero_permutation_effect(vectorizer, key_data):
    import keras

    from attn_tf.evaluation.adapter import ClassifierAdapter
    from attn_tf.models.bilstm_attention import bilstm_attention

    keras.utils.set_random_seed(5)
    model = bilstm_attention(vectorizer.vocabulary_size, 2, max_length=10, embedding_dim=8, lstm_units=4,
                             attention_units=4)
    pool = model.get_layer("attention_pooling")
    pool.v.assign(np.zeros(pool.v.shape, np.float32))
    adapter = ClassifierAdapter(model)
    _, ids, _ = key_data
    probs, att = adapter.predict(ids)
    lengths = (ids != 0).sum(1)
    np.testing.assert_allclose(att[ids != 0], np.repeat(1.0 / lengths, lengths), rtol=1e-5)
    r = faithfulness.permutation(adapter, ids, probs, att, num_permutations=20)
    np.testing.assert_allclose(r["median_delta"], 0.0, atol=1e-6)
    gap = faithfulness.uniform_gap(adapter, ids, probs, probs.argmax(-1))
    assert gap["gap"] == 0.0 and gap["mean_abs_delta_p"] < 1e-6


def test_permutation_moves_the_key_model(key_adapter, key_data):
    _, ids, _ = key_data
    probs, att = key_adapter.predict(ids)
    r = faithfulness.permutation(key_adapter, ids, probs, att, num_permutations=30)
    assert np.median(r["median_delta"]) > 0.1  # the weight leaves the only informative token
    np.testing.assert_allclose(r["max_attention"], 1.0, atol=1e-6)


def test_adversarial_attention_within_bounds(key_adapter, random_adapter, key_data):
    _, ids, _ = key_data
    ids = ids[:6]
    for adapter, expect_large in ((random_adapter, True), (key_adapter, False)):
        probs, att = adapter.predict(ids)
        r = faithfulness.adversarial_attention(adapter, ids, probs, att, restarts=2, steps=100)
        found = np.isfinite(r["jsd"])
        assert np.all(r["jsd"][found] <= math.log(2) + 1e-9) and np.all(r["jsd"][found] >= 0)
        assert np.all(r["delta"][found] <= 0.05 + 1e-9)
        np.testing.assert_allclose(r["attention"][found].sum(1), 1.0, atol=1e-5)
        assert np.all(r["attention"][ids == 0] == 0)
        if expect_large:  # an untrained model barely uses its attention
            assert np.nanmean(r["jsd"]) > 0.3
        else:  # moving weight off the key token changes the output: only small JSD allowed
            assert np.nanmax(np.nan_to_num(r["jsd"])) < 0.3


def test_perfect_ranking_beats_random_on_comprehensiveness(key_adapter, key_data):
    _, ids, key_pos = key_data
    probs, att = key_adapter.predict(ids)
    perfect = np.zeros(ids.shape)
    perfect[np.arange(len(ids)), key_pos] = 1.0
    rng = np.random.default_rng(0)
    rank_random = rng.random(ids.shape)
    r = erasure.eraser(key_adapter, ids, probs, {"perfect": perfect, "random": rank_random})
    assert r["perfect"]["aopc_comprehensiveness"] > r["random"]["aopc_comprehensiveness"] + 0.2
    assert r["perfect"]["aopc_sufficiency"] < r["random"]["aopc_sufficiency"]
    # 1% of <= 8 tokens is one token: the key token, so removing it drops p_c by ~0.46
    assert abs(r["perfect"]["comprehensiveness"]["1"] - (probs[0, 1] - probs[0, 0])) < 1e-3


def test_eraser_variants_keep_order():
    ids = np.array([[5, 6, 7, 8, 0]], np.int32)
    scores = np.array([[0.1, 0.9, 0.2, 0.8, 0.0]])
    comp, suff = erasure.eraser_variants(ids, scores, bins=(50,))
    assert comp[0, 0].tolist() == [5, 7, 0, 0, 0]
    assert suff[0, 0].tolist() == [6, 8, 0, 0, 0]


def test_attention_layer_erasure(key_adapter, key_data):
    _, ids, _ = key_data
    probs, att = key_adapter.predict(ids)
    single = erasure.single_weight(key_adapter, ids, probs, att)
    assert single["summary"]["flip_rate_top"] == 1.0 and single["summary"]["flip_rate_random"] == 0.0
    many = erasure.many_weights(key_adapter, ids, probs, att, orders=("attention", "random"))
    lengths = (ids != 0).sum(1)
    np.testing.assert_allclose(many["fraction"]["attention"], 1.0 / lengths)  # flips after the first removal
