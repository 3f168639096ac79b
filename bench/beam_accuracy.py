#!/usr/bin/env python
"""Beam search against greedy decoding on a trained seq2seq run: accuracy side by side.

Decodes the run's validation split with each beam size and length penalty, then the
test split with the setting that is best on validation (and greedy, for comparison):
the length penalty is chosen on validation, the test split is read once per setting
printed. Metrics are the run's dataset's (cmudict: WER/PER; de_en, --data: BLEU/chrF).

    python bench/beam_accuracy.py runs/RUN --beams 1,4 --length-penalties 0,0.6,1.0
    python bench/beam_accuracy.py runs/RUN --split validation     # never reads the test split
    python bench/beam_accuracy.py runs/GRU runs/TRANSFORMER       # two or more runs: their ensemble
                                                                  # (attn_tf.models.seq2seq_ensemble)
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

def _score(metrics):
    """The key figure of a metrics dict, higher is better (-WER, BLEU)."""
    if "wer" in metrics:
        return -metrics["wer"]
    return metrics.get("bleu", 0.0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dirs", nargs="+", metavar="run_dir",
                   help="a seq2seq run; two or more: the ensemble of their mean next-token probabilities")
    p.add_argument("--beams", default="1,4", help="comma-separated beam sizes (1 = greedy)")
    p.add_argument("--length-penalties", default="0.6", help="comma-separated GNMT alphas tried with beam > 1")
    p.add_argument("--split", choices=("validation", "both"), default="both",
                   help="validation only, or validation then test with the best setting (default)")
    p.add_argument("--batch-size", type=int, default=256)
    args = p.parse_args(argv)
    try:
        beams = [int(b) for b in args.beams.split(",")]
        penalties = [float(a) for a in args.length_penalties.split(",")]
    except ValueError:
        p.error("--beams and --length-penalties take comma-separated numbers, e.g. --beams 1,4")
    for run_dir in args.run_dirs:
        if not os.path.isfile(os.path.join(run_dir, "config.json")):
            p.error("%s is not a run directory (no config.json): pass a seq2seq run under runs/" % run_dir)

    from attn_tf.data.run_data import load_seq2seq_data
    from attn_tf.decoding.settings import decode_max_length
    from attn_tf.errors import UsageError
    from attn_tf.training.seq2seq_trainer import (Translator, evaluate_outputs, format_metrics, load_ensemble,
                                                  load_run)

    try:
        config, model, source_vocab, target_vocab = (
            load_run(args.run_dirs[0]) if len(args.run_dirs) == 1 else load_ensemble(args.run_dirs))
    except UsageError as e:
        p.error(str(e))
    dataset = config.get("dataset") or config.get("data")
    name = ("run %s (%s on %s)" % (args.run_dirs[0], config["model"], dataset) if len(args.run_dirs) == 1
            else "ensemble of %s (on %s)" % (", ".join(args.run_dirs), dataset))
    data = load_seq2seq_data(config)
    settings = [(1, 0.0)] if 1 in beams else []
    settings += [(b, a) for b in beams if b > 1 for a in penalties]
    rows = []
    print(name)
    for beam, alpha in settings:
        tr = Translator(model, source_vocab, target_vocab, decode_max_length(config), beam_size=beam,
                        length_penalty=alpha)
        metrics, _, seconds = evaluate_outputs(data, tr, split="val")
        rows.append((beam, alpha, metrics, seconds, tr))
        print("validation  beam %d  alpha %.2f  %s  (%.1f s)" % (beam, alpha, format_metrics(metrics), seconds), flush=True)
    if args.split == "both":
        best = max((r for r in rows if r[0] > 1), key=lambda r: _score(r[2]), default=None)
        for beam, alpha, _, _, tr in [r for r in rows if r[0] == 1] + ([best] if best else []):
            metrics, _, seconds = evaluate_outputs(data, tr, split="test")
            print("test        beam %d  alpha %.2f  %s  (%.1f s)" % (beam, alpha, format_metrics(metrics), seconds),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
