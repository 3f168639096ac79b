"""``tf.data`` input pipelines that vectorize text inside the graph."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from .tokenizer import TextVectorizer
from .vectorizer_base import PAD_ID

__all__ = ["length_sorted_batches", "make_dataset", "row_lengths", "vectorize_numpy"]

_VECTORIZE_CHUNK = 1024


def make_dataset(
    texts: Sequence[str],
    labels,
    vectorizer: TextVectorizer,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    cache: bool = True,
) -> tf.data.Dataset:
    """A dataset of ``(ids int32 [b, max_length], labels int32 [b])`` batches.

    Texts are vectorized in ``Dataset.map`` (in chunks of 1024, AUTOTUNE
    parallelism, deterministic order), the vectorized examples are cached in
    memory (``cache=True``), then shuffled with ``seed`` if ``shuffle`` (a new,
    seed-determined order every epoch), batched (the last batch may be smaller)
    and prefetched.  The cardinality (number of batches) is known.  ``labels``
    may be ``None`` to get ids only.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    texts = [str(t) for t in texts]
    strings = tf.constant(texts, dtype=tf.string) if texts else tf.zeros([0], tf.string)
    if labels is None:
        ds = tf.data.Dataset.from_tensor_slices(strings)
    else:
        labels = np.asarray(labels, dtype=np.int32).reshape(-1)
        if len(labels) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        ds = tf.data.Dataset.from_tensor_slices((strings, labels))

    def vectorize(x, *y):
        ids, _ = vectorizer(x)
        return (ids, *y) if y else ids

    ds = ds.batch(_VECTORIZE_CHUNK).map(
        vectorize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    ).unbatch()
    # unbatch() loses the cardinality; restoring it lets Keras show steps per epoch.
    ds = ds.apply(tf.data.experimental.assert_cardinality(len(texts)))
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(max(len(texts), 1), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def vectorize_numpy(texts: Sequence[str], vectorizer: TextVectorizer, batch_size: int = 1024) -> np.ndarray:
    """Eagerly vectorize ``texts`` -> ``np.int32 [N, max_length]`` (for small, eager use)."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    out = [vectorizer(texts[i : i + batch_size])[0].numpy() for i in range(0, len(texts), batch_size)]
    if not out:
        return np.zeros([0, vectorizer.max_length], np.int32)
    return np.concatenate(out).astype(np.int32, copy=False)


def row_lengths(ids: np.ndarray) -> np.ndarray:
    """Lengths of right-padded id rows ``[N, T]``: one past the last non-``PAD_ID`` id, at least 1."""
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"ids must be [N, T], got shape {ids.shape}")
    nonpad = ids != PAD_ID
    last = ids.shape[1] - np.argmax(nonpad[:, ::-1], axis=1)
    return np.where(nonpad.any(axis=1), last, 1).astype(np.int64)


def length_sorted_batches(lengths: np.ndarray, batch_size: int, window: int,
                          rng: np.random.Generator) -> np.ndarray:
    """An epoch's example order in which each run of ``batch_size`` holds texts of similar length.

    The examples are shuffled, cut into windows of ``window`` batches, sorted by
    length inside each window (so a batch pads to little more than its own
    texts), and the batches are shuffled again, so short and long batches
    alternate over the epoch. Only the last window can end in a partial batch,
    and it stays last: there are ceil(N / batch_size) batches, as without sorting. A window of
    ~100 batches keeps most of the randomness of a plain shuffle (which
    examples share a batch is still random among texts of similar length).

    Returns the permutation of ``range(len(lengths))``; consecutive
    ``batch_size`` slices of it are the batches, in order.
    """
    if batch_size < 1 or window < 1:
        raise ValueError(f"batch_size and window must be >= 1, got {batch_size} and {window}")
    lengths = np.asarray(lengths)
    order = rng.permutation(len(lengths))
    span = batch_size * window
    batches = []
    for start in range(0, len(order), span):
        chunk = order[start : start + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    if not batches:
        return order
    # The partial batch (if any) stays last, so the batch boundaries stay at multiples of batch_size.
    full = len(batches) - (len(batches[-1]) < batch_size)
    shuffled = [batches[i] for i in rng.permutation(full)] + batches[full:]
    return np.concatenate(shuffled)
