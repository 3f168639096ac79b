"""Fixtures of the evaluation tests (models with known answers: eval_models.py)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from eval_models import KEY, WORDS, key_token_model, sentences


@pytest.fixture(scope="session")
def vectorizer():
    from attn_tf.data import TextVectorizer

    return TextVectorizer(WORDS, max_length=10)


@pytest.fixture(scope="session")
def key_model(vectorizer):
    key_id = vectorizer.vocabulary.index(KEY)
    return key_token_model(vectorizer.vocabulary, key_id)


@pytest.fixture(scope="session")
def key_adapter(key_model):
    from attn_tf.evaluation.adapter import ClassifierAdapter

    return ClassifierAdapter(key_model)


@pytest.fixture(scope="session")
def key_data(vectorizer):
    from attn_tf.data import vectorize_numpy

    texts = sentences(24)
    ids = vectorize_numpy(texts, vectorizer)
    key_pos = (ids == vectorizer.vocabulary.index(KEY)).argmax(1)
    return texts, ids, key_pos


@pytest.fixture(scope="session")
def random_adapter(vectorizer):
    """An untrained small BiLSTM (seeded) for budget checks."""
    import keras

    from attn_tf.evaluation.adapter import ClassifierAdapter
    from attn_tf.models.bilstm_attention import bilstm_attention

    keras.utils.set_random_seed(3)
    model = bilstm_attention(vectorizer.vocabulary_size, 2, max_length=10, embedding_dim=8, lstm_units=4,
                             attention_units=4)
    return ClassifierAdapter(model)
