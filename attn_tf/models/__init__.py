"""Task models built from attn_tf layers. `build_classifier` picks one by name."""

from attn_tf.models.bilstm_attention import bilstm_attention
from attn_tf.models.transformer import transformer

CLASSIFIERS = {
    "bilstm_attention": bilstm_attention,
    "transformer": transformer,
}


def build_classifier(name, vocab_size, num_classes, max_length, **kwargs):
    """Builds the classifier called `name` (a key of CLASSIFIERS)."""
    try:
        builder = CLASSIFIERS[name]
    except KeyError:
        raise ValueError(
            "unknown model %r; choose one of: %s" % (name, ", ".join(sorted(CLASSIFIERS)))
        ) from None
    return builder(vocab_size=vocab_size, num_classes=num_classes, max_length=max_length, **kwargs)
