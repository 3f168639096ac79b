"""all-MiniLM-L6-v2 in attn-tf's layers against references written here.

The reference is a plain NumPy forward pass of Hugging Face's BERT over the
same model.safetensors (post-LayerNorm blocks, exact erf GELU, eps 1e-12),
independent of our layers: every block's attention must agree within 1e-4
(float32), and the mean-pooled sentence embeddings too.
"""

import numpy as np
import pytest
from scipy.special import erf

SENTENCES = [
    # The model card's (README.md in the wheel) example sentences ...
    "This is an example sentence",
    "Each sentence is converted",
    # ... and a semantic-similarity triple.
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome.",
]


def _layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _dense(x, t, name):
    return x @ t[name + ".weight"].T + t[name + ".bias"]


def numpy_bert(t, ids, num_heads=12):
    """Hugging Face BertModel, float64 NumPy: (sequence output [B,T,D], [L] x attention [B,H,T,T])."""
    t = {k: v.astype(np.float64) for k, v in t.items() if k != "embeddings.position_ids"}
    ids = np.asarray(ids)
    b, n = ids.shape
    mask = ids != 0
    x = (t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:n][None]
         + t["embeddings.token_type_embeddings.weight"][0])
    x = _layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"])
    attentions = []
    layer = 0
    while "encoder.layer.%d.attention.self.query.weight" % layer in t:
        p = "encoder.layer.%d." % layer
        d = x.shape[-1]
        dk = d // num_heads

        def heads(y):
            return y.reshape(b, n, num_heads, dk).transpose(0, 2, 1, 3)

        q = heads(_dense(x, t, p + "attention.self.query"))
        k = heads(_dense(x, t, p + "attention.self.key"))
        v = heads(_dense(x, t, p + "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dk)
        scores = np.where(mask[:, None, None, :], scores, -1e9)
        a = np.exp(scores - scores.max(-1, keepdims=True))
        a = a / a.sum(-1, keepdims=True)
        attentions.append(a)
        ctx = (a @ v).transpose(0, 2, 1, 3).reshape(b, n, d)
        x = _layer_norm(x + _dense(ctx, t, p + "attention.output.dense"),
                        t[p + "attention.output.LayerNorm.weight"], t[p + "attention.output.LayerNorm.bias"])
        h = _dense(x, t, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))  # exact GELU
        x = _layer_norm(x + _dense(h, t, p + "output.dense"),
                        t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"])
        layer += 1
    return x, attentions


def _mean_pool(x, ids):
    m = (np.asarray(ids) != 0)[..., None].astype(np.float64)
    return (x * m).sum(1) / m.sum(1)


def _cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def outputs(minilm_tensors, minilm_vectorizer, minilm_backbone_model):
    ids, _ = minilm_vectorizer(SENTENCES)
    ids = ids.numpy()
    ours = minilm_backbone_model(ids, training=False)
    ref_x, ref_att = numpy_bert(minilm_tensors, ids)
    return ids, {k: np.asarray(v) for k, v in ours.items()}, ref_x, ref_att


def test_every_layers_attention_matches_numpy_reference(outputs):
    ids, ours, _, ref_att = outputs
    att = ours["attention"]
    assert att.shape[:3] == (len(SENTENCES), 6, 12)
    lengths = (ids != 0).sum(1)
    for layer in range(6):
        for i, n in enumerate(lengths):
            np.testing.assert_allclose(att[i, layer, :, :n, :n], ref_att[layer][i, :, :n, :n], atol=1e-4, rtol=0,
                                       err_msg="layer %d, sentence %d" % (layer, i))
            # Padded keys get exactly 0, padded query rows are all zero.
            assert np.all(att[i, layer, :, :, n:] == 0)
            assert np.all(att[i, layer, :, n:, :] == 0)


def test_sentence_embeddings_match_numpy_reference(outputs):
    ids, ours, ref_x, _ = outputs
    ours_emb = _mean_pool(ours["sequence_output"].astype(np.float64), ids)
    ref_emb = _mean_pool(ref_x, ids)
    np.testing.assert_allclose(ours_emb, ref_emb, atol=2e-4, rtol=0)


def test_sentence_similarities_are_those_of_the_model(outputs):
    """The model card publishes example sentences but no similarity figures; what is checked:
    the same-meaning pair is close (the reference NumPy port gives 0.755), the unrelated one is not (-0.05)."""
    ids, ours, _, _ = outputs
    emb = _mean_pool(ours["sequence_output"].astype(np.float64), ids)
    food, bread, movie = emb[2], emb[3], emb[4]
    assert _cosine(food, bread) == pytest.approx(0.755, abs=0.01)
    assert _cosine(food, movie) == pytest.approx(-0.05, abs=0.03)
    assert _cosine(emb[0], emb[1]) < _cosine(food, bread)


def test_tokenizer_gives_bert_uncased_ids(minilm_vectorizer):
    ids, count = minilm_vectorizer(["A man is eating food."])
    # [CLS] a man is eating food . [SEP] in bert-base-uncased's vocab.txt
    assert ids.numpy()[0, :9].tolist() == [101, 1037, 2158, 2003, 5983, 2833, 1012, 102, 0]
    assert int(count.numpy()[0]) == 8


def test_gelu_is_exact_erf_form():
    from attn_tf.models.minilm import minilm_classifier

    model = minilm_classifier(2, max_length=8, preset=None, vocab_size=50, hidden_dim=8, num_layers=1,
                              num_heads=2, intermediate_dim=16, max_sequence_length=8)
    act = model.get_layer("encoder_block_0").feedforward_intermediate_dense.activation
    x = np.linspace(-4, 4, 33).astype(np.float32)
    np.testing.assert_allclose(np.asarray(act(x)), 0.5 * x * (1 + erf(x / np.sqrt(2))), atol=1e-6)
    # the tanh approximation differs by up to ~1e-3 on this range: the check can tell them apart
    tanh = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    assert np.abs(np.asarray(act(x)) - tanh).max() > 1e-4
