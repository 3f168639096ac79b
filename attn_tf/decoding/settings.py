"""Decoding settings shared by training (the test-split decode), export (the translate signature) and probes.

  LENGTH_PENALTY          beam search length penalty alpha (GNMT: score / ((5 + n) / 6) ** alpha)
  decode_max_length(config) -> the most tokens a decode produces for a run: its --max-length, plus one
                          for [END] (the target side of the position tables is max_length + 1 long)
"""

LENGTH_PENALTY = 0.6


def decode_max_length(config):
    return int(config["max_length"]) + 1
