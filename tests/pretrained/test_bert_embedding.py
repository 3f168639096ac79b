"""BertEmbedding: Keras' layer contract, masking, the sum it computes, serialization."""

import keras
import numpy as np
from keras.src import testing

from attn_tf.layers import BertEmbedding


class BertEmbeddingContractTest(testing.TestCase):
    def test_layer_contract(self):
        self.run_layer_test(
            BertEmbedding,
            init_kwargs={"vocab_size": 20, "hidden_dim": 6, "max_sequence_length": 8, "dropout": 0.1},
            input_data=np.array([[3, 4, 5, 0], [7, 0, 0, 0]], dtype="int32"),
            expected_output_shape=(2, 4, 6),
            expected_num_trainable_weights=5,
            expected_num_non_trainable_weights=0,
            expected_num_seed_generators=1,
            supports_masking=True,
            run_training_check=False,
        )


def test_computes_layernorm_of_token_position_segment_sum():
    emb = BertEmbedding(vocab_size=10, hidden_dim=4, max_sequence_length=6, dropout=0.0)
    ids = np.array([[1, 2, 3, 0]], dtype="int32")
    segments = np.array([[0, 0, 1, 1]], dtype="int32")
    out = np.asarray(emb(ids, segment_ids=segments))
    tok = np.asarray(emb.token_embedding.embeddings)
    pos = np.asarray(emb.position_embedding.embeddings)
    seg = np.asarray(emb.segment_embedding.embeddings)
    x = tok[ids[0]] + pos[:4] + seg[segments[0]]
    x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-12)
    np.testing.assert_allclose(out[0], x, atol=1e-5)
    # No segment ids = segment 0 everywhere.
    np.testing.assert_allclose(np.asarray(emb(ids)), np.asarray(emb(ids, segment_ids=np.zeros_like(ids))), atol=1e-6)


def test_token_embeddings_argument_replaces_the_lookup_and_mask_comes_from_ids():
    emb = BertEmbedding(vocab_size=10, hidden_dim=4, max_sequence_length=6, dropout=0.0)
    ids = np.array([[5, 6, 0]], dtype="int32")
    looked_up = emb.token_embedding(ids)
    np.testing.assert_allclose(np.asarray(emb(ids, token_embeddings=looked_up)), np.asarray(emb(ids)), atol=1e-6)
    assert np.asarray(emb.compute_mask(ids)).tolist() == [[True, True, False]]


def test_mask_reaches_the_encoder_in_a_functional_model():
    from attn_tf.layers import TransformerEncoder

    ids = keras.Input((5,), dtype="int32")
    x = BertEmbedding(vocab_size=10, hidden_dim=8, max_sequence_length=5)(ids)
    _, w = TransformerEncoder(2, 16)(x, return_attention_scores=True)
    model = keras.Model(ids, w)
    weights = np.asarray(model(np.array([[1, 2, 3, 0, 0]], dtype="int32")))
    assert np.all(weights[..., 3:] == 0)
    np.testing.assert_allclose(weights[0, :, :3].sum(-1), 1.0, atol=1e-5)


def test_serializes_and_rejects_bad_arguments(tmp_path):
    emb = BertEmbedding(vocab_size=10, hidden_dim=4, max_sequence_length=6, layer_norm_epsilon=1e-7, pad_id=0)
    clone = BertEmbedding.from_config(emb.get_config())
    assert clone.get_config() == emb.get_config()
    ids = keras.Input((3,), dtype="int32")
    model = keras.Model(ids, BertEmbedding(10, 4, 6, name="e")(ids))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.array([[1, 2, 0]], dtype="int32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)
    import pytest

    with pytest.raises(ValueError, match="hidden_dim"):
        BertEmbedding(10, 0, 6)
    with pytest.raises(ValueError, match="dropout"):
        BertEmbedding(10, 4, 6, dropout=1.5)
