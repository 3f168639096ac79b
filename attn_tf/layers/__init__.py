"""Keras 3 attention layers that return and accept their attention weights.

Every layer here:

* returns `(output, weights)` with `return_attention_scores=True` (weights are
  post-softmax, pre-dropout);
* gives padded keys exactly zero weight, and a fully masked row all-zero
  weights (never NaN);
* runs its softmax in float32, also under `mixed_float16`;
* takes `normalizer="softmax" | "sparsemax" | "entmax15"` (sparse normalisers
  give low scores exactly zero weight);
* accepts `attention_override`, a distribution of the weights' shape used
  instead of the computed one (masked positions are still zeroed), with
  gradients flowing to it;
* picks up Keras masks from its inputs (e.g. `Embedding(mask_zero=True)`).
"""

from attn_tf.layers.additive_attention import AdditiveAttention
from attn_tf.layers.attention_pooling import AttentionPooling
from attn_tf.layers.conicity import ConicityPenalty
from attn_tf.layers.conicity import conicity
from attn_tf.layers.bert_embedding import BertEmbedding
from attn_tf.layers.dot_product_attention import DotProductAttention
from attn_tf.layers.masking import causal_mask
from attn_tf.layers.masking import compute_attention_mask
from attn_tf.layers.masking import NORMALIZERS
from attn_tf.layers.masking import masked_entmax15
from attn_tf.layers.masking import masked_normalize
from attn_tf.layers.masking import masked_softmax
from attn_tf.layers.masking import masked_sparsemax
from attn_tf.layers.multi_head_attention import MultiHeadAttention
from attn_tf.layers.orthogonal_lstm import OrthogonalLSTM
from attn_tf.layers.orthogonal_lstm import OrthogonalLSTMCell
from attn_tf.layers.token_and_position_embedding import TokenAndPositionEmbedding
from attn_tf.layers.transformer_decoder import TransformerDecoder
from attn_tf.layers.transformer_encoder import TransformerEncoder
from attn_tf.layers.word_tying import WordTyingPenalty

__all__ = [
    "AdditiveAttention",
    "AttentionPooling",
    "ConicityPenalty",
    "BertEmbedding",
    "DotProductAttention",
    "MultiHeadAttention",
    "OrthogonalLSTM",
    "OrthogonalLSTMCell",
    "TokenAndPositionEmbedding",
    "TransformerDecoder",
    "TransformerEncoder",
    "WordTyingPenalty",
    "causal_mask",
    "conicity",
    "compute_attention_mask",
    "masked_entmax15",
    "masked_normalize",
    "masked_softmax",
    "masked_sparsemax",
    "NORMALIZERS",
]
