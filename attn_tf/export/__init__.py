"""SavedModel export for TF Serving.

    export_run(run_dir, base_dir="saved_models", name=None, log=print, **options)
      -> {"name", "version", "path", "signature", ...}

writes saved_models/<name>/<version>/ (next free integer version; name
defaults to <model>-<dataset>), with the tokenizer, vocabulary and class names
inside the SavedModel and warmup requests in assets.extra/, then rewrites
saved_models/models.config and writes saved_models/batching_parameters.txt if
absent. Command line: `python -m attn_tf.export RUN_DIR [--name NAME]
[--base-dir saved_models]`. Serving guide: README.md, section 'Serve with TF Serving'.

One module per kind of model builds its signature. The model's registry
entry (attn_tf.models.registry, `ModelSpec.exporter`) names the kind
("classifier", "seq2seq"); EXPORTER_MODULES maps the kind to the module
(EXPORTERS: model name -> module, derived, kept for existing callers). A module provides
  REQUIRED_FILES            files of the run directory it needs (checked before anything is loaded)
  build(run, log, **options) -> object with
      .archive              keras.export.ExportArchive with the endpoint(s) added
      .signature_name       the signature the warmup requests call ("serving_default")
      .warmup_inputs        list of {input name: numpy array} (one PredictionLog each)
      .description          JSON-able dict (signature inputs/outputs, ...)
  and optionally
  default_name(run, **options) -> the model name when --name is not given (else run.default_name())
A new kind of export is one module here plus its line in EXPORTER_MODULES.
"""

import importlib
import os

from attn_tf.export.run import ExportError, RunDir

__all__ = ["export_run", "ExportError", "EXPORTERS"]

EXPORTER_MODULES = {
    "classifier": "attn_tf.export.classifier",
    "seq2seq": "attn_tf.export.seq2seq",
}


def _exporters():
    from attn_tf.models import registry

    return {n: EXPORTER_MODULES[registry.get(n).exporter] for n in registry.names()
            if registry.get(n).exporter in EXPORTER_MODULES}


def __getattr__(name):
    if name == "EXPORTERS":
        return _exporters()
    raise AttributeError("module 'attn_tf.export' has no attribute %r" % name)


def exporter_for(run):
    """The exporter module of a run (ExportError if the kind has none)."""
    exporters = _exporters()
    module_name = exporters.get(run.kind)
    if module_name is None:
        raise ExportError("%s: no exporter for model %r (known: %s)"
                          % (run.path, run.kind, ", ".join(exporters)))
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        raise ExportError("%s: exporting %r models is not implemented yet (%s is missing)"
                          % (run.path, run.kind, module_name)) from e


def check_run(run_dir):
    """Validates a run directory without loading TensorFlow; returns (RunDir, exporter module)."""
    run = RunDir(run_dir)
    exporter = exporter_for(run)
    run.require(*exporter.REQUIRED_FILES)
    return run, exporter


def export_run(run_dir, base_dir="saved_models", name=None, log=print, **options):
    """Exports a finished run for TF Serving. Returns a dict describing the export.

    Raises ExportError (a UsageError) for a run that cannot be exported.
    """
    from attn_tf.export import graph_ops, layout, warmup
    from attn_tf.export.run import safe_name

    run, exporter = check_run(run_dir)
    # An exporter may name what its options make (an ensemble is not the run's own model).
    default_name = getattr(exporter, "default_name", None)
    name = safe_name(name) if name else (default_name(run, **options) if default_name else run.default_name())
    exported = exporter.build(run, log=log, **options)

    def write(tmp_dir):
        exported.archive.write_out(tmp_dir, verbose=False)
        cudnn = graph_ops.gpu_only_ops(graph_ops.saved_model_ops(tmp_dir))
        if cudnn:  # run.load_keras_model() sets use_cudnn=False; this must never happen
            raise ExportError("the exported graph contains GPU-only ops %s; export from a CPU-only process "
                              "(CUDA_VISIBLE_DEVICES=)" % ", ".join(cudnn))
        warmup.write_warmup(tmp_dir, name, exported.signature_name, exported.warmup_inputs)

    model_dir = os.path.join(base_dir, name)
    version, path = layout.write_version(model_dir, write)
    config_path, batching_path = layout.update_server_files(base_dir)
    n_models = len(layout.exported_models(base_dir))
    log("Exported %s version %d to %s (signature %s; %s lists %d model%s)" % (
        name, version, path, exported.signature_name, config_path, n_models, "" if n_models == 1 else "s"))
    return {
        "name": name,
        "version": version,
        "path": path,
        "models_config": config_path,
        "batching_parameters": batching_path,
        **exported.description,
    }
