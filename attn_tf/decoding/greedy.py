"""Greedy decoding as one tf.while_loop."""

import tensorflow as tf

from attn_tf.data.seq2seq_vocab import END_ID, PAD_ID, START_ID


def at_least_one_column(ids):
    """Pads `[B, 0]` ids (a batch of empty sources) to `[B, 1]`: RNNs cannot run 0 steps."""
    return tf.pad(ids, [[0, 0], [0, tf.maximum(1 - tf.shape(ids)[1], 0)]])


def _stack_bt(ta, steps, empty):
    """TensorArray of [B, ...] per step -> [B, T, ...] (an `empty` tensor when no step ran)."""
    def stacked():
        x = ta.stack()
        perm = [1, 0] + list(range(2, len(x.shape)))
        return tf.transpose(x, perm)

    return tf.cond(steps > 0, stacked, lambda: empty)


def greedy_decode(model, source_ids, max_length, start_id=START_ID, end_id=END_ID, pad_id=PAD_ID):
    """Decodes `source_ids [B, S]` greedily (see `attn_tf.decoding`)."""
    source_ids = at_least_one_column(tf.cast(tf.convert_to_tensor(source_ids), tf.int32))
    batch, src_len = tf.shape(source_ids)[0], tf.shape(source_ids)[1]
    source_lengths = tf.reduce_sum(tf.cast(tf.not_equal(source_ids, pad_id), tf.int32), axis=1)
    enc = model.encode(source_ids, training=False)
    state = model.initial_state(enc)
    max_length = tf.cast(max_length, tf.int32)

    def cond(t, tokens, state, done, scores, lengths, ids_ta, att_ta):
        return tf.logical_and(t < max_length, tf.logical_not(tf.reduce_all(done)))

    def body(t, tokens, state, done, scores, lengths, ids_ta, att_ta):
        logits, state, attention = model.decode_step(tokens, state, enc, t)
        logp = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        nxt = tf.cast(tf.argmax(logp, axis=-1, output_type=tf.int32), tf.int32)
        nxt = tf.where(done, pad_id, nxt)
        step_logp = tf.gather(logp, nxt, batch_dims=1)
        scores = scores + tf.where(done, 0.0, step_logp)
        lengths = lengths + tf.where(done, 0, 1)
        attention = tf.where(done[:, None], 0.0, tf.cast(attention, tf.float32))
        ids_ta = ids_ta.write(t, nxt)
        att_ta = att_ta.write(t, attention)
        done = tf.logical_or(done, tf.equal(nxt, end_id))
        return t + 1, nxt, state, done, scores, lengths, ids_ta, att_ta

    loop_vars = (
        tf.constant(0, tf.int32),
        tf.fill([batch], tf.constant(start_id, tf.int32)),
        state,
        tf.equal(source_lengths, 0),
        tf.zeros([batch], tf.float32),
        tf.zeros([batch], tf.int32),
        tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=tf.TensorShape([None])),
        tf.TensorArray(tf.float32, size=0, dynamic_size=True, element_shape=tf.TensorShape([None, None])),
    )
    steps, _, _, _, scores, lengths, ids_ta, att_ta = tf.while_loop(cond, body, loop_vars)
    ids = _stack_bt(ids_ta, steps, tf.zeros([batch, 0], tf.int32))
    attention = _stack_bt(att_ta, steps, tf.zeros([batch, 0, src_len], tf.float32))
    return {"ids": ids, "attention": attention, "lengths": lengths, "scores": scores}
