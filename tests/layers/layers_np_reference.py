"""NumPy reference implementations of the attn_tf attention layers (float64)."""

import numpy as np


def softmax(scores, mask=None):
    """Masked softmax over the last axis; masked -> 0, fully masked row -> 0."""
    scores = np.asarray(scores, np.float64)
    if mask is None:
        mask = np.ones(scores.shape, bool)
    mask = np.broadcast_to(np.asarray(mask, bool), scores.shape)
    x = np.where(mask, scores, -np.inf)
    m = np.max(np.where(mask, scores, -1e300), axis=-1, keepdims=True)
    e = np.where(mask, np.exp(x - m), 0.0)
    s = e.sum(-1, keepdims=True)
    return np.where(s > 0, e / np.where(s > 0, s, 1.0), 0.0)


def attention_mask(t, s, query_mask=None, value_mask=None, causal=False, batch=1):
    m = np.ones((batch, t, s), bool)
    if query_mask is not None:
        m &= np.asarray(query_mask, bool)[:, :, None]
    if value_mask is not None:
        m &= np.asarray(value_mask, bool)[:, None, :]
    if causal:
        m &= np.arange(t)[:, None] >= np.arange(s)[None, :]
    return m


def layer_norm(x, gamma, beta, eps):
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def np_(v):
    return np.asarray(v, np.float64)


def mha(layer, query, value, key=None, mask=None, override=None):
    """Reference of attn_tf MultiHeadAttention. mask: [B, T, S] or None."""
    key = value if key is None else key
    wq, bq = np_(layer.query_dense.kernel), np_(layer.query_dense.bias)
    wk, bk = np_(layer.key_dense.kernel), np_(layer.key_dense.bias)
    wv, bv = np_(layer.value_dense.kernel), np_(layer.value_dense.bias)
    wo, bo = np_(layer.output_dense.kernel), np_(layer.output_dense.bias)
    q = np.einsum("btd,dhk->bthk", query, wq) + bq
    k = np.einsum("bsd,dhk->bshk", key, wk) + bk
    v = np.einsum("bsd,dhk->bshk", value, wv) + bv
    scores = np.einsum("bthk,bshk->bhts", q, k) / np.sqrt(layer.key_dim)
    m = None if mask is None else np.asarray(mask, bool)[:, None]
    if override is None:
        w = softmax(scores, m)
    else:
        w = np.broadcast_to(np_(override), scores.shape)
        if m is not None:
            w = np.where(m, w, 0.0)
    ctx = np.einsum("bhts,bshk->bthk", w, v)
    out = np.einsum("bthk,hko->bto", ctx, wo) + bo
    return out, w
