"""Greedy and beam-search decoding compiled whole with XLA (`jit_compile=True`).

Why: on a CPU the interpreted `tf.while_loop` of `greedy.py` / `beam.py`
pays executor overhead for every op of every step (6-20 us per op, ~55 ops
per GRU step; bench/decode_profile.py), which dominates the arithmetic of a
batch of 64. XLA compiles the encoder, the decoding loop and its early exit
into one executable, so a step costs its arithmetic.

The compiled functions compute the same thing as the interpreted ones (the
same model methods, the same search), with three differences in how:

* the per-step outputs go to fixed-size TensorArrays of `max_length` steps
  (XLA needs static shapes) and are cut to the steps actually run outside the
  compiled function;
* the batch is padded with empty rows to a power of two and the source with
  padding columns to a multiple of `SOURCE_BUCKET`, so a server compiles a
  few shapes once instead of once per request shape (padding changes nothing:
  padded source positions get exactly zero attention, and empty rows are not
  decoded); the outputs are cut back to the request's shape;
* XLA fuses elementwise ops (its own `tanh` / `exp`), so logits can differ
  from the interpreted path in the last bits. Ids are tested equal on trained
  models (tests/seq2seq/test_s2s_decoding.py) and counted on real data by
  bench/decode_profile.py.

Each compiled function is made once per (model, search settings) and cached;
XLA then compiles once per padded input shape.

A padded batch of at least `2 * SHARD_ROWS` rows is decoded as two halves by
two calls of the compiled function that do not depend on each other, so the
TensorFlow executor runs them at once on two inter-op threads (one XLA call
runs on one core: on 2 cores a batch of 64 decoded whole used half the
machine, and two concurrent requests had twice the throughput of one). The
rows of a batch are independent in both searches, so the halves give the
rows' outputs of the whole batch; a half stops when its own rows have
finished, the result is padded to the longer half's steps as a batch's
shorter rows already are.
"""

import weakref

import tensorflow as tf

from attn_tf.data.seq2seq_vocab import END_ID, PAD_ID, START_ID
from attn_tf.decoding.beam import NEG_SCORE, beam_loop, tile_encoding

SOURCE_BUCKET = 8
# Rows per half below which a batch is decoded whole: smaller halves would pay the per-step cost of a
# launch for too little arithmetic (and a power-of-two batch of 64 splits into two of 32).
SHARD_ROWS = 32
_CACHE = weakref.WeakKeyDictionary()


