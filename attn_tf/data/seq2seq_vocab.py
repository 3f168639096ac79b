"""Token vocabularies of seq2seq models: strings <-> ids with TF ops only.

:class:`SequenceVocabulary` is a ``tf.Module`` (its lookup table is saved with
an exported model) that turns a batch of strings into right-padded id rows
and id rows back into token strings and joined text, inside ``tf.data``, a
``tf.function`` or a SavedModel signature.

Reserved ids: 0 ``[PAD]``, 1 ``[UNK]``, 2 ``[START]``, 3 ``[END]``.

Tokenizers:

* ``"chars"``: Unicode characters (``tf.strings.unicode_split``); joined
  back with no separator (cmudict words);
* ``"whitespace"``: ``tensorflow_text.WhitespaceTokenizer``; joined with a
  space (ARPAbet phonemes);
* ``"unicode_script"``: words and punctuation
  (``tensorflow_text.UnicodeScriptTokenizer``); joined with a space, then the
  space before ``. , ! ? ; : )`` and around an apostrophe is removed
  (``didn ' t .`` -> ``didn't.``).
* ``"wordpiece"``: the words and punctuation of ``"unicode_script"``, each
  split into WordPiece subwords (``tensorflow_text.FastWordpieceTokenizer``,
  continuations marked ``##``), so a rare word becomes known pieces instead
  of ``[UNK]``. :meth:`SequenceVocabulary.adapt` learns the pieces from the
  (training) texts with tensorflow-text's WordPiece learner
  (``wordpiece_tokenizer_learner_lib.learn``, at most ``WORDPIECE_SIZE``
  pieces). Joined back by removing `` ##`` and then as ``"unicode_script"``.
  All in TF ops: training, decoding and the exported signature share them.

Input normalisation: invalid UTF-8 becomes U+FFFD, leading/trailing white
space is stripped, and with ``lowercase`` the text is case-folded
(``tensorflow_text.case_fold_utf8``).  Unknown tokens map to ``[UNK]``.  An
empty (or white-space only) string gives a row of padding and length 0.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from .cache import cache_dir, read_json_cache, write_json_atomic
from .errors import DataError

__all__ = ["SequenceVocabulary", "PAD_ID", "UNK_ID", "START_ID", "END_ID", "SPECIAL_TOKENS", "SEQ_TOKENIZERS"]

PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[START]", "[END]")
SEQ_TOKENIZERS = ("chars", "whitespace", "unicode_script", "wordpiece")
# Largest learned WordPiece vocabulary (reserved tokens included; --vocab-size caps it further):
# sized for the ~100k-pair de_en training split and a small model.
WORDPIECE_SIZE = 8000
WORDPIECE_INPUT_WORDS = 20000
SUFFIX = "##"
_FORMAT = "attn_tf.SequenceVocabulary"


def _wordpiece_cache_file(counts, settings) -> Path:
    """Cache file of the pieces learned from `counts` ([(word, count)], sorted) with `settings`."""
    h = hashlib.sha256(json.dumps([settings, counts], ensure_ascii=False).encode("utf-8")).hexdigest()
    return cache_dir() / "parsed" / ("wordpiece-%s.json" % h[:32])


class _Frozen:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class SequenceVocabulary(tf.Module):
    """Strings ``[B]`` <-> token ids for one side of a seq2seq task.

    Args:
      vocabulary: the tokens; the four special tokens are prepended if absent.
      tokenizer: "chars", "whitespace" or "unicode_script".
      lowercase: case-fold the text first.
      max_length: tokens kept per text (longer texts are truncated; the
        ``[START]``/``[END]`` markers added by :meth:`encode` come on top).
    """

    def __init__(self, vocabulary, tokenizer="unicode_script", lowercase=True, max_length=64, name=None):
        super().__init__(name=name or "sequence_vocabulary")
        if tokenizer not in SEQ_TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {SEQ_TOKENIZERS}, got {tokenizer!r}")
        if int(max_length) < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        vocab = [str(t) for t in vocabulary]
        if tuple(vocab[:4]) != SPECIAL_TOKENS:
            if any(t in vocab for t in SPECIAL_TOKENS):
                raise ValueError(f"vocabulary must start with {SPECIAL_TOKENS} or contain none of them")
            vocab = list(SPECIAL_TOKENS) + vocab
        if len(set(vocab)) != len(vocab):
            raise ValueError("vocabulary has duplicate tokens")
        if "" in vocab:
            raise ValueError("vocabulary contains an empty token")
        self._settings = _Frozen(vocabulary=tuple(vocab), tokenizer=tokenizer, lowercase=bool(lowercase),
                                 max_length=int(max_length))
        keys = vocab[4:]
        with tf.init_scope():
            self._table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(keys if keys else ["[none]"], tf.string),
                    tf.constant(list(range(4, len(vocab))) if keys else [UNK_ID], tf.int32)),
                default_value=UNK_ID)
            self._tokens = tf.constant(vocab, tf.string)
        # Held outside tf.Module tracking: the tokenizers own no resources, and as
        # tracked children their tf.functions would be traced again at save time.
        if tokenizer == "whitespace":
            self._ops = _Frozen(tokenizer=tf_text.WhitespaceTokenizer())
        elif tokenizer == "unicode_script":
            self._ops = _Frozen(tokenizer=tf_text.UnicodeScriptTokenizer())
        elif tokenizer == "wordpiece":
            with tf.init_scope():
                pieces = tf_text.FastWordpieceTokenizer(
                    vocab=vocab, suffix_indicator=SUFFIX, token_out_type=tf.string, unknown_token="[UNK]",
                    no_pretokenization=True, support_detokenization=False)
            self._ops = _Frozen(tokenizer=tf_text.UnicodeScriptTokenizer(), pieces=pieces)
        else:
            self._ops = _Frozen(tokenizer=None)

    # --------------------------------------------------------------- properties
    @property
    def vocabulary(self):
        return list(self._settings.vocabulary)

    @property
    def size(self):
        return len(self._settings.vocabulary)

    @property
    def tokenizer(self):
        return self._settings.tokenizer

    @property
    def lowercase(self):
        return self._settings.lowercase

    @property
    def max_length(self):
        return self._settings.max_length

    @property
    def separator(self):
        return "" if self._settings.tokenizer == "chars" else " "

    # --------------------------------------------------------------- TF ops
    def tokenize(self, strings):
        """``[B]`` strings -> ``RaggedTensor [B, (n)]`` of string tokens (not truncated)."""
        strings = tf.convert_to_tensor(strings, tf.string)
        if strings.shape.rank == 0:
            strings = tf.reshape(strings, [1])
        strings = tf.strings.unicode_transcode(strings, "UTF-8", "UTF-8", errors="replace",
                                               replacement_char=0xFFFD)
        if self._settings.lowercase:
            strings = tf_text.case_fold_utf8(strings)
        strings = tf.strings.strip(strings)
        if self._ops.tokenizer is None:
            return tf.strings.unicode_split(strings, "UTF-8")
        tokens = self._ops.tokenizer.tokenize(strings)
        if isinstance(tokens, tf.RaggedTensor) and tokens.ragged_rank > 1:
            tokens = tokens.merge_dims(1, -1)
        if self._settings.tokenizer == "wordpiece":
            # [B, (words)] -> [B, (words), (pieces)] -> [B, (pieces)]
            tokens = tokens.with_flat_values(self._ops.pieces.tokenize(tokens.flat_values)).merge_dims(1, -1)
        return tokens

    def encode(self, strings, add_start=False, add_end=False, pad_to=None):
        """``[B]`` strings -> ``(ids int32 [B, L], lengths int32 [B])``.

        ``L`` is the longest row of the batch (after truncation to
        ``max_length`` and the optional markers), or ``pad_to``.
        ``lengths`` counts the ids of each row (markers included).
        """
        tokens = self.tokenize(strings)[:, : self._settings.max_length]
        ids = tf.ragged.map_flat_values(self._table.lookup, tokens)
        rows = tf.shape(ids.row_lengths())[0]
        if add_start:
            ids = tf.concat([tf.fill([rows, 1], START_ID), ids], axis=1)
        if add_end:
            ids = tf.concat([ids, tf.fill([rows, 1], END_ID)], axis=1)
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        dense = ids.to_tensor(default_value=PAD_ID, shape=None if pad_to is None else [None, pad_to])
        return tf.cast(dense, tf.int32), lengths

    def __call__(self, strings):
        return self.encode(strings)

    def id_to_token(self, ids):
        """int ids (any shape) -> token strings; ``[PAD]`` becomes ""."""
        ids = tf.convert_to_tensor(ids, tf.int32)
        tokens = tf.gather(self._tokens, tf.clip_by_value(ids, 0, len(self._settings.vocabulary) - 1))
        return tf.where(tf.equal(ids, PAD_ID), tf.constant("", tf.string), tokens)

    def decode(self, ids):
        """id rows ``[B, T]`` -> text ``[B]``: tokens up to the first ``[END]``, specials dropped, joined."""
        ids = tf.convert_to_tensor(ids, tf.int32)
        ended = tf.cumsum(tf.cast(tf.equal(ids, END_ID), tf.int32), axis=1) > 0
        keep = tf.logical_and(tf.logical_not(ended), ids >= 4)
        tokens = tf.ragged.boolean_mask(tf.gather(self._tokens, tf.clip_by_value(ids, 0, self.size - 1)), keep)
        text = tf.strings.reduce_join(tokens, axis=-1, separator=self.separator)
        if self._settings.tokenizer == "wordpiece":
            text = tf.strings.regex_replace(text, " " + SUFFIX, "")
            # a leading "##" piece (nothing before it to join): dropped marker
            text = tf.strings.regex_replace(text, "^" + SUFFIX, "")
        if self._settings.tokenizer in ("unicode_script", "wordpiece"):
            text = tf.strings.regex_replace(text, r" ([.,!?;:%)\]}])", r"\1")
            text = tf.strings.regex_replace(text, r"([(\[{]) ", r"\1")
            text = tf.strings.regex_replace(text, r"(\w) ' (\w)", r"\1'\2")
        return text

    # --------------------------------------------------------------- Python helpers
    def tokens_for(self, strings):
        """Python token lists (truncated to ``max_length``), aligned with the ids of :meth:`encode`."""
        tokens = self.tokenize(list(strings))[:, : self._settings.max_length]
        return [[t.decode("utf-8", "replace") for t in row] for row in tokens.to_list()]

    def encode_numpy(self, strings, add_start=False, add_end=False, batch_size=4096):
        """Eager :meth:`encode` in chunks -> list of int32 arrays (one per text, no padding)."""
        out = []
        strings = list(strings)
        for i in range(0, len(strings), batch_size):
            ids, lengths = self.encode(tf.constant(strings[i:i + batch_size], tf.string), add_start, add_end)
            ids, lengths = ids.numpy(), lengths.numpy()
            out.extend(ids[j, :lengths[j]].astype(np.int32) for j in range(len(lengths)))
        return out

    @classmethod
    def adapt(cls, texts, tokenizer="unicode_script", lowercase=True, max_length=64, max_tokens=20000,
              min_count=1, batch_size=4096):
        """Builds the vocabulary from (training) texts: tokens by decreasing count, ties alphabetical."""
        if tokenizer == "wordpiece":
            return cls._adapt_wordpiece(texts, lowercase, max_length, max_tokens, batch_size)
        probe = cls([], tokenizer=tokenizer, lowercase=lowercase, max_length=max_length)
        counter = collections.Counter()
        texts = list(texts)
        for i in range(0, len(texts), batch_size):
            for row in probe.tokenize(tf.constant(texts[i:i + batch_size], tf.string)).to_list():
                counter.update(row)
        reserved = {t.encode() for t in SPECIAL_TOKENS} | {b""}
        items = sorted(((t.decode("utf-8"), c) for t, c in counter.items() if c >= min_count and t not in reserved),
                       key=lambda tc: (-tc[1], tc[0]))
        vocab = list(SPECIAL_TOKENS) + [t for t, _ in items[: max(max_tokens - 4, 0)]]
        return cls(vocab, tokenizer=tokenizer, lowercase=lowercase, max_length=max_length)

    @classmethod
    def _adapt_wordpiece(cls, texts, lowercase, max_length, max_tokens, batch_size):
        """WordPiece pieces learned from the word counts of ``texts`` (tensorflow-text's learner)."""
        from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

        probe = cls([], tokenizer="unicode_script", lowercase=lowercase, max_length=max_length)
        counter = collections.Counter()
        texts = list(texts)
        for i in range(0, len(texts), batch_size):
            for row in probe.tokenize(tf.constant(texts[i:i + batch_size], tf.string)).to_list():
                counter.update(t.decode("utf-8") for t in row)
        for t in list(SPECIAL_TOKENS) + [""]:
            counter.pop(t, None)
        size = max(min(int(max_tokens), WORDPIECE_SIZE), len(SPECIAL_TOKENS) + 1)
        counts = sorted(counter.items())
        settings = {"size": size, "input_words": WORDPIECE_INPUT_WORDS, "iterations": 2, "slack": 0.1}
        # The learner is pure Python and deterministic: the same word counts and settings give
        # the same pieces, so they are cached (minutes under load for de_en; a rerun, a resume
        # or another model on the same split skips it).
        cache_file = _wordpiece_cache_file(counts, settings)
        cached = read_json_cache(cache_file, lambda o: isinstance(o, list) and all(isinstance(t, str) for t in o))
        if cached is None:
            # On the 100k distinct words of de_en the learner took minutes with its
            # defaults; the most frequent WORDPIECE_INPUT_WORDS words and 2 iterations
            # learn a vocabulary in about a minute (every character of the texts stays
            # a piece, so nothing becomes [UNK]).
            learned = learner.learn(counts, vocab_size=size, reserved_tokens=list(SPECIAL_TOKENS),
                                    max_input_tokens=WORDPIECE_INPUT_WORDS, num_iterations=2, slack_ratio=0.1,
                                    include_joiner_token=True, joiner=SUFFIX)
            cached = [t for t in learned if t not in SPECIAL_TOKENS and t]
            write_json_atomic(cache_file, cached)
        vocab = list(SPECIAL_TOKENS) + list(cached)
        return cls(vocab, tokenizer="wordpiece", lowercase=lowercase, max_length=max_length)

    # --------------------------------------------------------------- persistence
    def get_config(self):
        s = self._settings
        return {"vocabulary": list(s.vocabulary), "tokenizer": s.tokenizer, "lowercase": s.lowercase,
                "max_length": s.max_length}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def save(self, path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="." + path.name, dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"format": _FORMAT, "version": 1, "config": self.get_config()}, f, ensure_ascii=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path):
        path = Path(path)
        try:
            with open(path, encoding="utf-8") as f:
                payload = json.load(f)
        except (OSError, ValueError) as e:
            raise DataError(f"Vocabulary file {path} is missing or unreadable ({e}).") from e
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise DataError(f"{path} is not a SequenceVocabulary file.")
        return cls.from_config(payload["config"])

    def __repr__(self):
        s = self._settings
        return (f"SequenceVocabulary(size={len(s.vocabulary)}, tokenizer={s.tokenizer!r}, "
                f"lowercase={s.lowercase}, max_length={s.max_length})")
