"""Faithfulness and robustness evaluation of a trained run.

    python -m attn_tf.evaluate RUN_DIR [--samples 500] [--second-run RUN_DIR2]
                               [--out DIR] [--sections agreement,noise,...]
                               [--compare OTHER_REPORT_JSON_OR_RUN_DIR] [--seed 0]

Writes report.json, report.md, plots/*.png and TensorBoard summaries (scalars
and clean-vs-perturbed attention pairs for the Attention tab) to
RUN_DIR/evaluation/ (or --out). Sections: see `attn_tf.evaluation.runner.SECTIONS`
(default: all that apply to the model). Exit status 2 for a bad run directory
or bad flags.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser():
    from attn_tf.evaluation.runner import SECTIONS

    p = argparse.ArgumentParser(
        prog="python -m attn_tf.evaluate",
        description="Attention faithfulness and robustness evaluation of a train.py run.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by train.py (runs/<name>)")
    p.add_argument("--samples", type=int, default=500,
                   help="test examples evaluated (seeded sample of the test split; default 500)")
    p.add_argument("--second-run", metavar="RUN_DIR2", default=None,
                   help="a run of the same setup with another seed: gives the seed-variance floor")
    p.add_argument("--out", metavar="DIR", default=None, help="output directory (default RUN_DIR/evaluation)")
    p.add_argument("--sections", nargs="+", default=None, metavar="SECTION",
                   help="sections to run, space or comma separated (default: all): " + ", ".join(SECTIONS))
    p.add_argument("--compare", metavar="REPORT", default=None,
                   help="report.json (or run directory with evaluation/report.json) of another evaluation, "
                        "shown side by side (e.g. the run without --augment)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample and the random baselines (default 0)")
    p.add_argument("--quiet", action="store_true", help="print only the paths of the outputs")
    return p


def _load_compare(path):
    from attn_tf.errors import UsageError

    if os.path.isdir(path):
        path = os.path.join(path, "evaluation", "report.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError("--compare %s: not a readable report.json (%s)" % (path, e))


def main(argv=None):
    args = build_parser().parse_args(argv)
    from attn_tf.data import DataError
    from attn_tf.errors import UsageError

    log = (lambda *a: None) if args.quiet else (lambda msg: print(msg, flush=True))
    try:
        if args.samples < 1:
            raise UsageError("--samples must be a positive integer, got %d" % args.samples)
        from attn_tf.evaluation import report, runner

        sections = runner.parse_sections(args.sections)
        compare = _load_compare(args.compare) if args.compare else None
        t0 = time.time()
        run = runner.load_run(args.run_dir)
        second = runner.load_run(args.second_run) if args.second_run else None
        log("Loaded %s (%s) in %.1f s" % (args.run_dir, run.adapter.kind, time.time() - t0))
        results, art = runner.evaluate(run, samples=args.samples, sections=sections, second_run=second,
                                       seed=args.seed, log=log)
        out_dir = args.out or os.path.join(args.run_dir, "evaluation")
        step = int((run.train_results or {}).get("steps") or 0)
        paths = report.write_report(out_dir, results, art, compare=compare, step=step)
    except (UsageError, DataError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    if not args.quiet:
        print("")
        print(open(paths["markdown"]).read())
    print("Report: %s\n        %s\nTensorBoard: tensorboard --logdir %s" % (paths["markdown"], paths["json"], out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