def _bucket_pad(source_ids, pad_id):
    """Pads [B, S] to [B', S'] (B' a power of two >= B, S' a multiple of SOURCE_BUCKET >= max(S, 1))."""
    batch, src_len = tf.shape(source_ids)[0], tf.shape(source_ids)[1]
    padded_batch = tf.cast(tf.pow(2.0, tf.math.ceil(tf.math.log(tf.cast(tf.maximum(batch, 1), tf.float32))
                                                    / tf.math.log(2.0))), tf.int32)
    padded_batch = tf.maximum(padded_batch, batch)  # float rounding never shrinks the batch
    padded_len = tf.maximum((src_len + SOURCE_BUCKET - 1) // SOURCE_BUCKET, 1) * SOURCE_BUCKET
    return tf.pad(source_ids, [[0, padded_batch - batch], [0, padded_len - src_len]],
                  constant_values=pad_id), batch, src_len


def _greedy_core(model, source_ids, max_length, start_id, end_id, pad_id):
    batch = tf.shape(source_ids)[0]
    source_lengths = tf.reduce_sum(tf.cast(tf.not_equal(source_ids, pad_id), tf.int32), axis=1)
    enc = model.encode(source_ids, training=False)
    state = model.initial_state(enc)

    def cond(t, tokens, state, done, scores, lengths, ids_ta, att_ta):
        return tf.logical_and(t < max_length, tf.logical_not(tf.reduce_all(done)))

    def body(t, tokens, state, done, scores, lengths, ids_ta, att_ta):
        logits, state, attention = model.decode_step(tokens, state, enc, t)
        logp = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        nxt = tf.argmax(logp, axis=-1, output_type=tf.int32)
        nxt = tf.where(done, pad_id, nxt)
        scores = scores + tf.where(done, 0.0, tf.gather(logp, nxt, batch_dims=1))
        lengths = lengths + tf.where(done, 0, 1)
        ids_ta = ids_ta.write(t, nxt)
        att_ta = att_ta.write(t, tf.where(done[:, None], 0.0, tf.cast(attention, tf.float32)))
        return t + 1, nxt, state, tf.logical_or(done, tf.equal(nxt, end_id)), scores, lengths, ids_ta, att_ta

    steps, _, _, _, scores, lengths, ids_ta, att_ta = tf.while_loop(cond, body, (
        tf.constant(0, tf.int32), tf.fill([batch], tf.constant(start_id, tf.int32)), state,
        tf.equal(source_lengths, 0), tf.zeros([batch], tf.float32), tf.zeros([batch], tf.int32),
        tf.TensorArray(tf.int32, size=max_length, element_shape=source_ids.shape[:1]),
        tf.TensorArray(tf.float32, size=max_length, element_shape=source_ids.shape)))
    # Unwritten steps of a fixed-size TensorArray stack as zeros under XLA: [PAD] ids, zero attention.
    return {"ids": tf.transpose(ids_ta.stack()), "attention": tf.transpose(att_ta.stack(), [1, 0, 2]),
            "lengths": lengths, "scores": scores, "steps": steps}


def _beam_core(model, source_ids, max_length, beam_size, length_penalty, start_id, end_id, pad_id):
    """The search of `attn_tf.decoding.beam.beam_search` with static shapes (see there)."""
    k = beam_size
    static_batch, static_len = source_ids.shape  # static under XLA: the element shapes of unwritten steps
    batch = tf.shape(source_ids)[0]
    source_lengths = tf.reduce_sum(tf.cast(tf.not_equal(source_ids, pad_id), tf.int32), axis=1)
    enc = tile_encoding(model.encode(source_ids, training=False), k)
    state = model.initial_state(enc)

    cond, body = beam_loop(model, enc, max_length, batch, k, pad_id, end_id)
    empty = tf.equal(source_lengths, 0)
    first_beam_only = tf.concat([[0.0], tf.fill([k - 1], NEG_SCORE)], 0)
    steps, _, _, _, scores, lengths, tok_ta, parent_ta, att_ta = tf.while_loop(cond, body, (
        tf.constant(0, tf.int32), tf.fill([batch * k], tf.constant(start_id, tf.int32)), state,
        tf.tile(empty[:, None], [1, k]), tf.tile(first_beam_only[None, :], [batch, 1]),
        tf.zeros([batch, k], tf.int32), tf.TensorArray(tf.int32, size=max_length, element_shape=[static_batch, k]),
        tf.TensorArray(tf.int32, size=max_length, element_shape=[static_batch, k]),
        tf.TensorArray(tf.float32, size=max_length, element_shape=[static_batch, k, static_len])))

    penalty = tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, length_penalty)
    best = tf.argmax(scores / penalty, axis=-1, output_type=tf.int32)
    tokens, parents, att = tok_ta.stack(), parent_ta.stack(), att_ta.stack()  # [T, B, K], [T, B, K, S]

    def back_body(t, beam, ids_ta, out_att_ta):
        ids_ta = ids_ta.write(t, tf.gather(tokens[t], beam, batch_dims=1))
        out_att_ta = out_att_ta.write(t, tf.gather(att[t], beam, batch_dims=1))
        return t - 1, tf.gather(parents[t], beam, batch_dims=1), ids_ta, out_att_ta

    _, _, ids_ta, out_att_ta = tf.while_loop(lambda t, *_: t >= 0, back_body, (
        steps - 1, best, tf.TensorArray(tf.int32, size=max_length, element_shape=source_ids.shape[:1]),
        tf.TensorArray(tf.float32, size=max_length, element_shape=source_ids.shape)))
    return {"ids": tf.transpose(ids_ta.stack()), "attention": tf.transpose(out_att_ta.stack(), [1, 0, 2]),
            "lengths": tf.gather(lengths, best, batch_dims=1),
            "scores": tf.where(empty, 0.0, tf.gather(scores, best, batch_dims=1)), "steps": steps}


