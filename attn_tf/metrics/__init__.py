"""Evaluation metrics of seq2seq models.

    word_error_rate / phoneme_error_rate   cmudict (G2P): a word is wrong unless
                                           the output equals one of its reference
                                           pronunciations; PER is the edit distance
                                           to the closest reference over its length
    bleu / chrf                            translation (sacrebleu, corpus level)
    evaluate(metrics, hypotheses, references) -> dict of the named metrics
    masked_sparse_crossentropy, MaskedLoss, MaskedAccuracy   teacher-forced training
"""

from attn_tf.metrics.edit_distance import edit_distance, phoneme_error_rate, word_error_rate
from attn_tf.metrics.masked import MaskedAccuracy, MaskedLoss, masked_sparse_crossentropy
from attn_tf.metrics.translation import bleu, chrf

_FUNCTIONS = {
    "wer": word_error_rate,
    "per": phoneme_error_rate,
    "bleu": bleu,
    "chrf": chrf,
}


def evaluate(metrics, hypotheses, references):
    """`{name: value}` for each name in `metrics` ("wer", "per", "bleu", "chrf").

    Args:
      hypotheses: list of N output strings.
      references: list of N lists of reference strings (at least one each).
    WER and PER are fractions in [0, 1]; BLEU and chrF are sacrebleu's 0..100.
    """
    return {name: float(_FUNCTIONS[name](hypotheses, references)) for name in metrics}


__all__ = [
    "MaskedAccuracy",
    "MaskedLoss",
    "bleu",
    "chrf",
    "edit_distance",
    "evaluate",
    "masked_sparse_crossentropy",
    "phoneme_error_rate",
    "word_error_rate",
]
