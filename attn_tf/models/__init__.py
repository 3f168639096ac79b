"""Task models built from attn_tf layers, described in `attn_tf.models.registry`.

`build_classifier(name, vocab_size, num_classes, max_length, **kwargs)` builds
a registered classifier by name. The builders are imported on first use
(PEP 562 `__getattr__`), so `attn_tf.models.registry` can be read, e.g. for
the command line's `--model` choices, without importing TensorFlow.
"""

import importlib

from attn_tf.models import registry

__all__ = ["build_classifier", "registry", "bilstm_attention", "transformer", "CLASSIFIERS"]


def build_classifier(name, vocab_size, num_classes, max_length, **kwargs):
    """Builds the registered classifier `name` (builder defaults for sizes not given)."""
    spec = registry.get(name)
    if spec.task != registry.CLASSIFIER:
        raise registry.UnknownModel("%r is a %s model, not a classifier; classifiers: %s"
                                    % (name, spec.task, ", ".join(registry.names(registry.CLASSIFIER))))
    return registry.resolve(spec.builder)(vocab_size=vocab_size, num_classes=num_classes,
                                          max_length=max_length, **kwargs)


def __getattr__(name):
    if name in ("bilstm_attention", "transformer"):
        return getattr(importlib.import_module("attn_tf.models." + name), name)
    if name == "CLASSIFIERS":  # kept for callers of the old table: name -> builder
        return {n: registry.resolve(registry.get(n).builder) for n in registry.names(registry.CLASSIFIER)}
    raise AttributeError("module 'attn_tf.models' has no attribute %r" % name)