def _compiled(model, key, make):
    per_model = _CACHE.setdefault(model, {})
    if key not in per_model:
        per_model[key] = tf.function(make, jit_compile=True, reduce_retracing=False)
    return per_model[key]


def _well_formed(fn, max_length):
    """`fn` whose ids / attention are [B, max_length(, S)] also when no step ran (every row empty).

    Traced with unknown static shapes (inside an exported signature), the never-written TensorArrays of a
    call that ran no step come out of XLA with a zero-width source axis: give them the zeros an unwritten
    step stacks to, so every call's outputs slice and concatenate alike.
    """
    def call(ids):
        out = fn(ids)
        rows, width = tf.shape(ids)[0], tf.shape(ids)[1]
        ids_, attention = tf.cond(
            out["steps"] > 0, lambda: (out["ids"], out["attention"]),
            lambda: (tf.zeros([rows, max_length], tf.int32), tf.zeros([rows, max_length, width])))
        return dict(out, ids=ids_, attention=attention)

    return call


def _in_halves(fn, padded):
    """`fn(padded)`, as two concurrent calls on the halves of the batch when it has >= 2 * SHARD_ROWS rows."""
    rows = tf.shape(padded)[0]

    def halves():
        half = rows // 2  # the padded batch is a power of two: equal halves, one compiled shape
        first, second = fn(padded[:half]), fn(padded[half:])
        # The fixed-size per-step outputs ([B, max_length, ...]) of a half are [PAD] / zero after its last
        # step, as for a row that finished early, so the halves concatenate row-wise.
        return {k: tf.maximum(first[k], second[k]) if k == "steps" else tf.concat([first[k], second[k]], 0)
                for k in first}

    return tf.cond(rows >= 2 * SHARD_ROWS, halves, lambda: fn(padded))


def compiled_decode(model, source_ids, max_length, beam_size=1, length_penalty=0.6,
                    start_id=START_ID, end_id=END_ID, pad_id=PAD_ID):
    """Greedy (`beam_size` 1) or beam search, compiled whole with XLA; the outputs of `attn_tf.decoding`.

    `max_length` must be a Python int (the static number of steps).
    """
    max_length, k = int(max_length), int(beam_size)
    if k < 1:
        raise ValueError("beam_size must be >= 1, got %r" % beam_size)
    source_ids = tf.cast(tf.convert_to_tensor(source_ids), tf.int32)
    padded, batch, src_len = _bucket_pad(source_ids, pad_id)
    if k == 1:
        fn = _compiled(model, ("greedy", max_length, start_id, end_id, pad_id),
                       lambda ids: _greedy_core(model, ids, max_length, start_id, end_id, pad_id))
    else:
        penalty = float(length_penalty)
        fn = _compiled(model, ("beam", max_length, k, penalty, start_id, end_id, pad_id),
                       lambda ids: _beam_core(model, ids, max_length, k, penalty, start_id, end_id, pad_id))
    out = _in_halves(_well_formed(fn, max_length), padded)
    steps = out["steps"]
    # As the interpreted search: a batch of [B, 0] sources gives S = 1 (the padded width is >= 1).
    width = tf.maximum(src_len, 1)
    return {"ids": out["ids"][:batch, :steps], "attention": out["attention"][:batch, :steps, :width],
            "lengths": out["lengths"][:batch], "scores": out["scores"][:batch]}
