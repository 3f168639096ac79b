"""What attn-tf's text vectorizers share: the vectorizer.json format and the Python helpers.

`Vectorizer` is the base of `TextVectorizer` (words, vocabulary adapted on the
training texts) and `WordPieceVectorizer` (a pretrained model's word pieces).
A subclass sets `FILE_FORMAT` / `FILE_VERSION` and keeps its settings
(`vocabulary`, `max_length`, ...) in `self._settings`, a `Frozen`.

The file is `{"format": FILE_FORMAT, "version": FILE_VERSION, "config": {...}}`,
the config holding everything the vectorizer needs (vocabulary included), so a
run directory is self-contained. Written atomically (`attn_tf.atomic`); every
way a file can be unusable is one `DataError` naming the file and what is
wrong with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np
import tensorflow as tf

from attn_tf import atomic

from .errors import DataError

PAD_ID = 0  # id 0 is padding in every attn-tf vocabulary


class Frozen:
    """Holds plain Python values out of ``tf.Module``'s attribute tracking."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def as_string_batch(strings) -> tf.Tensor:
    """A string, a list of strings or a string tensor -> a 1-D string tensor ``[B]``."""
    if isinstance(strings, str):
        strings = [strings]
    strings = tf.convert_to_tensor(strings, dtype=tf.string)
    if strings.shape.rank == 0:
        strings = tf.reshape(strings, [1])
    elif strings.shape.rank is not None and strings.shape.rank != 1:
        raise ValueError(f"expected a 1-D batch of strings, got shape {strings.shape}")
    return strings


def valid_utf8(strings: tf.Tensor) -> tf.Tensor:
    """Invalid UTF-8 bytes replaced by U+FFFD (in-graph), so a client's bad bytes never fail a request."""
    return tf.strings.unicode_transcode(strings, input_encoding="UTF-8", output_encoding="UTF-8",
                                        errors="replace", replacement_char=0xFFFD)


def batches(texts: Iterable[str], batch_size: int):
    """Lists of at most ``batch_size`` consecutive texts."""
    batch: list[str] = []
    for t in texts:
        batch.append(t)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


class Vectorizer(tf.Module):
    """Base of the vectorizers: settings, file format and the Python helpers they share."""

    FILE_FORMAT = None
    FILE_VERSION = None
    pad_id = PAD_ID

    # ------------------------------------------------------------------ properties
    @property
    def vocabulary(self) -> list[str]:
        return list(self._settings.vocabulary)

    @property
    def vocabulary_size(self) -> int:
        return len(self._settings.vocabulary)

    @property
    def max_length(self) -> int:
        return self._settings.max_length

    # ------------------------------------------------------------------ Python helpers
    def ids_to_tokens(self, ids) -> list[list[str]]:
        """Id rows -> token strings, padding dropped (out-of-vocabulary tokens show as ``[UNK]``)."""
        vocab = self._settings.vocabulary
        rows = np.atleast_2d(np.asarray(ids))
        return [[vocab[int(i)] for i in row if int(i) != PAD_ID] for row in rows]

    def token_counts(self, texts: Iterable[str], batch_size: int = 1024) -> np.ndarray:
        """Number of tokens (before truncation) of every text."""
        counts = [self(batch)[1].numpy() for batch in batches(texts, batch_size)]
        return np.concatenate(counts) if counts else np.zeros([0], np.int32)

    def truncation_report(self, texts: Iterable[str], batch_size: int = 1024) -> tuple[int, int]:
        """``(n_truncated, n_total)``: how many texts have more than ``max_length`` tokens."""
        counts = self.token_counts(texts, batch_size)
        return int(np.sum(counts > self._settings.max_length)), int(len(counts))

    # ------------------------------------------------------------------ persistence
    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def save(self, path) -> Path:
        """Writes the config (the vocabulary included) as JSON, atomically."""
        path = Path(path)
        payload = {"format": self.FILE_FORMAT, "version": self.FILE_VERSION, "config": self.get_config()}
        atomic.write_json(path, payload, ensure_ascii=False, indent=1)
        return path

    @classmethod
    def load(cls, path):
        """Rebuilds a vectorizer written by :meth:`save`; :class:`DataError` if unusable."""
        path = Path(path)
        kind = cls.__name__
        try:
            with open(path, "r", encoding="utf-8") as f:
                payload = json.load(f)
        except FileNotFoundError as e:
            raise DataError(f"Vectorizer file {path} does not exist.") from e
        except (OSError, ValueError) as e:
            raise DataError(f"Vectorizer file {path} is unreadable or not JSON ({e}).") from e
        if not isinstance(payload, dict) or payload.get("format") != cls.FILE_FORMAT:
            raise DataError(f"{path} is not a {kind} file (missing format {cls.FILE_FORMAT!r}).")
        if payload.get("version") != cls.FILE_VERSION:
            raise DataError(f"{path}: unsupported {kind} file version {payload.get('version')!r}.")
        try:
            return cls.from_config(payload["config"])
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{path}: invalid {kind} config ({e}).") from e
