"""Data pipeline: built-in datasets, user files, in-graph tokenization, tf.data.

Public API::

    DataError                      # user-fixable data problem (train.py: print, exit 2)
    cache_dir()                    # $ATTN_TF_CACHE or ~/.cache/attn_tf
    KNOWN_DATASETS                 # ("movie_reviews", "r8", "r52", "20newsgroups")
    load_dataset(name, seed=0, validation_fraction=0.1) -> TextClassificationData
    load_user_data(path, text_column="text", label_column="label", seed=0,
                   test_fraction=0.1, validation_fraction=0.1) -> TextClassificationData
    TextClassificationData         # dataclass: texts, int32 labels, class names, description
    TextVectorizer                 # strings -> (ids [B, max_length], token_count [B]), TF ops only
    make_dataset(texts, labels, vectorizer, batch_size, shuffle, seed) -> tf.data.Dataset
    vectorize_numpy(texts, vectorizer) -> np.ndarray
"""

from .base import TextClassificationData
from .cache import cache_dir, fetch_pypi_artifact
from .datasets import DEFAULT_DATASET, KNOWN_DATASETS, load_dataset
from .errors import DataError
from .pipeline import make_dataset, vectorize_numpy
from .tokenizer import PAD_ID, UNK_ID, TextVectorizer
from .user_data import load_user_data

__all__ = [
    "DataError",
    "cache_dir",
    "fetch_pypi_artifact",
    "load_dataset",
    "load_user_data",
    "KNOWN_DATASETS",
    "DEFAULT_DATASET",
    "TextClassificationData",
    "TextVectorizer",
    "PAD_ID",
    "UNK_ID",
    "make_dataset",
    "vectorize_numpy",
]
