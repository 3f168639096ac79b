#!/usr/bin/env python
"""Checkpoint averaging screen: validation figures of the mean of the last K epoch ends, for each K.

Reads the epoch-end weights a run kept with `--average-epochs N` (checkpoints/epoch-NNN.weights.npz),
assigns their mean over the last K of them (attn_tf.training.averaging.average_weights) and greedy-decodes
the validation split; K = 1 is the last epoch alone. Never reads the test split.

    python train.py --model seq2seq_transformer --average-epochs 6 --run-name tf-avg
    python bench/average_epochs.py runs/tf-avg --k 1,2,3,4,5,6
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--k", default="1,2,3,4,5", help="comma-separated numbers of final epochs to average")
    args = p.parse_args(argv)
    try:
        ks = sorted({int(k) for k in args.k.split(",") if k.strip()})
    except ValueError:
        p.error("--k: comma-separated integers, got %r" % args.k)
    if not ks or ks[0] < 1:
        p.error("--k: integers >= 1, got %r" % args.k)

    from attn_tf import run_dir as rd
    from attn_tf.data.run_data import load_seq2seq_data
    from attn_tf.decoding.settings import decode_max_length
    from attn_tf.errors import UsageError
    from attn_tf.training.averaging import average_weights
    from attn_tf.training.seq2seq_trainer import Translator, evaluate_outputs, format_metrics, load_run

    try:
        files = rd.RunDir(args.run_dir).epoch_weight_files()
        if not files:
            raise UsageError("%s has no checkpoints/epoch-NNN.weights.npz: train it with --average-epochs N"
                             % args.run_dir)
        config, model, source_vocab, target_vocab = load_run(args.run_dir)
    except UsageError as e:
        sys.exit("error: %s" % e)
    data = load_seq2seq_data(config)
    translator = Translator(model, source_vocab, target_vocab, decode_max_length(config), beam_size=1)
    print("| averaged epochs | validation | seconds |\n|---|---|---|")
    for k in ks:
        if k > len(files):
            print("| last %d: only %d epoch files kept | | |" % (k, len(files)))
            continue
        use = files[-k:]
        average_weights(model, [path for _, path in use])
        start = time.time()
        metrics, _, _ = evaluate_outputs(data, translator, split="val")
        print("| %d-%d (%d) | %s | %.0f |" % (use[0][0], use[-1][0], k, format_metrics(metrics),
                                             time.time() - start), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
