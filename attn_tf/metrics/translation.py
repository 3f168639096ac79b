"""Corpus BLEU and chrF with sacrebleu (multi-reference, variable count).

Case-insensitive (the de_en and user-pair models produce lower-case text),
sacrebleu's default 13a tokenization. The signature strings of the metrics
are available from `signatures(references)` for reports.
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


def num_references(references):
    """sacrebleu's reference count of a corpus: n if every source has n references, -1 ("var") otherwise."""
    counts = {len(refs) for refs in references}
    return counts.pop() if len(counts) == 1 else -1


def signatures(references, lowercase=True):
    """The sacrebleu signature strings {"bleu", "chrf"} of scores computed against `references`.

    Args:
      references: the reference lists of the corpus (as for `bleu`); only their count matters
        (sacrebleu's `nrefs`: "var" when the sources have different numbers of references).
      lowercase: as for `bleu` / `chrf`.
    Returns:
      {"bleu": "nrefs:1|case:lc|eff:no|tok:13a|smooth:exp|version:...", "chrf": "..."}.
    """
    from sacrebleu.metrics import BLEU, CHRF

    n = num_references(references) if len(references) else 1
    out = {}
    for name, metric in (("bleu", BLEU(lowercase=lowercase)), ("chrf", CHRF(lowercase=lowercase))):
        metric.num_refs = n  # what corpus_score would set (sacrebleu knows it only after scoring)
        out[name] = str(metric.get_signature())
    return out


def read_predictions(path):
    """(sources, outputs, reference lists) of a run's predictions.tsv (source, output, references joined by " | ")."""
    sources, outputs, references = [], [], []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header[:3] != ["source", "output", "references"]:
            raise ValueError("%s is not a predictions.tsv of a seq2seq run (header %r)" % (path, header))
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3:
                continue
            sources.append(fields[0])
            outputs.append(fields[1])
            references.append(fields[2].split(" | "))
    return sources, outputs, references


def sample_table(path, k=10, seed=0):
    """Markdown table of `k` test rows drawn with `seed` (numpy default_rng, without replacement), file order."""
    import numpy as np

    sources, outputs, references = read_predictions(path)
    chosen = sorted(np.random.default_rng(seed).choice(len(sources), size=min(k, len(sources)),
                                                       replace=False).tolist())

    def cell(s):
        return s.replace("|", "\\|")

    rows = ["| source | reference | output |", "|---|---|---|"]
    rows += ["| %s | %s | %s |" % (cell(sources[i]), cell(references[i][0]), cell(outputs[i])) for i in chosen]
    return "\n".join(rows)


def main(argv=None):
    """python -m attn_tf.metrics.translation RUN/predictions.tsv [--samples 10] [--seed 0]"""
    import argparse
    import sys

    p = argparse.ArgumentParser(description="BLEU/chrF of a seq2seq run's predictions.tsv and seeded samples")
    p.add_argument("predictions")
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        sources, outputs, references = read_predictions(args.predictions)
    except (OSError, ValueError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    print("BLEU %.1f, chrF %.1f on %d sources (%s)" % (bleu(outputs, references), chrf(outputs, references),
                                                      len(sources), signatures(references)["bleu"]))
    print()
    print(sample_table(args.predictions, args.samples, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
