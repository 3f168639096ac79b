"""In-graph text vectorization (string -> token ids) with TensorFlow Text.

:class:`TextVectorizer` maps a batch of strings to fixed-length id rows using
TF ops only, so the same object can be used in ``tf.data.Dataset.map``, in a
``tf.function`` with ``input_signature=[tf.TensorSpec([None], tf.string)]`` and
inside an exported SavedModel's serving signature.  It is a ``tf.Module``: assign
it as an attribute of the module being saved (or ``ExportArchive.track`` it) and
its lookup table is saved with the model.

Steps, all TF ops:

1. **Invalid UTF-8 is replaced, not rejected**: every ill-formed byte sequence
   becomes U+FFFD (``tf.strings.unicode_transcode(..., errors="replace")``).
   Serving a request with a stray byte therefore does not fail; the U+FFFD is
   an ordinary token (usually out of vocabulary, so id 1).
2. ``tensorflow_text.case_fold_utf8`` if ``lowercase`` (Unicode case folding).
3. Tokenization: ``"unicode_script"`` (default; ``tensorflow_text.UnicodeScriptTokenizer``:
   splits on whitespace and between runs of different Unicode scripts, so
   punctuation is split from words: ``"it's good."`` -> ``it ' s good .``) or
   ``"whitespace"`` (``tensorflow_text.WhitespaceTokenizer``).
4. Lookup in a ``tf.lookup.StaticHashTable`` built once; unknown tokens -> 1.
5. Truncate to ``max_length`` and right-pad with 0.

Reserved ids: 0 = ``[PAD]``, 1 = ``[UNK]``; ``vocabulary[0:2]`` are always
these two.  The literal texts ``[PAD]``/``[UNK]`` in the input are not special
(they map to ``[UNK]``).  An empty or whitespace-only string gives an all-zero
row and a token count of 0.
"""

from __future__ import annotations

import collections
from typing import Iterable, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from .vectorizer_base import PAD_ID, Frozen, Vectorizer, as_string_batch, batches, valid_utf8

__all__ = ["TextVectorizer", "PAD_TOKEN", "UNK_TOKEN", "PAD_ID", "UNK_ID", "TOKENIZERS"]

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
UNK_ID = 1
TOKENIZERS = ("unicode_script", "whitespace")
_FILE_FORMAT = "attn_tf.TextVectorizer"
_FILE_VERSION = 1


def _make_tokenizer(kind: str, keep_whitespace: bool = False):
    if kind == "unicode_script":
        return tf_text.UnicodeScriptTokenizer(keep_whitespace=keep_whitespace)
    if kind == "whitespace":
        return tf_text.WhitespaceTokenizer()
    raise ValueError(f"tokenizer must be one of {', '.join(repr(t) for t in TOKENIZERS)}, got {kind!r}")


