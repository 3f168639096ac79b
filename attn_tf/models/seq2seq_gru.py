"""GRU encoder-decoder with attention (Bahdanau or Luong scores).

    source ids [B, S] -> Embedding -> bidirectional GRU(u) -> memory [B, S, d]
                         (projected to d if d != 2u)
    target ids [B, T] ([START] y1 .. yn) -> Embedding -> GRU(d) -> h [B, T, d]
    context = attention(query=h, keys/values=memory)      weights [B, T, S]
    logits  = Dense(V)(tanh(Dense(d)([context; h])))      [B, T, V] float32
              (tie_embeddings: tanh(Dense(E)([context; h])) E_target^T + b)
              (lexical_model: + Dense(V)(tanh(W f) + f), f = tanh(sum_s a_s E_source[x_s]))

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

`enc["shared"]` (if present) holds batch-independent tensors (weights read
once before the decoding loop); beam search does not tile it.

Inference path. Training and teacher-forced evaluation (`call`) run the Keras
layers. `encode(training=False)` and `decode_step` compute the same function
with a few fused TensorFlow ops on the same weights, because a decoding loop
on a CPU is bound by the number of ops per step: both GRU directions run in
one `tf.while_loop` with the input projections computed before the loop, the
attention keys (`W2 m_s + b`) are projected once per source instead of once
per step, and the variables are read once before the loop. Tests check that
both paths give the same logits and attention.

Masks are explicit (`source_ids != 0`); no Keras mask reaches the logits, so
the loss and accuracy are masked by the trainer (`attn_tf.metrics.masked`).
"""

import math

import keras
import tensorflow as tf
from keras import layers, ops

from attn_tf.layers import AdditiveAttention, DotProductAttention

ATTENTION_SCORES = ("additive", "dot", "general", "scaled")


