"""Moved to `attn_tf.models.adapter` (below training and evaluation, which both use it); re-exported here."""

from attn_tf.models.adapter import (  # noqa: F401
    ClassifierAdapter, length_batches, model_kind, pad_rows, real_lengths, trim,
)
