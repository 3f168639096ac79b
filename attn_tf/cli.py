"""The `attn-tf` command: one entry point with subcommands (the top of the import order).

    attn-tf train [train.py flags]          = python train.py ...
    attn-tf evaluate RUN_DIR [flags]        = python -m attn_tf.evaluate ...
    attn-tf export RUN_DIR [flags]          = python -m attn_tf.export ...
    attn-tf data fetch NAME [NAME ...]      = python -m attn_tf.data ...
    attn-tf probe ...                       = python -m attn_tf.probe ... (when present)

Each subcommand passes its arguments unchanged to the module that owns them,
so flags, help and exit codes are the same in both forms (README "The attn-tf
command"). A new subcommand is one line in SUBCOMMANDS.

`train` is "train, then export": `train_command` runs the training library
(attn_tf.training.loop.train), exports the run unless --no-export
(attn_tf.export.export_run), then writes results.json once, with its
"export" entry (the SavedModel version directory in ["export"]["path"]).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def train_command(argv=None):
    """train.py: parse the flags, train, export, write results.json; returns the exit status."""
    from attn_tf.training.cli import explicit_flags, parse_args

    args = parse_args(argv)
    config = vars(args)
    config["_explicit"] = explicit_flags(argv)

    from attn_tf.data import DataError
    from attn_tf.errors import UsageError

    try:
        train_and_export(config)
    except (DataError, UsageError) as e:
        # Bad flag values, data files or run directories; a traceback would hide the message.
        print("error: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: checkpoints and logs written so far are kept; continue with --resume",
              file=sys.stderr)
        return 130
    return 0


def train_and_export(config, strategy=None, log=print):
    """Trains, exports (unless config["export"] is False), writes results.json; returns the results."""
    from attn_tf import run_dir as rd
    from attn_tf.training.loop import train

    results = train(config, strategy=strategy, log=log, write_results=False)
    if results.get("run_dir") is None:  # a worker other than the chief: it writes nothing
        return results
    run = rd.RunDir(results["run_dir"])
    saved = run.load_config()
    try:
        if saved.get("export", True):
            from attn_tf.export import export_run

            results["export"] = export_run(run.path, base_dir=saved.get("export_dir") or "saved_models", log=log)
    finally:
        run.save_results(results)  # once, after the export (or without it if the export failed)
    return results


def _module_main(module, attr="main"):
    def run(argv):
        import importlib

        return getattr(importlib.import_module(module), attr)(argv)

    return run


# name: (function argv -> exit status, one-line help)
SUBCOMMANDS = {
    "train": (train_command, "train a model and log its attention (the flags of train.py)"),
    "evaluate": (_module_main("attn_tf.evaluate"), "faithfulness and robustness report of a run"),
    "export": (_module_main("attn_tf.export.__main__"), "export a run as a TF Serving SavedModel"),
    "data": (_module_main("attn_tf.data.__main__"), "fetch and cache datasets"),
    "probe": (_module_main("attn_tf.probe"), "attention of any text, without training (--pretrained minilm or a run)"),
}


def _available():
    subs = dict(SUBCOMMANDS)
    import importlib.util

    if "probe" not in subs and importlib.util.find_spec("attn_tf.probe") is not None:
        subs["probe"] = (_module_main("attn_tf.probe"), "attention of any text, without training")
    return subs


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    subs = _available()
    usage = "usage: attn-tf {%s} [ARGS ...]\n\n" % ",".join(subs) + "\n".join(
        "  %-9s %s" % (name, text) for name, (_, text) in subs.items()) + \
        "\n\n`attn-tf COMMAND --help` shows the flags of a command."
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in subs:
        print("error: unknown command %r; choose one of: %s" % (name, ", ".join(subs)), file=sys.stderr)
        return 2
    return subs[name][0](rest)


if __name__ == "__main__":
    sys.exit(main())
