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
