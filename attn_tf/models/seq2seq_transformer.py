"""Transformer encoder-decoder (Vaswani et al., 2017) with inspectable attention.

    source ids [B, S] -> token + position embedding -> N encoder blocks
    target ids [B, T] ([START] y1 .. yn) -> token + position embedding
        -> N decoder blocks (causal self-attention, cross-attention) -> Dense(V)

Built from `attn_tf.layers.TransformerEncoder` / `TransformerDecoder`, so
every attention map (encoder self, decoder causal self, cross) can be read
and overridden.

Decoding API (see `attn_tf.models.seq2seq_gru`), with a key/value cache:
`encode(training=False)` also projects the encoder outputs to the keys and
values of every block's cross-attention once per source; the decoder state
is, per decoder block, the self-attention keys and values of the steps so
far, two fixed-size buffers `[B, max_target_length, H, head_dim]` (static
shapes: the loop can be XLA-compiled, and beam search reorders them like any
state). Each `decode_step` runs the blocks on the ONE new position: it
projects its query, key and value, writes the key and value at `step`,
attends over the written positions (the later ones masked), so no earlier
step is recomputed. `decode_step_uncached` is the old path (the whole prefix
through the Keras layers), kept as the reference the cached step is tested
against. The cross-attention row returned per step is the mean over the
heads of the LAST decoder block.
"""

import keras
import tensorflow as tf
from keras import layers, ops

from attn_tf.layers import TokenAndPositionEmbedding, TransformerDecoder, TransformerEncoder
from attn_tf.layers.masking import masked_normalize
from attn_tf.layers.transformer_layer_utils import feedforward_sub_block, residual_sub_block


