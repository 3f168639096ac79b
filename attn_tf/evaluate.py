"""Faithfulness and robustness evaluation of a trained run.

    python -m attn_tf.evaluate RUN_DIR [--samples 500] [--second-run RUN_DIR2]
                               [--out DIR] [--sections agreement,noise,...]
                               [--compare OTHER_REPORT_JSON_OR_RUN_DIR ...] [--seed 0]
    python -m attn_tf.evaluate --compare RUN_A RUN_B [RUN_C ...] [--out DIR]

The second form evaluates nothing: it puts finished evaluations side by side
(DIR/report.md, one plot of the key figures per variant; default DIR:
evaluation-compare).

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
    from attn_tf.evaluation.runner import OPT_IN, SECTIONS

    p = argparse.ArgumentParser(
        prog="python -m attn_tf.evaluate",
        description="Attention faithfulness and robustness evaluation of a train.py run.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", nargs="?", default=None,
                   help="a run directory made by train.py (runs/<name>); leave out to only --compare")
    p.add_argument("--samples", type=int, default=500,
                   help="test examples evaluated (seeded sample of the test split; default 500)")
    p.add_argument("--second-run", metavar="RUN_DIR2", default=None,
                   help="a run of the same setup with another seed: gives the seed-variance floor")
    p.add_argument("--out", metavar="DIR", default=None, help="output directory (default RUN_DIR/evaluation)")
    p.add_argument("--sections", nargs="+", default=None, metavar="SECTION",
                   help="sections to run, space or comma separated (default and 'all': %s); opt-in, they train "
                        "models for minutes: %s" % (", ".join(SECTIONS), ", ".join(OPT_IN)))
    p.add_argument("--compare", metavar="REPORT", nargs="+", default=None,
                   help="report.json files (or run directories with evaluation/report.json) of other "
                        "evaluations, shown side by side (e.g. the run without --augment); without RUN_DIR: "
                        "only the side-by-side report of these variants is written")
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
    if args.run_dir is None:
        if not args.compare:
            print("error: give a RUN_DIR to evaluate, or --compare RUN_A RUN_B ... to put evaluations "
                  "side by side", file=sys.stderr)
            return 2
        from attn_tf.evaluation import compare as compare_lib

        try:
            path = compare_lib.write(args.compare, args.out or "evaluation-compare")
        except UsageError as e:
            print("error: %s" % e, file=sys.stderr)
            return 2
        if not args.quiet:
            print(open(path).read())
        print("Report: %s" % path)
        return 0
    try:
        if args.samples < 1:
            raise UsageError("--samples must be a positive integer, got %d" % args.samples)
        from attn_tf.evaluation import report, runner

        sections = runner.parse_sections(args.sections)
        compare = [_load_compare(c) for c in args.compare] if args.compare else []
        t0 = time.time()
        run = runner.load_run(args.run_dir)
        second = runner.load_run(args.second_run) if args.second_run else None
        log("Loaded %s (%s) in %.1f s" % (args.run_dir, run.adapter.kind, time.time() - t0))
        results, art = runner.evaluate(run, samples=args.samples, sections=sections, second_run=second,
                                       seed=args.seed, log=log)
        out_dir = args.out or os.path.join(args.run_dir, "evaluation")
        step = int((run.train_results or {}).get("steps") or 0)
        paths = report.write_report(out_dir, results, art, compare=compare[0] if len(compare) == 1 else None,
                                    step=step)
        if len(compare) > 1:
            from attn_tf.evaluation import compare as compare_lib

            paths["compare"] = compare_lib.write(list(args.compare) + [out_dir], os.path.join(out_dir, "compare"))
    except (UsageError, DataError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    if not args.quiet:
        print("")
        print(open(paths["markdown"]).read())
    print("Report: %s\n        %s\nTensorBoard: tensorboard --logdir %s" % (paths["markdown"], paths["json"], out_dir))
    if paths.get("compare"):
        print("Variants side by side: %s" % paths["compare"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
