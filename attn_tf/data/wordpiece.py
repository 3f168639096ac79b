"""In-graph BERT WordPiece vectorization (string -> [CLS] pieces [SEP] ids) with TensorFlow Text.

:class:`WordPieceVectorizer` is the tokenizer of the pretrained BERT models
(``--model minilm``): the model's own ``vocab.txt``, uncased, TF ops only, so
the same object works in ``tf.data``, in a ``tf.function`` with a
``[None] tf.string`` signature and inside the exported SavedModel (it is a
``tf.Module``; track it with the model). Steps:

1. Invalid UTF-8 becomes U+FFFD (``tf.strings.unicode_transcode(errors="replace")``),
   never an error (as in :class:`attn_tf.data.TextVectorizer`).
2. ``tensorflow_text.FastBertTokenizer(vocab, lower_case_nfd_strip_accents=True)``:
   BERT's basic tokenization (case folding, accents stripped, punctuation and
   CJK characters split off) and greedy longest-match-first WordPiece
   (continuations carry ``##``; a word with no match, or over 100 bytes, is
   ``[UNK]``). One difference from Hugging Face's tokenizer: TF Text case-folds
   with NFKC, so compatibility characters are decomposed (``…`` -> ``. . .``).
3. ``[CLS]`` + the first ``max_length - 2`` pieces + ``[SEP]``, right-padded
   with ``[PAD]`` (id 0) to ``max_length``.

``token_count`` counts the tokens *before* truncation, ``[CLS]`` and
``[SEP]`` included, so ``token_count > max_length`` flags a truncated text,
as for the other vectorizers. A text without any word piece (empty,
whitespace only) gets no ``[CLS]``/``[SEP]`` either: an all-padding row and a
token count of 0, which the serving signature answers with "no evidence".
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from .vectorizer_base import Frozen, Vectorizer, as_string_batch, valid_utf8

__all__ = ["WordPieceVectorizer", "merge_word_pieces", "word_spans"]

_FILE_FORMAT = "attn_tf.WordPieceVectorizer"
_FILE_VERSION = 1
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")


class WordPieceVectorizer(Vectorizer):
    """String tensor ``[B]`` -> ``(ids int32 [B, max_length], token_count int32 [B])``.

    Args:
      vocabulary: the WordPiece pieces, index = id (``vocab.txt``); must hold
        ``[PAD]`` at id 0 and ``[UNK]``, ``[CLS]``, ``[SEP]``.
      max_length: row length, ``[CLS]`` and ``[SEP]`` included (>= 3).
      lower_case: uncased model (lower case, accents stripped).
    """

    FILE_FORMAT = _FILE_FORMAT
    FILE_VERSION = _FILE_VERSION

    def __init__(self, vocabulary: Sequence[str], max_length: int = 128, lower_case: bool = True,
                 name: str | None = None):
        super().__init__(name=name or "wordpiece_vectorizer")
        vocab = [str(t) for t in vocabulary]
        if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < 3:
            raise ValueError(f"max_length must be an integer >= 3 ([CLS], a piece, [SEP]), got {max_length!r}")
        missing = [s for s in SPECIALS if s not in vocab]
        if missing:
            raise ValueError(f"the vocabulary lacks the special pieces {missing}")
        if vocab[0] != "[PAD]":
            raise ValueError(f"the vocabulary must have [PAD] at id 0, got {vocab[0]!r}")
        self._settings = Frozen(vocabulary=tuple(vocab), max_length=int(max_length),
                                 lower_case=bool(lower_case), cls_id=vocab.index("[CLS]"),
                                 sep_id=vocab.index("[SEP]"), unk_id=vocab.index("[UNK]"))
        with tf.init_scope():
            self._tokenizer = tf_text.FastBertTokenizer(
                vocab, token_out_type=tf.int64, unknown_token="[UNK]",
                lower_case_nfd_strip_accents=bool(lower_case))
            self._pieces = tf.constant(vocab, dtype=tf.string)

    # ------------------------------------------------------------------ properties
    @property
    def lower_case(self) -> bool:
        return self._settings.lower_case


    @property
    def cls_id(self) -> int:
        return self._settings.cls_id

    @property
    def sep_id(self) -> int:
        return self._settings.sep_id

    # ------------------------------------------------------------------ TF ops
    def piece_ids(self, strings) -> tf.RaggedTensor:
        """``[B]`` strings -> ``RaggedTensor [B, (pieces)]`` int32 piece ids (no specials, not truncated)."""
        strings = as_string_batch(strings)
        strings = valid_utf8(strings)
        ids = self._tokenizer.tokenize(strings)
        if ids.ragged_rank > 1:  # defensive: FastBertTokenizer returns [B, (pieces)]
            ids = ids.merge_dims(1, -1)
        return tf.cast(ids, tf.int32)

    def encode(self, strings):
        """``[B]`` strings -> ``(ids [B, T], tokens string [B, T], token_count [B])``.

        ``tokens`` are the pieces of ``ids`` (``""`` for padding); what the
        serving signature returns.
        """
        s = self._settings
        pieces = self.piece_ids(strings)
        n = tf.cast(pieces.row_lengths(), tf.int32)
        has = n > 0
        token_count = tf.where(has, n + 2, 0)
        kept = pieces[:, : s.max_length - 2]
        batch = tf.shape(n)[0]
        cls = tf.fill([batch, 1], s.cls_id)
        sep = tf.fill([batch, 1], s.sep_id)
        rows = tf.concat([tf.RaggedTensor.from_tensor(cls), kept, tf.RaggedTensor.from_tensor(sep)], axis=1)
        ids = rows.to_tensor(default_value=0, shape=[None, s.max_length])
        tokens = tf.gather(self._pieces, ids)
        # No piece at all: no [CLS]/[SEP] either (an all-padding row, tokens "").
        ids = tf.where(has[:, None], ids, 0)
        tokens = tf.where(ids != 0, tokens, "")
        return ids, tokens, token_count

    def __call__(self, strings):
        """``[B]`` strings -> ``(ids int32 [B, max_length], token_count int32 [B])`` (counts before truncation)."""
        ids, _, token_count = self.encode(strings)
        return ids, token_count

    # ------------------------------------------------------------------ Python helpers
    def tokens_for(self, strings) -> list[list[str]]:
        """Python piece lists of each text as the model sees it ([CLS] ... [SEP], truncated)."""
        ids, _ = self(strings)
        return self.ids_to_tokens(ids.numpy())

    # ------------------------------------------------------------------ persistence
    def get_config(self) -> dict:
        s = self._settings
        return {"vocabulary": list(s.vocabulary), "max_length": s.max_length, "lower_case": s.lower_case}

    @classmethod
    def from_config(cls, config: dict) -> "WordPieceVectorizer":
        return cls(**config)

    @staticmethod
    def is_file(path) -> bool:
        """Whether ``path`` is a file written by :meth:`save` (reads only its start)."""
        try:
            with open(path, "r", encoding="utf-8") as f:
                head = f.read(256)
        except (OSError, UnicodeDecodeError):
            return False
        return '"format": "%s"' % _FILE_FORMAT in head or '"format":"%s"' % _FILE_FORMAT in head

    def __repr__(self) -> str:
        s = self._settings
        return (f"WordPieceVectorizer(vocabulary_size={len(s.vocabulary)}, max_length={s.max_length}, "
                f"lower_case={s.lower_case})")


def word_spans(tokens: Sequence[str]) -> list[list[int]]:
    """Groups piece positions into words: a ``##`` piece joins the word before it.

    ``["[CLS]", "em", "##oj", "##i", "!", "[SEP]"]`` -> ``[[0], [1, 2, 3], [4], [5]]``.
    """
    spans: list[list[int]] = []
    for i, t in enumerate(tokens):
        if t.startswith("##") and spans:
            spans[-1].append(i)
        else:
            spans.append([i])
    return spans


def merge_word_pieces(tokens: Sequence[str], attention):
    """Word-level attention from piece-level attention.

    The rule (Clark et al., 2019, "What Does BERT Look At?"): attention *to* a
    word is the **sum** over its pieces (the key columns), attention *from* a
    word is the **mean** over its pieces (the query rows), so every row still
    sums to what it summed to before (1 for a real query).

    Args:
      tokens: the Q = K piece strings.
      attention: ``[..., Q, K]`` array (e.g. ``[H, Q, K]``).
    Returns:
      ``(words, merged)``: the word strings (pieces joined, ``##`` dropped) and
      the ``[..., W, W]`` array.
    """
    attention = np.asarray(attention, dtype=np.float32)
    spans = word_spans(tokens)
    words = ["".join(tokens[j][2:] if k else tokens[j] for k, j in enumerate(span)) for span in spans]
    keys = np.stack([attention[..., span].sum(axis=-1) for span in spans], axis=-1)  # [..., Q, W]
    merged = np.stack([keys[..., span, :].mean(axis=-2) for span in spans], axis=-2)  # [..., W, W]
    return words, merged

