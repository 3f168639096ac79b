"""make_dataset: batches of (ids, labels), every example once per epoch, seeded shuffle."""

import numpy as np
import pytest
import tensorflow as tf

from attn_tf.data import TextVectorizer, make_dataset

TEXTS = [f"word{i} common" for i in range(25)]
LABELS = np.arange(25, dtype=np.int32) % 3


@pytest.fixture(scope="module")
def vec():
    return TextVectorizer.adapt(TEXTS, min_count=1, max_length=4)


def epoch(ds):
    ids, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(ids), np.concatenate(labels)


def test_shapes_dtypes_and_order(vec):
    ds = make_dataset(TEXTS, LABELS, vec, batch_size=8, shuffle=False, seed=0)
    spec_x, spec_y = ds.element_spec
    assert spec_x.dtype == tf.int32 and spec_x.shape.as_list() == [None, 4]
    assert spec_y.dtype == tf.int32
    assert int(ds.cardinality()) == 4
    sizes = [int(x.shape[0]) for x, _ in ds]
    assert sizes == [8, 8, 8, 1]
    ids, labels = epoch(ds)
    assert labels.tolist() == LABELS.tolist()
    expected = vec(tf.constant(TEXTS))[0].numpy()
    assert (ids == expected).all()


def test_shuffle_is_seeded_and_complete(vec):
    expected = {tuple(r): int(y) for r, y in zip(vec(tf.constant(TEXTS))[0].numpy(), LABELS)}
    a = make_dataset(TEXTS, LABELS, vec, batch_size=4, shuffle=True, seed=1)
    b = make_dataset(TEXTS, LABELS, vec, batch_size=4, shuffle=True, seed=1)
    ids_a1, lab_a1 = epoch(a)
    ids_a2, _ = epoch(a)  # second epoch: reshuffled
    ids_b1, _ = epoch(b)
    assert (ids_a1 == ids_b1).all()  # same seed, same order
    assert not (ids_a1 == ids_a2).all()
    assert sorted(map(tuple, ids_a1.tolist())) == sorted(expected)  # each example exactly once
    assert all(expected[tuple(r)] == y for r, y in zip(ids_a1.tolist(), lab_a1.tolist()))  # pairs intact


def test_ids_only_and_errors(vec):
    ds = make_dataset(TEXTS[:3], None, vec, batch_size=2, shuffle=False, seed=0)
    assert ds.element_spec.shape.as_list() == [None, 4]
    with pytest.raises(ValueError):
        make_dataset(TEXTS, LABELS[:3], vec, batch_size=2, shuffle=False, seed=0)
    with pytest.raises(ValueError):
        make_dataset(TEXTS, LABELS, vec, batch_size=0, shuffle=False, seed=0)


def test_fit_smoke(vec):
    """The dataset feeds Keras directly."""
    import keras

    model = keras.Sequential([
        keras.Input((4,), dtype="int32"),
        keras.layers.Embedding(vec.vocabulary_size, 4),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(3),
    ])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    hist = model.fit(make_dataset(TEXTS, LABELS, vec, 8, True, 0), epochs=2, verbose=0, shuffle=False)
    assert np.isfinite(hist.history["loss"][0])


# ----------------------------------------------------------------- length-sorted batches

def test_row_lengths_of_right_padded_rows():
    from attn_tf.data.pipeline import row_lengths

    ids = np.array([[5, 6, 0, 0], [5, 100, 7, 8], [0, 0, 0, 0], [9, 0, 0, 0]], np.int32)
    assert row_lengths(ids).tolist() == [2, 4, 1, 1]
    with pytest.raises(ValueError, match=r"\[N, T\]"):
        row_lengths(np.zeros([3], np.int32))


def test_length_sorted_batches_keep_every_example_once_and_group_similar_lengths():
    from attn_tf.data.pipeline import length_sorted_batches

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, size=1003)
    order = length_sorted_batches(lengths, 32, 10, np.random.default_rng(1))
    assert sorted(order.tolist()) == list(range(1003))
    batches = [order[i:i + 32] for i in range(0, len(order), 32)]
    assert len(batches) == -(-1003 // 32) and all(len(b) == 32 for b in batches[:-1]) and len(batches[-1]) == 11
    padded = sum(lengths[b].max() * len(b) for b in batches)
    plain = sum(lengths[b].max() * len(b) for b in (rng.permutation(1003)[i:i + 32] for i in range(0, 1003, 32)))
    # Sorted inside windows of 320 texts, a batch pads to little more than its own lengths.
    assert padded < 1.2 * lengths.sum() and padded < 0.7 * plain
    # Short and long batches alternate: the batch order is shuffled, not sorted over the epoch.
    maxima = [lengths[b].max() for b in batches[:-1]]
    assert maxima != sorted(maxima)


def test_length_sorted_batches_are_determined_by_the_generator_seed():
    from attn_tf.data.pipeline import length_sorted_batches

    lengths = np.arange(100) % 17 + 1
    a = length_sorted_batches(lengths, 8, 4, np.random.default_rng(5))
    b = length_sorted_batches(lengths, 8, 4, np.random.default_rng(5))
    c = length_sorted_batches(lengths, 8, 4, np.random.default_rng(6))
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    with pytest.raises(ValueError, match="window"):
        length_sorted_batches(lengths, 8, 0, np.random.default_rng(5))
