"""Hand-built models and texts with known answers for the evaluation tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

WORDS = ["good", "the", "movie", "was", "film", "plot", "really", "quite", "story", "acting", "and", "its"]
KEY = "good"


def key_token_model(vocabulary, key_id, max_length=10, dim=4, units=3, seed=0):
    """A BiLSTM-attention model whose output depends (to ~1e-15) only on the token `key_id`.

    Every other token has a zero embedding; the LSTM forgets at every step
    (forget bias -30, no recurrence), so h_t = f(x_t) and h_t = 0 for the other
    tokens; the attention puts weight ~1 on the key token (score 40 vs 0); the
    classifier gives p(positive) = 0.73 with the key token and 0.27 without.
    """
    import keras

    from attn_tf.models.bilstm_attention import bilstm_attention

    rng = np.random.default_rng(seed)
    v = len(vocabulary)
    model = bilstm_attention(v, 2, max_length=max_length, embedding_dim=dim, lstm_units=units,
                             attention_units=4, dropout=0.0, embedding_dropout=0.0)
    emb = np.zeros((v, dim), np.float32)
    emb[key_id] = 1.0
    model.get_layer("embedding").set_weights([emb])
    weights = []
    for _ in range(2):  # forward, backward
        kernel = rng.normal(size=(dim, 4 * units)).astype(np.float32)
        rec = np.zeros((units, 4 * units), np.float32)
        bias = np.zeros(4 * units, np.float32)
        bias[units:2 * units] = -30.0  # forget gate closed
        weights += [kernel, rec, bias]
    enc = model.get_layer("encoder")
    enc.set_weights(weights)
    h = enc(keras.ops.convert_to_tensor(emb[key_id][None, None, :])).numpy()[0, 0]
    unit = h / float(h @ h)
    pool = model.get_layer("attention_pooling")
    proj_k = np.repeat(100.0 * unit[:, None], 4, axis=1).astype(np.float32)
    values = {"v": np.full(4, 10.0, np.float32), "kernel": proj_k, "bias": np.zeros(4, np.float32)}
    for w in pool.weights:
        w.assign(values[w.path.split("/")[-1]])
    cls_k = np.stack([np.zeros_like(unit), 2.0 * unit], axis=1).astype(np.float32)
    model.get_layer("classifier").set_weights([cls_k, np.array([0.5, -0.5], np.float32)])
    return model


def sentences(n, seed=0, with_key=True):
    rng = np.random.default_rng(seed)
    filler = [w for w in WORDS if w != KEY]
    out = []
    for i in range(n):
        words = list(rng.choice(filler, size=int(rng.integers(3, 8))))
        if with_key:
            words.insert(int(rng.integers(0, len(words) + 1)), KEY)
        out.append(" ".join(words))
    return out
