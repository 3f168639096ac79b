"""Word and phoneme error rates of grapheme-to-phoneme outputs (multi-reference).

Conventions of the G2P literature (e.g. Yao & Zweig, 2015) on CMUdict:

* WER (word error rate): the fraction of source words whose output is not
  exactly one of the word's reference pronunciations.
* PER (phoneme error rate): the sum over words of the Levenshtein distance
  (substitutions, insertions, deletions of phonemes) to the CLOSEST reference,
  divided by the sum of the lengths of those references.

Strings are split on white space (one phoneme per token).
"""


def edit_distance(a, b):
    """Levenshtein distance between two token sequences."""
    a, b = list(a), list(b)
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def _check(hypotheses, references):
    if len(hypotheses) != len(references):
        raise ValueError("%d hypotheses but %d reference lists" % (len(hypotheses), len(references)))
    for refs in references:
        if isinstance(refs, str) or not refs:
            raise ValueError("each reference entry must be a non-empty list of strings")


def word_error_rate(hypotheses, references):
    """Fraction of hypotheses that equal none of their references (0.0 for no input)."""
    _check(hypotheses, references)
    if not hypotheses:
        return 0.0
    wrong = sum(h.split() not in [r.split() for r in refs] for h, refs in zip(hypotheses, references))
    return wrong / len(hypotheses)


def phoneme_error_rate(hypotheses, references):
    """Edit distance to the closest reference, summed, over the summed reference lengths."""
    _check(hypotheses, references)
    errors = length = 0
    for h, refs in zip(hypotheses, references):
        h = h.split()
        best = min((edit_distance(h, r.split()), len(r.split())) for r in refs)
        errors += best[0]
        length += best[1]
    return errors / max(length, 1)
