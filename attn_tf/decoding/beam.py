"""Batched beam search as one tf.while_loop, with back-pointers.

Every step keeps `beam_size` hypotheses per source row, ranked by the sum of
their log-probabilities. A hypothesis that emitted [END] is finished: it
continues with [PAD] at no cost, so it stays in the beam while it ranks
among the best. The loop ends when every hypothesis of every row is finished
or after `max_length` steps. The winner of a row maximises
`score / ((5 + length) / 6) ** length_penalty` (Wu et al., 2016; 0 = plain
log-probability). Token ids, back-pointers and attention rows are written to
TensorArrays and the winning path is read back at the end (no per-step copy
of the whole history).
"""

import tensorflow as tf

from attn_tf.data.seq2seq_vocab import END_ID, PAD_ID, START_ID
from attn_tf.decoding.greedy import _stack_bt, at_least_one_column

# Score of an impossible continuation (finished beams, beams 2..K at step 0).
NEG_SCORE = -1e9


def _gather_beams(x, parent, batch, beam):
    """x [B*K, ...] reordered by parent [B, K] (beam indices) -> [B*K, ...]."""
    shape = tf.shape(x)
    x = tf.reshape(x, tf.concat([[batch, beam], shape[1:]], 0))
    x = tf.gather(x, parent, batch_dims=1)
    return tf.reshape(x, shape)


def tile_encoding(enc, k):
    """The encoder outputs repeated for k hypotheses per row; a "shared" entry (weights) is not tiled.

    Nested encodings (an ensemble's {"members": (enc, enc, ...)}) are tiled member by member, each keeping
    its own "shared" weights untiled.
    """
    if isinstance(enc, dict):
        return {key: value if key == "shared" else tile_encoding(value, k) for key, value in enc.items()}
    if isinstance(enc, (list, tuple)):
        return type(enc)(tile_encoding(value, k) for value in enc)
    return tf.repeat(enc, k, axis=0)


def beam_step(logits, attention, state, finished, scores, lengths, batch, k, pad_id, end_id):
    """One step of the search over `batch` rows of `k` hypotheses.

    logits [B*K, V] and attention [B*K, S] of the step, the decoder state, and
    finished / scores / lengths [B, K] of the hypotheses so far -> the k best
    continuations of each row: (token [B, K], parent [B, K], state reordered
    by parent, finished, scores, lengths, attention [B, K, S] of the parents'
    step, zero for hypotheses already finished). A finished hypothesis
    continues with [PAD] at no cost.
    """
    logp = tf.nn.log_softmax(tf.cast(logits, tf.float32))
    vocab = tf.shape(logp)[-1]
    logp = tf.reshape(logp, [batch, k, vocab])
    pad_only = tf.where(tf.equal(tf.range(vocab), pad_id), 0.0, NEG_SCORE)
    logp = tf.where(finished[:, :, None], pad_only[None, None, :], logp)
    candidates = tf.reshape(scores[:, :, None] + logp, [batch, k * vocab])
    top_scores, top_index = tf.math.top_k(candidates, k=k)
    parent = top_index // vocab
    token = top_index % vocab
    was_finished = tf.gather(finished, parent, batch_dims=1)
    token = tf.where(was_finished, pad_id, token)
    lengths = tf.gather(lengths, parent, batch_dims=1) + tf.where(was_finished, 0, 1)
    attention = tf.reshape(tf.cast(attention, tf.float32), [batch, k, tf.shape(attention)[-1]])
    attention = tf.gather(attention, parent, batch_dims=1)
    attention = tf.where(was_finished[:, :, None], 0.0, attention)
    state = tf.nest.map_structure(lambda x: _gather_beams(x, parent, batch, k), state)
    finished = tf.logical_or(was_finished, tf.equal(token, end_id))
    return token, parent, state, finished, top_scores, lengths, attention


