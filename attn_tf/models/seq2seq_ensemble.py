"""Several trained seq2seq models decoding as one.

Why: models trained apart (a GRU and a Transformer, or two seeds) make
different mistakes, and decoding with the mean of their next-token
distributions is the standard way to combine them (fairseq's
`EnsembleModel`, Marian's `--models`): every step averages the members'
probabilities, so a token wins only where the members together prefer it.

`Seq2SeqEnsemble` has the decoding interface of the seq2seq models
(`encode`, `initial_state`, `decode_step`), so every search of
`attn_tf.decoding` (greedy, beam, interpreted or XLA-compiled) decodes it
unchanged. It is not a Keras model and is not saved: it is built from
trained runs (`attn_tf.training.seq2seq_trainer.load_ensemble`). The members
must share their source and target vocabularies (the ids they read and
write); the loader checks that.
"""

import math

import tensorflow as tf

from attn_tf.errors import UsageError

# What decides a run's data split (attn_tf.data.run_data.load_seq2seq_data): members must agree, or one
# member's validation or test words could be another's training words.
SPLIT_KEYS = ("dataset", "data", "seed")


class Seq2SeqEnsemble:
    """The members' mean next-token probabilities, as one decodable model.

    Args:
      members: two or more seq2seq models (`Seq2SeqGRU`, `Seq2SeqTransformer`) with the same source and
        target vocabularies.

    Call arguments (of `decode_step`, the only per-step method):
      tokens: int [B], the input ids of this step.
      state: the tuple of the members' decoder states.
      enc: `encode`'s output, {"members": tuple of the members' encodings}.
      step: int, the position of `tokens` (the Transformer's key/value cache needs it).

    Returns (of `decode_step`):
      (logits [B, V], state, attention [B, S]): `logits` are the log of the members' mean probabilities
      (a search's log-softmax leaves them unchanged), `attention` the mean of the members' cross-attention
      rows (each sums to 1 over the source, so does the mean).

    Example:

    >>> ensemble = Seq2SeqEnsemble([gru, transformer])
    >>> out = attn_tf.decoding.decode(ensemble, source_ids, max_length=20, beam_size=4)
    """

    def __init__(self, members):
        members = tuple(members)
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two models, got %d" % len(members))
        self.members = members

    def encode(self, source_ids, training=False):
        return {"members": tuple(m.encode(source_ids, training=False) for m in self.members)}

    def initial_state(self, enc):
        return tuple(m.initial_state(e) for m, e in zip(self.members, enc["members"]))

    def decode_step(self, tokens, state, enc, step=None):
        log_probs, states, attention = [], [], []
        for member, member_state, member_enc in zip(self.members, state, enc["members"]):
            logits, member_state, weights = member.decode_step(tokens, member_state, member_enc, step)
            log_probs.append(tf.nn.log_softmax(tf.cast(logits, tf.float32)))
            states.append(member_state)
            attention.append(tf.cast(weights, tf.float32))
        return _log_mean_prob(log_probs), tuple(states), tf.add_n(attention) / float(len(attention))

    def attention_maps(self, source_ids, target_in):
        """Teacher forcing: {"logits" [B, T, V] (log mean probabilities), "cross" [B, 1, 1, T, S]}.

        "cross" is the mean of the members' maps, each reduced as its `decode_step` row is (the
        Transformer's last decoder block, mean over heads; the GRU's one map), so that row t equals the
        attention `decode_step` returns at step t.
        """
        log_probs, maps = [], []
        for member in self.members:
            out = member.attention_maps(source_ids, target_in)
            log_probs.append(tf.nn.log_softmax(tf.cast(out["logits"], tf.float32)))
            maps.append(tf.reduce_mean(tf.cast(out["cross"][:, -1], tf.float32), axis=1))  # [B, T, S]
        return {"logits": _log_mean_prob(log_probs), "cross": (tf.add_n(maps) / float(len(maps)))[:, None, None]}


def check_members(members):
    """Raises UsageError unless trained runs can decode together; returns the longest output they all allow.

    Args:
      members: (run directory, config, source vocabulary, target vocabulary) of each run, two or more.
    Returns:
      the smallest of the members' configured "max_length" (the Transformer's position tables bound the
      steps it can decode).
    """
    if len(members) < 2:
        raise UsageError("an ensemble needs at least two runs, got %d: pass two or more run directories"
                         % len(members))
    first_dir, first, source_vocab, target_vocab = members[0]
    for run_dir, config, src, tgt in members[1:]:
        for key in SPLIT_KEYS:
            if config.get(key) != first.get(key):
                raise UsageError("%s has %s=%r but %s has %r: ensemble members must be trained on the same data "
                                 "split" % (run_dir, key, config.get(key), first_dir, first.get(key)))
        for name, a, b in (("source", src, source_vocab), ("target", tgt, target_vocab)):
            if a.get_config() != b.get_config():
                raise UsageError("%s and %s have different %s vocabularies: ensemble members must read and "
                                 "write the same ids (train them on the same data with the same vocabulary "
                                 "settings)" % (run_dir, first_dir, name))
    return min(int(config["max_length"]) for _, config, _, _ in members)


def _log_mean_prob(log_probs):
    """log(mean_i p_i) of the members' log-probabilities, in log space (no underflow of small probabilities)."""
    return tf.reduce_logsumexp(tf.stack(log_probs), axis=0) - math.log(len(log_probs))