class TextVectorizer(Vectorizer):
    """String tensor ``[B]`` -> ``(ids int32 [B, max_length], token_count int32 [B])``.

    ``vocabulary`` is a list of distinct tokens; if it does not start with
    ``[PAD]``, ``[UNK]`` (and contains neither) they are prepended.  Build one
    from training texts with :meth:`adapt`; persist it with :meth:`save` /
    :meth:`load` (JSON) or :meth:`get_config` / :meth:`from_config`.
    """

    FILE_FORMAT = _FILE_FORMAT
    FILE_VERSION = _FILE_VERSION

    def __init__(
        self,
        vocabulary: Sequence[str],
        max_length: int = 64,
        lowercase: bool = True,
        tokenizer: str = "unicode_script",
        name: str | None = None,
        split_on_whitespace: bool = True,
    ):
        super().__init__(name=name or "text_vectorizer")
        if tokenizer not in TOKENIZERS:
            raise ValueError(
                f"tokenizer must be one of {', '.join(repr(t) for t in TOKENIZERS)}, got {tokenizer!r}"
            )
        if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 1:
            raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
        vocab = [str(t) for t in vocabulary]
        if vocab[:2] != [PAD_TOKEN, UNK_TOKEN]:
            if PAD_TOKEN in vocab or UNK_TOKEN in vocab:
                raise ValueError(
                    f"vocabulary must start with {PAD_TOKEN!r}, {UNK_TOKEN!r} (ids 0 and 1) "
                    f"or contain neither; got {vocab[:4]}..."
                )
            vocab = [PAD_TOKEN, UNK_TOKEN] + vocab
        if len(set(vocab)) != len(vocab):
            dupes = [t for t, c in collections.Counter(vocab).items() if c > 1][:5]
            raise ValueError(f"vocabulary has duplicate tokens, e.g. {dupes}")
        if any(t == "" for t in vocab):
            raise ValueError("vocabulary contains an empty token")

        self._settings = Frozen(
            vocabulary=tuple(vocab),
            max_length=int(max_length),
            lowercase=bool(lowercase),
            tokenizer=tokenizer,
            split_on_whitespace=bool(split_on_whitespace),
        )
        # UnicodeScriptTokenizer(keep_whitespace=False) treats a run of "Common"
        # script characters (punctuation, digits, spaces) as one token with the
        # spaces removed: ". ," -> ".,", "1 2 3" -> "123". Keeping the whitespace
        # tokens and dropping them afterwards splits at every space. Files saved
        # before this setting existed load with the old behaviour (False), so a
        # trained model keeps the tokens it was trained on.
        self._tokenizer = _make_tokenizer(tokenizer, keep_whitespace=self._settings.split_on_whitespace)
        keys = vocab[2:]
        with tf.init_scope():
            self._table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(keys if keys else [""], dtype=tf.string),
                    tf.constant(list(range(2, len(vocab))) if keys else [UNK_ID], dtype=tf.int32),
                ),
                default_value=UNK_ID,
            )

    # ------------------------------------------------------------------ properties
    @property
    def lowercase(self) -> bool:
        return self._settings.lowercase

    @property
    def tokenizer(self) -> str:
        return self._settings.tokenizer

    unk_id = UNK_ID

    # ------------------------------------------------------------------ TF ops
    def tokenize(self, strings) -> tf.RaggedTensor:
        """``[B]`` strings -> ``RaggedTensor [B, (tokens)]`` of string tokens (not truncated)."""
        strings = as_string_batch(strings)
        strings = valid_utf8(strings)
        if self._settings.lowercase:
            strings = tf_text.case_fold_utf8(strings)
        tokens = self._tokenizer.tokenize(strings)
        if isinstance(tokens, tf.RaggedTensor) and tokens.ragged_rank > 1:  # defensive
            tokens = tokens.merge_dims(1, -1)
        if self._settings.split_on_whitespace and self._settings.tokenizer == "unicode_script":
            tokens = _drop_whitespace_tokens(tokens)
        return tokens

    def __call__(self, strings):
        """``[B]`` strings -> ``(ids int32 [B, max_length], token_count int32 [B])``.

        ``token_count`` is the number of tokens *before* truncation, so
        ``token_count > max_length`` flags a truncated text.
        """
        tokens = self.tokenize(strings)
        token_count = tf.cast(tokens.row_lengths(), tf.int32)
        tokens = tokens[:, : self._settings.max_length]
        ids = tf.ragged.map_flat_values(self._table.lookup, tokens)
        ids = ids.to_tensor(default_value=PAD_ID, shape=[None, self._settings.max_length])
        return ids, token_count

    def lookup(self, tokens):
        """String tokens (any shape, dense or ragged) -> int32 ids."""
        if isinstance(tokens, tf.RaggedTensor):
            return tf.ragged.map_flat_values(self._table.lookup, tokens)
        return self._table.lookup(tf.convert_to_tensor(tokens, tf.string))

    # ------------------------------------------------------------------ Python helpers
    def tokens_for(self, strings) -> list[list[str]]:
        """Python token lists (truncated to ``max_length``), position-aligned with the ids.

        Out-of-vocabulary tokens keep their text (useful for labelling attention maps).
        """
        tokens = self.tokenize(strings)[:, : self._settings.max_length]
        return [[t.decode("utf-8", errors="replace") for t in row] for row in tokens.to_list()]

    # ------------------------------------------------------------------ building
    @classmethod
    def adapt(
        cls,
        texts: Iterable[str],
        max_tokens: int = 20000,
        min_count: int = 2,
        max_length: int = 64,
        batch_size: int = 1024,
        **kwargs,
    ) -> "TextVectorizer":
        """Build a vectorizer whose vocabulary comes from ``texts`` (the TRAINING texts).

        Tokens are counted after the same normalisation and tokenization that
        :meth:`__call__` uses (``kwargs``: ``lowercase``, ``tokenizer``, ``name``),
        kept if they occur at least ``min_count`` times, sorted by decreasing
        count with ties broken alphabetically (deterministic), and cut so that
        the vocabulary, including ``[PAD]`` and ``[UNK]``, has at most
        ``max_tokens`` entries.
        """
        if max_tokens < 2:
            raise ValueError(f"max_tokens must be >= 2 (room for [PAD] and [UNK]), got {max_tokens}")
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        probe = cls([], max_length=max_length, **kwargs)
        counter: collections.Counter = collections.Counter()
        for batch in batches(texts, batch_size):
            for row in probe.tokenize(batch).to_list():
                counter.update(row)
        reserved = {PAD_TOKEN.encode(), UNK_TOKEN.encode(), b""}
        items = [
            (tok.decode("utf-8"), c) for tok, c in counter.items() if c >= min_count and tok not in reserved
        ]
        items.sort(key=lambda tc: (-tc[1], tc[0]))
        vocab = [PAD_TOKEN, UNK_TOKEN] + [t for t, _ in items[: max_tokens - 2]]
        return cls(vocab, max_length=max_length, **kwargs)

    # ------------------------------------------------------------------ persistence
    def get_config(self) -> dict:
        s = self._settings
        return {
            "vocabulary": list(s.vocabulary),
            "max_length": s.max_length,
            "lowercase": s.lowercase,
            "tokenizer": s.tokenizer,
            "split_on_whitespace": s.split_on_whitespace,
        }

    @classmethod
    def from_config(cls, config: dict) -> "TextVectorizer":
        # Configs written before "split_on_whitespace" existed tokenized without it.
        return cls(**dict({"split_on_whitespace": False}, **config))

    def __repr__(self) -> str:
        s = self._settings
        return (
            f"TextVectorizer(vocabulary_size={len(s.vocabulary)}, max_length={s.max_length}, "
            f"lowercase={s.lowercase}, tokenizer={s.tokenizer!r})"
        )


def _drop_whitespace_tokens(tokens: tf.RaggedTensor) -> tf.RaggedTensor:
    """Removes the all-whitespace tokens of ``[B, (tokens)]``.

    Built from StaticRegexFullMatch, LogicalNot, Where, GatherV2, Cast, Cumsum
    and ConcatV2 only: ops TF Serving 2.20 has (checked, attn_tf/export/graph_ops.py),
    unlike those of ``tf.ragged.boolean_mask``.
    """
    values = tokens.flat_values
    keep = tf.logical_not(tf.strings.regex_full_match(values, r"\s+"))
    kept = tf.gather(values, tf.reshape(tf.where(keep), [-1]))
    counts = tf.concat([tf.zeros([1], tf.int64), tf.cumsum(tf.cast(keep, tf.int64))], axis=0)
    splits = tf.gather(counts, tf.cast(tokens.row_splits, tf.int64))
    return tf.RaggedTensor.from_row_splits(kept, splits, validate=False)

