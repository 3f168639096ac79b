"""Keras' own layer checks (`keras.src.testing.TestCase.run_layer_test`).

They cover: config round trip, build with shapes, symbolic vs eager output
shapes, the number of weights / seed generators, masking support, a training
step (single-input layers) and the mixed precision dtypes. Private Keras API:
keras is pinned in setup.cfg.
"""

import pytest
from keras.src import testing

from attn_tf.layers import AdditiveAttention
from attn_tf.layers import AttentionPooling
from attn_tf.layers import DotProductAttention
from attn_tf.layers import MultiHeadAttention
from attn_tf.layers import TransformerDecoder
from attn_tf.layers import TransformerEncoder

pytestmark = pytest.mark.filterwarnings("ignore:`shuffle=True` was passed")


class KerasLayerContractTest(testing.TestCase):
    # Multi-input layers: Keras' training check only feeds one input.

    def test_additive_attention(self):
        self.run_layer_test(
            AdditiveAttention,
            init_kwargs={"units": 4, "dropout": 0.1},
            input_shape={"query_shape": (2, 3, 5), "value_shape": (2, 4, 6)},
            expected_output_shape=(2, 3, 6),
            expected_num_trainable_weights=4,
            expected_num_non_trainable_weights=0,
            expected_num_seed_generators=1,
            supports_masking=True,
            run_training_check=False,
        )

    def test_dot_product_attention(self):
        self.run_layer_test(
            DotProductAttention,
            init_kwargs={"score": "general"},
            input_shape={"query_shape": (2, 3, 5), "value_shape": (2, 4, 6)},
            expected_output_shape=(2, 3, 6),
            expected_num_trainable_weights=1,
            expected_num_non_trainable_weights=0,
            expected_num_seed_generators=0,
            supports_masking=True,
            run_training_check=False,
        )

    def test_multi_head_attention(self):
        self.run_layer_test(
            MultiHeadAttention,
            init_kwargs={"num_heads": 2, "key_dim": 3, "dropout": 0.1},
            input_shape={"query_shape": (2, 3, 5), "value_shape": (2, 4, 7)},
            expected_output_shape=(2, 3, 5),
            expected_num_trainable_weights=8,
            expected_num_non_trainable_weights=0,
            expected_num_seed_generators=1,
            supports_masking=True,
            run_training_check=False,
        )

    def test_attention_pooling(self):
        self.run_layer_test(
            AttentionPooling,
            init_kwargs={"units": 4},
            input_shape=(2, 3, 5),
            expected_output_shape=(2, 5),
            expected_num_trainable_weights=3,
            expected_num_non_trainable_weights=0,
            expected_num_seed_generators=0,
            supports_masking=True,
        )

    def test_transformer_encoder(self):
        self.run_layer_test(
            TransformerEncoder,
            init_kwargs={"num_heads": 2, "intermediate_dim": 8},
            input_shape=(2, 3, 4),
            expected_output_shape=(2, 3, 4),
            expected_num_trainable_weights=16,
            expected_num_non_trainable_weights=0,
            expected_num_seed_generators=3,
            supports_masking=True,
        )

    def test_transformer_decoder(self):
        self.run_layer_test(
            TransformerDecoder,
            init_kwargs={"num_heads": 2, "intermediate_dim": 8},
            input_shape={
                "decoder_sequence_shape": (2, 3, 4),
                "encoder_sequence_shape": (2, 5, 6),
            },
            expected_output_shape=(2, 3, 4),
            expected_num_trainable_weights=26,
            expected_num_non_trainable_weights=0,
            expected_num_seed_generators=5,
            supports_masking=True,
            run_training_check=False,
        )
