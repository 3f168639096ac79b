"""GRU encoder-decoder with attention (Bahdanau or Luong scores).

    source ids [B, S] -> Embedding -> bidirectional GRU -> memory [B, S, 2u]
    target ids [B, T] ([START] y1 .. yn) -> Embedding -> GRU(2u) -> h [B, T, 2u]
    context = attention(query=h, keys/values=memory)      weights [B, T, S]
    logits  = Dense(V)(tanh(Dense(2u)([context; h])))     [B, T, V] float32

The decoder is the "global attention" decoder of Luong et al. (2015)
(attention after the recurrent step, an attentional hidden state
`tanh(W_c [c_t; h_t])`, no input feeding), so teacher-forced training runs
the decoder GRU once over the whole target and computes the attention of all
steps in one batched call. The score is chosen by `attention`:
"additive" (Bahdanau: `v^T tanh(W1 h_t + W2 m_s)`), "dot", "general" or
"scaled" (`attn_tf.layers.DotProductAttention`). The initial decoder state
is `tanh(W [final forward state; final backward state])`.

Decoding API (used by `attn_tf.decoding`, the same for every seq2seq model):

    enc = model.encode(source_ids)                 # dict of [B, ...] tensors
    state = model.initial_state(enc)               # nest of [B, ...] tensors
    logits, state, attention = model.decode_step(tokens [B], state, enc, step)
        # logits [B, V] float32, attention [B, S] (the cross-attention row)

Masks are explicit (`source_ids != 0`); no Keras mask reaches the logits, so
the loss and accuracy are masked by the trainer (`attn_tf.metrics.masked`).
"""

import keras
from keras import layers, ops

from attn_tf.layers import AdditiveAttention, DotProductAttention

ATTENTION_SCORES = ("additive", "dot", "general", "scaled")


@keras.saving.register_keras_serializable(package="attn_tf")
class Seq2SeqGRU(keras.Model):
    """Bidirectional GRU encoder, GRU decoder with attention.

    Args:
      source_vocab_size, target_vocab_size: vocabulary sizes (id 0 padding).
      embedding_dim: width of both embeddings.
      units: GRU units per encoder direction; the decoder has `2 * units`.
      attention: "additive" (default), "dot", "general" or "scaled".
      attention_units: hidden width of the additive score (default `units`).
      dropout: dropout on the embeddings and the attentional hidden state.

    Call arguments:
      inputs: `(source_ids [B, S], target_in [B, T])` int tensors
        (`target_in` starts with [START]).
    Returns:
      logits `[B, T, target_vocab_size]` float32.
    """

    def __init__(self, source_vocab_size, target_vocab_size, embedding_dim=64, units=128,
                 attention="additive", attention_units=None, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        if attention not in ATTENTION_SCORES:
            raise ValueError("attention must be one of %s, got %r" % (ATTENTION_SCORES, attention))
        self.source_vocab_size = int(source_vocab_size)
        self.target_vocab_size = int(target_vocab_size)
        self.embedding_dim = int(embedding_dim)
        self.units = int(units)
        self.attention_type = attention
        self.attention_units = int(attention_units or units)
        self.dropout_rate = float(dropout)
        d = 2 * self.units
        self.source_embedding = layers.Embedding(self.source_vocab_size, self.embedding_dim,
                                                 name="source_embedding")
        self.target_embedding = layers.Embedding(self.target_vocab_size, self.embedding_dim,
                                                 name="target_embedding")
        self.encoder = layers.Bidirectional(
            layers.GRU(self.units, return_sequences=True, return_state=True), name="encoder")
        self.bridge = layers.Dense(d, activation="tanh", name="bridge")
        self.decoder = layers.GRU(d, return_sequences=True, return_state=True, name="decoder")
        if attention == "additive":
            self.attention = AdditiveAttention(self.attention_units, name="attention")
        else:
            self.attention = DotProductAttention(score=attention, name="attention")
        self.combine = layers.Dense(d, activation="tanh", name="combine")
        self.output_projection = layers.Dense(self.target_vocab_size, dtype="float32", name="output_projection")
        self.embedding_dropout = layers.Dropout(self.dropout_rate, name="embedding_dropout")
        self.hidden_dropout = layers.Dropout(self.dropout_rate, name="hidden_dropout")

    # ------------------------------------------------------------------ pieces
    def encode(self, source_ids, training=False):
        source_ids = ops.cast(source_ids, "int32")
        mask = ops.not_equal(source_ids, 0)
        x = self.embedding_dropout(self.source_embedding(source_ids), training=training)
        memory, forward, backward = self.encoder(x, mask=mask, training=training)
        state = self.bridge(ops.concatenate([forward, backward], axis=-1))
        return {"memory": memory, "source_mask": mask, "state": state}

    def _attend(self, h, enc, training=False):
        context, weights = self.attention(h, enc["memory"], value_mask=enc["source_mask"],
                                          return_attention_scores=True, training=training)
        hidden = self.combine(ops.concatenate([context, ops.cast(h, context.dtype)], axis=-1))
        hidden = self.hidden_dropout(hidden, training=training)
        return self.output_projection(hidden), weights

    def decode_sequence(self, target_in, enc, training=False):
        """Teacher forcing: `target_in [B, T]` -> (logits [B, T, V], cross-attention [B, T, S])."""
        y = self.embedding_dropout(self.target_embedding(ops.cast(target_in, "int32")), training=training)
        h, _ = self.decoder(y, initial_state=enc["state"], training=training)
        return self._attend(h, enc, training=training)

    def call(self, inputs, training=None):
        source_ids, target_in = inputs
        enc = self.encode(source_ids, training=training)
        logits, _ = self.decode_sequence(target_in, enc, training=training)
        return logits

    # ------------------------------------------------------------------ decoding API
    def initial_state(self, enc):
        return enc["state"]

    def decode_step(self, tokens, state, enc, step=None):
        """One step: tokens [B] -> (logits [B, V], new state, attention [B, S])."""
        y = self.target_embedding(ops.cast(tokens, "int32"))
        h, _ = self.decoder.cell(y, [state], training=False)
        logits, weights = self._attend(ops.expand_dims(h, 1), enc)
        return logits[:, 0], h, weights[:, 0]

    def attention_maps(self, source_ids, target_in):
        """Teacher-forced attention for logging: {"cross": [B, 1, 1, T, S]} (one layer, one head)."""
        enc = self.encode(source_ids)
        logits, weights = self.decode_sequence(target_in, enc)
        return {"logits": logits, "cross": weights[:, None, None]}

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
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "attention": self.attention_type,
            "attention_units": self.attention_units,
            "dropout": self.dropout_rate,
        })
        return config