@keras.saving.register_keras_serializable(package="attn_tf")
class Seq2SeqGRU(keras.Model):
    """Bidirectional GRU encoder, GRU decoder with attention.

    Args:
      source_vocab_size, target_vocab_size: vocabulary sizes (id 0 padding).
      embedding_dim: width of both embeddings.
      units: GRU units per encoder direction (the encoder outputs `2 * units`).
      decoder_units: GRU units of the decoder (default `2 * units`). When it
        differs from `2 * units`, the encoder outputs are projected to
        `decoder_units` once per source (`memory_projection`, no bias), so
        every score (dot products included) works on equal widths; the
        per-step cost of decoding then depends on `decoder_units` only.
      attention: "additive" (default), "dot", "general" or "scaled".
      attention_units: hidden width of the additive score (default `units`).
      dropout: dropout on the embeddings and the attentional hidden state.
      word_dropout: during training, the share of source and target-input
        tokens whose whole embedding is dropped (word dropout, Sennrich &
        Zhang 2019); 0 = off.
      tie_embeddings: the output layer reuses the target embedding matrix
        (logits = hidden E^T + b, Press & Wolf 2017; Nematus'
        `tie_decoder_embeddings`): the attentional hidden state is then
        `embedding_dim` wide, and the V x d output matrix is gone, so a
        small-data model has fewer weights to overfit with.
      lexical_model: add the lexical model of Nguyen & Chiang (2018) to the
        output: the attention-weighted sum of the source *embeddings*
        `f = tanh(sum_s a_s E[x_s])`, through `h_l = tanh(W f) + f`, adds
        `W_l h_l + b_l` to the logits. A direct path from a source word to
        its translation, which the recurrent states blur on small data
        (Sennrich & Zhang 2019 use it for low-resource NMT).

    Call arguments:
      inputs: `(source_ids [B, S], target_in [B, T])` int tensors
        (`target_in` starts with [START]).
    Returns:
      logits `[B, T, target_vocab_size]` float32.
    """

    def __init__(self, source_vocab_size, target_vocab_size, embedding_dim=64, units=128, decoder_units=None,
                 attention="additive", attention_units=None, dropout=0.1, word_dropout=0.0,
                 tie_embeddings=False, lexical_model=False, **kwargs):
        super().__init__(**kwargs)
        if attention not in ATTENTION_SCORES:
            raise ValueError("attention must be one of %s, got %r" % (ATTENTION_SCORES, attention))
        self.source_vocab_size = int(source_vocab_size)
        self.target_vocab_size = int(target_vocab_size)
        self.embedding_dim = int(embedding_dim)
        self.units = int(units)
        self.attention_type = attention
        self.decoder_units = int(decoder_units or 2 * self.units)
        self.attention_units = int(attention_units or units)
        self.dropout_rate = float(dropout)
        self.word_dropout_rate = float(word_dropout)
        self.tie_embeddings = bool(tie_embeddings)
        self.lexical_model = bool(lexical_model)
        d = self.decoder_units
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
        self.memory_projection = (layers.Dense(d, use_bias=False, name="memory_projection")
                                  if d != 2 * self.units else None)
        self.combine = layers.Dense(self.embedding_dim if self.tie_embeddings else d, activation="tanh",
                                    name="combine")
        if self.tie_embeddings:
            self.output_projection = None
            self.output_bias = self.add_weight(shape=(self.target_vocab_size,), initializer="zeros",
                                               name="output_bias")
        else:
            self.output_projection = layers.Dense(self.target_vocab_size, dtype="float32",
                                                  name="output_projection")
        if self.lexical_model:
            self.lexical_projection = layers.Dense(self.embedding_dim, activation="tanh", use_bias=False,
                                                   name="lexical_projection")
            self.lexical_output = layers.Dense(self.target_vocab_size, dtype="float32", name="lexical_output")
        self.embedding_dropout = layers.Dropout(self.dropout_rate, name="embedding_dropout")
        self.hidden_dropout = layers.Dropout(self.dropout_rate, name="hidden_dropout")
        # One draw per token (noise shape [B, T, 1]): a dropped token loses its whole embedding.
        self.word_dropout = (layers.Dropout(self.word_dropout_rate, noise_shape=(None, None, 1), name="word_dropout")
                             if self.word_dropout_rate > 0 else None)

    # ------------------------------------------------------------------ pieces
    def encode(self, source_ids, training=False):
        """Encodes `source_ids [B, S]`: {"memory" [B, S, d], "source_mask" [B, S], "state" [B, d], ...}.

        With `training=False` this is the fused inference path (same result as the layers).
        """
        if training:
            return self.encode_layers(source_ids, training=True)
        return self._encode_fused(source_ids)

    def source_token_embeddings(self, source_ids):
        """`source_ids [B, S]` -> their embeddings [B, S, E] (what `source_embeddings=` takes)."""
        return self.source_embedding(ops.cast(source_ids, "int32"))

    def encode_layers(self, source_ids, training=False, source_embeddings=None):
        """The encoder through the Keras layers (training, `call`).

        `source_embeddings` [B, S, E]: used instead of looking `source_ids` up
        (the mask still comes from the ids); gradients w.r.t. them give the
        gradient alignments of `attn_tf.evaluation.seq2seq_alignment`.
        """
        source_ids = ops.cast(source_ids, "int32")
        mask = ops.not_equal(source_ids, 0)
        if source_embeddings is None:
            source_embeddings = self.source_token_embeddings(source_ids)
        x = self.embedding_dropout(self._drop_words(source_embeddings, training), training=training)
        memory, forward, backward = self.encoder(x, mask=mask, training=training)
        state = self.bridge(ops.concatenate([forward, backward], axis=-1))
        if self.memory_projection is not None:
            memory = self.memory_projection(memory)
        enc = {"memory": memory, "source_mask": mask, "state": state}
        if self.lexical_model:
            enc["lexical_memory"] = x  # the (dropped-out) source embeddings the lexical model attends to
        return enc

    # ------------------------------------------------------------------ fused inference path
    @staticmethod
    def _gru_weights(cell):
        kernel = tf.cast(tf.convert_to_tensor(cell.kernel), tf.float32)
        recurrent = tf.cast(tf.convert_to_tensor(cell.recurrent_kernel), tf.float32)
        bias = tf.cast(tf.convert_to_tensor(cell.bias), tf.float32)  # [2, 3u]: input, recurrent (reset_after)
        return kernel, recurrent, bias[0], bias[1]

    @staticmethod
    def _gate_matmuls(h, recurrent, bias):
        """The state's (z, r, h) gate projections as three matmuls (`recurrent`, `bias`: per-gate tuples).

        Gates are kept apart end to end (weights, input projections, lookup tables split once before the
        loop): under XLA on a CPU, slicing one [.., 3u] tensor inside the loop body (a matmul output or a
        step of the input projections) made an encoder step about 2x slower (0.67 vs 0.33 ms at batch 64),
        and the XLA-compiled search is the exported decoder.
        """
        return tuple(tf.matmul(h, w) + b for w, b in zip(recurrent, bias))

    @staticmethod
    def _gru_update(x_proj, h_proj, h):
        """Keras GRU (reset_after=True, sigmoid/tanh) from the (z, r, h) gates of the projected input and state."""
        xz, xr, xh = x_proj
        hz, hr, hh = h_proj
        z = tf.sigmoid(xz + hz)
        r = tf.sigmoid(xr + hr)
        n = tf.tanh(xh + r * hh)
        return z * h + (1.0 - z) * n

    def _encode_fused(self, source_ids):
        source_ids = tf.cast(source_ids, tf.int32)
        mask = tf.not_equal(source_ids, 0)
        lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        x = tf.gather(tf.cast(tf.convert_to_tensor(self.source_embedding.embeddings), tf.float32), source_ids)
        fk, fr, fbi, fbr = self._gru_weights(self.encoder.forward_layer.cell)
        bk, br, bbi, bbr = self._gru_weights(self.encoder.backward_layer.cell)
        # The backward direction reads each source reversed within its length,
        # so both directions are right-padded and run in one loop.
        x_back = tf.reverse_sequence(x, lengths, seq_axis=1, batch_axis=0)
        proj = tf.stack([tf.einsum("bse,eg->bsg", x, fk) + fbi, tf.einsum("bse,eg->bsg", x_back, bk) + bbi])
        proj = tf.split(tf.transpose(proj, [2, 0, 1, 3]), 3, axis=-1)  # (z, r, h) gates, each [S, 2, B, u]
        recurrent = tf.split(tf.stack([fr, br]), 3, axis=-1)  # (z, r, h) gates, each [2, u, u]
        recurrent_bias = tf.split(tf.stack([fbr, bbr])[:, None, :], 3, axis=-1)  # each [2, 1, u]
        steps_mask = tf.transpose(mask)[:, None, :, None]  # [S, 1, B, 1]
        batch, src_len = tf.shape(source_ids)[0], tf.shape(source_ids)[1]

        def body(t, h, outputs):
            new = self._gru_update([p[t] for p in proj], self._gate_matmuls(h, recurrent, recurrent_bias), h)
            h = tf.where(steps_mask[t], new, h)  # padding keeps the state
            return t + 1, h, outputs.write(t, h)

        _, h, outputs = tf.while_loop(
            lambda t, h, o: t < src_len, body,
            (tf.constant(0), tf.zeros([2, batch, self.units], tf.float32),
             tf.TensorArray(tf.float32, size=src_len, element_shape=tf.TensorShape([2, None, self.units]))))
        outputs = tf.cond(src_len > 0, outputs.stack,
                          lambda: tf.zeros([0, 2, batch, self.units], tf.float32))  # [S, 2, B, u]
        forward = tf.transpose(outputs[:, 0], [1, 0, 2])
        backward = tf.reverse_sequence(tf.transpose(outputs[:, 1], [1, 0, 2]), lengths, seq_axis=1, batch_axis=0)
        memory = tf.concat([forward, backward], axis=-1)
        if self.memory_projection is not None:
            memory = tf.einsum("bsd,de->bse", memory,
                               tf.cast(tf.convert_to_tensor(self.memory_projection.kernel), tf.float32))
        # Padded steps of the layers' outputs differ (they are never attended to): zero them.
        memory = memory * tf.cast(mask, tf.float32)[:, :, None]
        bridge_kernel = tf.cast(tf.convert_to_tensor(self.bridge.kernel), tf.float32)
        bridge_bias = tf.cast(tf.convert_to_tensor(self.bridge.bias), tf.float32)
        state = tf.tanh(tf.matmul(tf.concat([h[0], h[1]], axis=-1), bridge_kernel) + bridge_bias)
        shared = self._decoder_weights()
        enc = {"memory": memory, "source_mask": mask, "state": state, "shared": shared}
        if self.lexical_model:
            enc["lexical_memory"] = x
        if self.attention_type == "additive":
            enc["keys"] = tf.einsum("bsd,du->bsu", memory, shared["key_kernel"]) + shared["key_bias"]
        elif self.attention_type == "general":
            enc["keys"] = tf.einsum("bsd,qd->bsq", memory, shared["general_kernel"])  # m W^T
        return enc

    def _decoder_weights(self):
        def f(v):
            return tf.cast(tf.convert_to_tensor(v), tf.float32)

        kernel, recurrent, bias_in, bias_rec = self._gru_weights(self.decoder.cell)
        # E[y] W + b == (E W + b)[y]: one table lookup per step and gate instead of a matmul.
        w = {"input_table": tuple(tf.split(tf.matmul(f(self.target_embedding.embeddings), kernel) + bias_in, 3,
                                           axis=-1)),
             "recurrent": tuple(tf.split(recurrent, 3, axis=-1)), "bias_rec": tuple(tf.split(bias_rec, 3)),
             # [context; h] W == context W[:d] + h W[d:]: no concatenation per step
             "combine_kernel": tuple(tf.split(f(self.combine.kernel), 2)), "combine_bias": f(self.combine.bias),
             "out_kernel": self._output_kernel(), "out_bias": self._output_bias()}
        if self.lexical_model:
            w.update(lexical_kernel=f(self.lexical_projection.kernel), lexical_out_kernel=f(self.lexical_output.kernel),
                     lexical_out_bias=f(self.lexical_output.bias))
        att = self.attention
        if self.attention_type == "additive":
            w.update(query_kernel=f(att.query_dense.kernel), key_kernel=f(att.key_dense.kernel), v=f(att.v),
                     key_bias=f(att.key_dense.bias) if att.use_bias else tf.zeros([self.attention_units]))
        elif self.attention_type == "general":
            w["general_kernel"] = f(att.kernel)
        return w

    def _fused_attention(self, h, enc):
        """Attention of one query row per example: h [B, D] -> (context [B, D], weights [B, S])."""
        w, memory = enc["shared"], enc["memory"]
        if self.attention_type == "additive":
            hidden = tf.tanh(tf.matmul(h, w["query_kernel"])[:, None, :] + enc["keys"])
            scores = tf.linalg.matvec(hidden, w["v"][None, :])
        elif self.attention_type == "general":
            scores = tf.linalg.matvec(enc["keys"], h)
        else:
            scores = tf.linalg.matvec(memory, h)
            if self.attention_type == "scaled":
                scores = scores * (1.0 / math.sqrt(float(memory.shape[-1])))
        mask = enc["source_mask"]
        weights = tf.nn.softmax(tf.where(mask, scores, -1e9), axis=-1)
        weights = tf.where(mask, weights, 0.0)
        return tf.linalg.matvec(memory, weights, transpose_a=True), weights

    def _attend(self, h, enc, training=False):
        context, weights = self.attention(h, enc["memory"], value_mask=enc["source_mask"],
                                          return_attention_scores=True, training=training)
        hidden = self.combine(ops.concatenate([context, ops.cast(h, context.dtype)], axis=-1))
        hidden = self.hidden_dropout(hidden, training=training)
        if self.output_projection is not None:
            logits = self.output_projection(hidden)
        else:
            # float32 logits under mixed precision too, as the untied Dense(dtype="float32") gives
            logits = ops.matmul(ops.cast(hidden, "float32"), self._output_kernel()) + self._output_bias()
        if self.lexical_model:
            lexical = ops.tanh(ops.matmul(ops.cast(weights, enc["lexical_memory"].dtype), enc["lexical_memory"]))
            lexical = self.hidden_dropout(self.lexical_projection(lexical) + lexical, training=training)
            logits = logits + self.lexical_output(lexical)
        return logits, weights

    def _output_kernel(self):
        """The [d, V] float32 matrix of the output layer (the transposed target embeddings when tied)."""
        if self.output_projection is not None:
            return ops.cast(ops.convert_to_tensor(self.output_projection.kernel), "float32")
        return ops.transpose(ops.cast(ops.convert_to_tensor(self.target_embedding.embeddings), "float32"))

    def _output_bias(self):
        bias = self.output_projection.bias if self.output_projection is not None else self.output_bias
        return ops.cast(ops.convert_to_tensor(bias), "float32")

    def _drop_words(self, embeddings, training):
        return embeddings if self.word_dropout is None or not training else self.word_dropout(
            embeddings, training=training)

    def decode_sequence(self, target_in, enc, training=False):
        """Teacher forcing: `target_in [B, T]` -> (logits [B, T, V], cross-attention [B, T, S])."""
        y = self.target_embedding(ops.cast(target_in, "int32"))
        y = self.embedding_dropout(self._drop_words(y, training), training=training)
        h, _ = self.decoder(y, initial_state=enc["state"], training=training)
        return self._attend(h, enc, training=training)

    def call(self, inputs, training=None):
        source_ids, target_in = inputs
        enc = self.encode_layers(source_ids, training=training)
        logits, _ = self.decode_sequence(target_in, enc, training=training)
        return logits

    # ------------------------------------------------------------------ decoding API
    def initial_state(self, enc):
        return enc["state"]

    def decode_step(self, tokens, state, enc, step=None):
        """One step: tokens [B] -> (logits [B, V], new state [B, d], attention [B, S]).

        `enc` must come from `encode(training=False)` (the fused path).
        """
        w = enc["shared"]
        tokens = tf.cast(tokens, tf.int32)
        h = self._gru_update([tf.gather(table, tokens) for table in w["input_table"]],
                             self._gate_matmuls(state, w["recurrent"], w["bias_rec"]), state)
        context, weights = self._fused_attention(h, enc)
        context_kernel, state_kernel = w["combine_kernel"]
        hidden = tf.tanh(tf.matmul(context, context_kernel) + tf.matmul(h, state_kernel) + w["combine_bias"])
        logits = tf.matmul(hidden, w["out_kernel"]) + w["out_bias"]
        if self.lexical_model:
            lexical = tf.tanh(tf.linalg.matvec(enc["lexical_memory"], weights, transpose_a=True))
            lexical = tf.tanh(tf.matmul(lexical, w["lexical_kernel"])) + lexical
            logits = logits + tf.matmul(lexical, w["lexical_out_kernel"]) + w["lexical_out_bias"]
        return logits, h, weights

    def attention_maps(self, source_ids, target_in, source_embeddings=None):
        """Teacher-forced attention for logging: {"logits", "cross": [B, 1, 1, T, S]} (one layer, one head).

        `source_embeddings`: see `encode_layers`.
        """
        enc = self.encode_layers(source_ids, source_embeddings=source_embeddings)
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
            "decoder_units": self.decoder_units,
            "attention": self.attention_type,
            "attention_units": self.attention_units,
            "dropout": self.dropout_rate,
            "word_dropout": self.word_dropout_rate,
            "tie_embeddings": self.tie_embeddings,
            "lexical_model": self.lexical_model,
        })
        return config
