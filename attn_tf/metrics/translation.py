"""Corpus BLEU and chrF with sacrebleu (multi-reference, variable count).

Case-insensitive (the de_en and user-pair models produce lower-case text),
sacrebleu's default 13a tokenization. The signature string of the metric is
available from `signatures()` for reports.
"""


def _streams(references):
    n = max((len(r) for r in references), default=1)
    return [[refs[i] if i < len(refs) else None for refs in references] for i in range(n)]


def bleu(hypotheses, references, lowercase=True):
    """sacrebleu corpus BLEU (0..100) of `hypotheses` against lists of references."""
    from sacrebleu.metrics import BLEU

    if not hypotheses:
        return 0.0
    return BLEU(lowercase=lowercase).corpus_score(list(hypotheses), _streams(references)).score


def chrf(hypotheses, references, lowercase=True):
    """sacrebleu corpus chrF (0..100)."""
    from sacrebleu.metrics import CHRF

    if not hypotheses:
        return 0.0
    return CHRF(lowercase=lowercase).corpus_score(list(hypotheses), _streams(references)).score


def signatures(lowercase=True):
    from sacrebleu.metrics import BLEU, CHRF

    return {"bleu": str(BLEU(lowercase=lowercase).get_signature()),
            "chrf": str(CHRF(lowercase=lowercase).get_signature())}