def beam_loop(model, enc, max_length, batch, k, pad_id, end_id):
    """(cond, body) of the search's tf.while_loop over (t, tokens [B*K], state, finished, scores, lengths,
    token / parent / attention TensorArrays), for the interpreted and the XLA-compiled search."""

    def cond(t, tokens, state, finished, scores, lengths, tok_ta, parent_ta, att_ta):
        return tf.logical_and(t < max_length, tf.logical_not(tf.reduce_all(finished)))

    def body(t, tokens, state, finished, scores, lengths, tok_ta, parent_ta, att_ta):
        logits, state, attention = model.decode_step(tokens, state, enc, t)
        token, parent, state, finished, top_scores, lengths, attention = beam_step(
            logits, attention, state, finished, scores, lengths, batch, k, pad_id, end_id)
        return (t + 1, tf.reshape(token, [-1]), state, finished, top_scores, lengths,
                tok_ta.write(t, token), parent_ta.write(t, parent), att_ta.write(t, attention))

    return cond, body


def beam_search(model, source_ids, max_length, beam_size=4, length_penalty=0.6,
                start_id=START_ID, end_id=END_ID, pad_id=PAD_ID):
    """Decodes `source_ids [B, S]` with beam search (see `attn_tf.decoding`)."""
    k = int(beam_size)
    if k < 1:
        raise ValueError("beam_size must be >= 1, got %r" % beam_size)
    source_ids = at_least_one_column(tf.cast(tf.convert_to_tensor(source_ids), tf.int32))
    batch, src_len = tf.shape(source_ids)[0], tf.shape(source_ids)[1]
    source_lengths = tf.reduce_sum(tf.cast(tf.not_equal(source_ids, pad_id), tf.int32), axis=1)
    enc = tile_encoding(model.encode(source_ids, training=False), k)
    state = model.initial_state(enc)
    max_length = tf.cast(max_length, tf.int32)

    cond, body = beam_loop(model, enc, max_length, batch, k, pad_id, end_id)
    empty = tf.equal(source_lengths, 0)
    first_beam_only = tf.concat([[0.0], tf.fill([k - 1], NEG_SCORE)], 0)
    loop_vars = (
        tf.constant(0, tf.int32),
        tf.fill([batch * k], tf.constant(start_id, tf.int32)),
        state,
        tf.tile(empty[:, None], [1, k]),
        tf.tile(first_beam_only[None, :], [batch, 1]),
        tf.zeros([batch, k], tf.int32),
        tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=tf.TensorShape([None, k])),
        tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=tf.TensorShape([None, k])),
        tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=tf.TensorShape([None, k, None])),
    )
    steps, _, _, _, scores, lengths, tok_ta, parent_ta, att_ta = tf.while_loop(cond, body, loop_vars)

    penalty = tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, float(length_penalty))
    best = tf.argmax(scores / penalty, axis=-1, output_type=tf.int32)  # [B]
    best_score = tf.gather(scores, best, batch_dims=1)
    best_length = tf.gather(lengths, best, batch_dims=1)

    def back_cond(t, beam, ids_ta, out_att_ta):
        return t >= 0

    def back_body(t, beam, ids_ta, out_att_ta):
        ids_ta = ids_ta.write(t, tf.gather(tok_ta.read(t), beam, batch_dims=1))
        out_att_ta = out_att_ta.write(t, tf.gather(att_ta.read(t), beam, batch_dims=1))
        return t - 1, tf.gather(parent_ta.read(t), beam, batch_dims=1), ids_ta, out_att_ta

    _, _, ids_ta, out_att_ta = tf.while_loop(back_cond, back_body, (
        steps - 1, best,
        tf.TensorArray(tf.int32, size=steps, element_shape=tf.TensorShape([None])),
        tf.TensorArray(tf.float32, size=steps, element_shape=tf.TensorShape([None, None])),
    ))
    ids = _stack_bt(ids_ta, steps, tf.zeros([batch, 0], tf.int32))
    attention = _stack_bt(out_att_ta, steps, tf.zeros([batch, 0, src_len], tf.float32))
    best_score = tf.where(empty, 0.0, best_score)
    return {"ids": ids, "attention": attention, "lengths": best_length, "scores": best_score}
