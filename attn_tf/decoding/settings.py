"""Decoding settings shared by training (the test-split decode), export (the translate signature) and probes.

  LENGTH_PENALTY          beam search length penalty alpha (GNMT: score / ((5 + n) / 6) ** alpha)
                          when a run's config has none (`--length-penalty`, registry default)
  length_penalty(config) -> the alpha a run decodes with
  beam_size(config)       -> the beam a run decodes with (1 = greedy; configs from before --beam-size have none)
  decode_max_length(config) -> the most tokens a decode produces for a run: its --max-length, plus one
                          for [END] (the target side of the position tables is max_length + 1 long)
"""

LENGTH_PENALTY = 0.6


def decode_max_length(config):
    return int(config["max_length"]) + 1


def length_penalty(config):
    value = config.get("length_penalty")
    return LENGTH_PENALTY if value is None else float(value)


def beam_size(config):
    value = config.get("beam_size")
    return 1 if value is None else int(value)
