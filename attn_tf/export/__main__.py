"""python -m attn_tf.export RUN_DIR [--name NAME] [--base-dir saved_models] [--xla] [--ensemble-with RUN ...]:
export a run for TF Serving."""

import argparse
import inspect
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m attn_tf.export",
        description="Export a finished training run as a TF Serving SavedModel: "
                    "<base-dir>/<name>/<next version>/, plus <base-dir>/models.config and "
                    "<base-dir>/batching_parameters.txt. See README.md, section 'Serve with TF Serving'.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by train.py (runs/...)")
    p.add_argument("--name", default=None,
                   help="model name in TF Serving (default: <model>-<dataset> of the run)")
    p.add_argument("--base-dir", default="saved_models",
                   help="parent directory of exported models (default: saved_models)")
    p.add_argument("--class-names", default=None, metavar="A,B,...",
                   help="class names in class-id order, when the run does not record them and its "
                        "training data is gone")
    p.add_argument("--xla", action="store_true",
                   help="seq2seq runs: decode with the XLA-compiled search (about half the CPU per batch; "
                        "TF Serving then needs --xla_cpu_compilation_enabled=true). Default: the "
                        "interpreted loop, which any TF Serving runs")
    p.add_argument("--ensemble-with", nargs="+", default=None, metavar="RUN",
                   help="seq2seq runs: export RUN_DIR and these runs (same data split and vocabularies) as one "
                        "model that decodes with the mean of their next-token probabilities; RUN_DIR gives the "
                        "search settings. Default name: seq2seq_ensemble-<dataset>")
    p.add_argument("--json", action="store_true", help="print the export summary as JSON")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    from attn_tf.errors import UsageError
    from attn_tf.export import check_run, export_run

    try:
        _, exporter = check_run(args.run_dir)  # fast: no TensorFlow import for a wrong path
        options = {}
        if args.class_names:
            if "class_names" not in inspect.signature(exporter.build).parameters:
                raise UsageError("--class-names applies to classifier runs only")
            options["class_names"] = [c.strip() for c in args.class_names.split(",")]
        if args.xla:
            if "jit_compile" not in inspect.signature(exporter.build).parameters:
                raise UsageError("--xla applies to seq2seq runs only")
            options["jit_compile"] = True
        if args.ensemble_with:
            if "ensemble_with" not in inspect.signature(exporter.build).parameters:
                raise UsageError("--ensemble-with applies to seq2seq runs only")
            options["ensemble_with"] = list(args.ensemble_with)
        summary = export_run(args.run_dir, base_dir=args.base_dir, name=args.name,
                             log=(lambda *a: None) if args.json else print, **options)
    except UsageError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