@keras.saving.register_keras_serializable(package="attn_tf")
class Seq2SeqTransformer(keras.Model):
    """Transformer encoder-decoder.

    Args:
      source_vocab_size, target_vocab_size: vocabulary sizes (id 0 padding).
      max_source_length: longest source (position embeddings).
      max_target_length: longest decoder input ([START] + tokens).
      hidden_dim: model width (divisible by num_heads).
      num_layers: encoder blocks and decoder blocks (each).
      num_heads: attention heads per block.
      intermediate_dim: feed-forward width.
      dropout: dropout inside the blocks and on the embeddings.
      normalize_first: pre-norm blocks (LayerNorm on each sub-block's input)
        with a final LayerNorm after the last encoder block and after the
        last decoder block, as in Xiong et al. 2020; `False` (default):
        post-norm, the original Transformer.

    Call arguments:
      inputs: `(source_ids [B, S], target_in [B, T])`.
    Returns:
      logits `[B, T, target_vocab_size]` float32.
    """

    def __init__(self, source_vocab_size, target_vocab_size, max_source_length=64, max_target_length=65,
                 hidden_dim=128, num_layers=2, num_heads=4, intermediate_dim=256, dropout=0.1,
                 normalize_first=False, **kwargs):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError("hidden_dim (%d) must be divisible by num_heads (%d)" % (hidden_dim, num_heads))
        self.source_vocab_size = int(source_vocab_size)
        self.target_vocab_size = int(target_vocab_size)
        self.max_source_length = int(max_source_length)
        self.max_target_length = int(max_target_length)
        self.hidden_dim = int(hidden_dim)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.intermediate_dim = int(intermediate_dim)
        self.dropout_rate = float(dropout)
        self.normalize_first = bool(normalize_first)
        self.source_embedding = TokenAndPositionEmbedding(self.source_vocab_size, self.max_source_length,
                                                          self.hidden_dim, name="source_embedding")
        self.target_embedding = TokenAndPositionEmbedding(self.target_vocab_size, self.max_target_length,
                                                          self.hidden_dim, name="target_embedding")
        self.embedding_dropout = layers.Dropout(self.dropout_rate, name="embedding_dropout")
        self.encoder_blocks = [
            TransformerEncoder(self.num_heads, self.intermediate_dim, dropout=self.dropout_rate,
                               normalize_first=self.normalize_first, name="encoder_block_%d" % i)
            for i in range(self.num_layers)]
        self.decoder_blocks = [
            TransformerDecoder(self.num_heads, self.intermediate_dim, dropout=self.dropout_rate,
                               normalize_first=self.normalize_first, name="decoder_block_%d" % i)
            for i in range(self.num_layers)]
        # Pre-norm leaves the residual stream unnormalised: one LayerNorm closes
        # each stack (created only then, so post-norm runs keep their weights).
        self.encoder_final_norm = self.decoder_final_norm = None
        if self.normalize_first:
            self.encoder_final_norm = layers.LayerNormalization(epsilon=1e-5, name="encoder_final_norm")
            self.decoder_final_norm = layers.LayerNormalization(epsilon=1e-5, name="decoder_final_norm")
        self.output_projection = layers.Dense(self.target_vocab_size, dtype="float32", name="output_projection")

    # ------------------------------------------------------------------ pieces
    def source_token_embeddings(self, source_ids):
        """`source_ids [B, S]` -> token embeddings [B, S, D] without positions (what `source_embeddings=` takes)."""
        source_ids = ops.cast(source_ids, "int32")[:, : self.max_source_length]
        return self.source_embedding.token_embedding(source_ids)

    def encode(self, source_ids, training=False, return_weights=False, source_embeddings=None):
        """Encodes `source_ids [B, S]`: {"memory", "source_mask", cross keys/values} (and the self-attention).

        `source_embeddings` [B, S, D]: token embeddings used instead of
        looking `source_ids` up (positions are added; the mask comes from the
        ids); gradients w.r.t. them give the gradient alignments of
        `attn_tf.evaluation.seq2seq_alignment`.
        """
        source_ids = ops.cast(source_ids, "int32")[:, : self.max_source_length]
        mask = ops.not_equal(source_ids, 0)
        if source_embeddings is None:
            x = self.source_embedding(source_ids)
        else:
            positions = self.source_embedding.position_embedding(ops.arange(0, ops.shape(source_ids)[1], dtype="int32"))
            x = source_embeddings + ops.expand_dims(positions, 0)
        x = self.embedding_dropout(x, training=training)
        weights = []
        for block in self.encoder_blocks:
            x, w = block(x, padding_mask=mask, return_attention_scores=True, training=training)
            weights.append(w)
        if self.encoder_final_norm is not None:
            x = self.encoder_final_norm(x)
        enc = {"memory": x, "source_mask": mask}
        if return_weights:
            return enc, weights
        if not training and all(block.built for block in self.decoder_blocks):
            # Cross-attention keys and values of every decoder block, once per
            # source (decode_step reads them; unused ops are pruned in graphs;
            # the blocks are built by the first call, which does not decode).
            for i, block in enumerate(self.decoder_blocks):
                enc["cross_key_%d" % i] = block.cross_attention.key_dense(x)
                enc["cross_value_%d" % i] = block.cross_attention.value_dense(x)
        return enc

    def output_logits(self, y):
        """The last decoder block's output [B, T, D] -> logits [B, T, V] (through the final norm of pre-norm);
        shared by teacher forcing and the cached step so both apply the same head."""
        if self.decoder_final_norm is not None:
            y = self.decoder_final_norm(y)
        return self.output_projection(y)

    def decode_sequence(self, target_in, enc, training=False, return_weights=False):
        """Teacher forcing: -> (logits [B, T, V], cross-attention [B, T, S] (last block, mean of heads))."""
        target_in = ops.cast(target_in, "int32")
        mask = ops.not_equal(target_in, 0)
        y = self.embedding_dropout(self.target_embedding(target_in), training=training)
        self_w, cross_w = [], []
        for block in self.decoder_blocks:
            y, sw, cw = block(y, enc["memory"], decoder_padding_mask=mask, encoder_padding_mask=enc["source_mask"],
                              return_attention_scores=True, training=training)
            self_w.append(sw)
            cross_w.append(cw)
        logits = self.output_logits(y)
        if return_weights:
            return logits, self_w, cross_w
        return logits, ops.mean(cross_w[-1], axis=1)

    def call(self, inputs, training=None):
        source_ids, target_in = inputs
        enc = self.encode(source_ids, training=training)
        logits, _ = self.decode_sequence(target_in, enc, training=training)
        return logits

    # ------------------------------------------------------------------ decoding API
    def initial_state(self, enc):
        """(written [B, max_target_length] bool, per decoder block (keys, values) [B, max_target_length, H, dk]).

        `written` marks the steps whose input was not [PAD]: as in the
        teacher-forced layers, a [PAD] input is masked out of later steps.
        """
        batch = tf.shape(enc["memory"])[0]
        head = self.hidden_dim // self.num_heads
        zeros = tf.zeros([batch, self.max_target_length, self.num_heads, head], self.compute_dtype)
        return (tf.zeros([batch, self.max_target_length], tf.bool),
                tuple((zeros, zeros) for _ in self.decoder_blocks))

    @staticmethod
    def _attend_cached(mha, query, keys, values, mask):
        """`mha` (attn_tf MultiHeadAttention) for one query position over given keys/values [B, L, H, dk]."""
        q = mha.query_dense(query)  # [B, 1, H, dk]
        q = q * tf.cast(mha._inverse_sqrt_key_dim, q.dtype)
        scores = tf.einsum("aecd,abcd->acbe", keys, q)  # [B, H, 1, L], as MultiHeadAttention.call
        weights = masked_normalize(scores, mask, normalizer=getattr(mha, "normalizer", "softmax"))
        weights = tf.cast(weights, values.dtype)
        return mha.output_dense(tf.einsum("acbe,aecd->abcd", weights, values)), weights

    def decode_step(self, tokens, state, enc, step):
        """One new position through every decoder block with the key/value cache.

        tokens [B] (the input id at position `step`) -> (logits [B, V],
        the cache with `step` written, cross-attention [B, S]).
        `enc` must come from `encode(training=False)`.
        """
        step = tf.cast(step, tf.int32)
        tokens = tf.cast(tokens, tf.int32)
        batch = tf.shape(tokens)[0]
        embedding = self.target_embedding
        x = embedding.token_embedding(tokens[:, None]) + embedding.position_embedding(step[None])[None]
        index = tf.stack([tf.range(batch), tf.fill([batch], step)], axis=1)  # [B, 2]: (row, step)
        # A [PAD] input (a finished row) is masked as the layers' padding mask
        # does: no attention from it (its query) and none to it later (its key).
        query_valid = tf.not_equal(tokens, 0)[:, None, None, None]  # [B, 1, 1, 1]
        written = tf.tensor_scatter_nd_update(state[0], index, tf.not_equal(tokens, 0))
        self_mask = tf.logical_and(written[:, None, None, :], query_valid)  # [B, 1, 1, T]
        source_mask = tf.logical_and(tf.cast(enc["source_mask"], tf.bool)[:, None, None, :], query_valid)
        new_state, cross = [], None
        for i, block in enumerate(self.decoder_blocks):
            keys, values = state[1][i]

            def self_attention(h, block=block, keys=keys, values=values):
                mha = block.self_attention
                keys = tf.tensor_scatter_nd_update(keys, index, mha.key_dense(h)[:, 0])
                values = tf.tensor_scatter_nd_update(values, index, mha.value_dense(h)[:, 0])
                new_state.append((keys, values))
                return self._attend_cached(mha, h, keys, values, self_mask)

            # The blocks' own sub-blocks at inference (training=False: dropout passes its input through).
            x, _ = residual_sub_block(x, self_attention, block.self_attention_layer_norm,
                                      block.self_attention_dropout, block.normalize_first, False)
            x, cross = residual_sub_block(
                x, lambda h, block=block, i=i: self._attend_cached(
                    block.cross_attention, h, enc["cross_key_%d" % i], enc["cross_value_%d" % i], source_mask),
                block.cross_attention_layer_norm, block.cross_attention_dropout, block.normalize_first, False)
            x = feedforward_sub_block(block, x, False)
        logits = self.output_logits(x)[:, 0]
        return logits, (written, tuple(new_state)), tf.reduce_mean(tf.cast(cross[:, :, 0], tf.float32), axis=1)

    def initial_state_uncached(self, enc):
        """The reference decoder state: a buffer `[B, max_target_length]` of the ids so far."""
        batch = ops.shape(enc["memory"])[0]
        return ops.zeros((batch, self.max_target_length), "int32")

    def decode_step_uncached(self, tokens, state, enc, step):
        """Reference step: writes `tokens` at `step` of the id buffer and decodes the whole prefix."""
        step = ops.cast(step, "int32")
        position = ops.cast(ops.equal(ops.arange(self.max_target_length, dtype="int32"), step), "int32")
        state = state + ops.expand_dims(position, 0) * ops.expand_dims(ops.cast(tokens, "int32"), 1)
        prefix = state[:, : step + 1]
        logits, cross = self.decode_sequence(prefix, enc)
        return logits[:, -1], state, cross[:, -1]

    def attention_maps(self, source_ids, target_in, source_embeddings=None):
        """Teacher-forced attention for logging: logits, encoder_self [B, L, H, S, S],
        decoder_self [B, L, H, T, T], cross [B, L, H, T, S]. `source_embeddings`: see `encode`."""
        enc, enc_w = self.encode(source_ids, return_weights=True, source_embeddings=source_embeddings)
        logits, self_w, cross_w = self.decode_sequence(target_in, enc, return_weights=True)
        return {"logits": logits, "encoder_self": ops.stack(enc_w, 1), "decoder_self": ops.stack(self_w, 1),
                "cross": ops.stack(cross_w, 1)}

    # ------------------------------------------------------------------ Keras plumbing
    def build_dummy(self):
        self((ops.ones((1, 2), "int32"), ops.ones((1, 2), "int32")))

    def build_from_config(self, config):
        self.build_dummy()

    def get_build_config(self):
        return {"dummy": True}

    def get_config(self):
        config = super().get_config()
        config.update({
            "source_vocab_size": self.source_vocab_size,
            "target_vocab_size": self.target_vocab_size,
            "max_source_length": self.max_source_length,
            "max_target_length": self.max_target_length,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout_rate,
            "normalize_first": self.normalize_first,
        })
        return config
