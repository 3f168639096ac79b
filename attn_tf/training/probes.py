"""Probe examples: fixed test examples whose attention is logged during training."""

import numpy as np

from tb_plugin import metadata


def select_probes(labels, k, seed=0):
    """Picks `k` fixed test indices, taking the classes in turn so every class shows.

    Deterministic for a given (labels, k, seed): the same examples are probed
    across a run and its resumptions.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    by_class = {c: list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)}
    chosen = []
    while len(chosen) < min(k, len(labels)):
        for c in sorted(by_class):
            if by_class[c] and len(chosen) < k:
                chosen.append(int(by_class[c].pop(0)))
    return sorted(chosen)


def attention_layers(attention, length):
    """Splits one example's attention output into stored layers.

    Args:
      attention: NumPy array of one example: [T] (pooling) or [L, H, T, T]
        (per-block self-attention).
      length: number of real (unpadded) tokens.
    Returns:
      list of (name, kind, array [H, Q, K]) with padding stripped.
    """
    attention = np.asarray(attention, dtype=np.float32)
    n = max(int(length), 0)
    if attention.ndim == 1:
        return [("attention_pooling", "pooling", attention[None, None, :n])]
    if attention.ndim == 4:
        return [
            ("encoder/block_%d" % i, "self", attention[i, :, :n, :n])
            for i in range(attention.shape[0])
        ]
    raise ValueError("unsupported attention output of shape %s" % (attention.shape,))


def probe_record(tokens, attention, probabilities, label_index, class_names, text=None):
    """Header and arrays of one probe example, in the tb_plugin format."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    layers = attention_layers(attention, len(tokens))
    header = metadata.make_header(
        {"input": tokens},
        [metadata.make_layer(name, kind, arr.shape, query=None if kind == "pooling" else "input", key="input")
         for name, kind, arr in layers],
        text=text,
        label=None if label_index is None else class_names[int(label_index)],
        prediction=class_names[int(np.argmax(probabilities))],
        probabilities=probabilities.tolist(),
        class_names=class_names,
    )
    return header, [arr for _, _, arr in layers]
