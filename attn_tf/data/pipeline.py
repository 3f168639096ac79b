"""``tf.data`` input pipelines that vectorize text inside the graph."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from .tokenizer import TextVectorizer

__all__ = ["make_dataset", "vectorize_numpy"]

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
