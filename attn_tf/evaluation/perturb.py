"""Moved to `attn_tf.data.perturb` (below training and evaluation, which both use it); re-exported here."""

from attn_tf.data.perturb import *  # noqa: F401,F403
from attn_tf.data.perturb import (  # noqa: F401
    EDIT_KINDS, LETTERS, NOISE_CONFIGS, STOPWORDS, Perturbed, _count, apply_noise, char_edit, char_noise, editable,
    identity, is_word, tokens_to_ids, word_drop, word_swap,
)
