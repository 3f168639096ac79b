"""The one training loop: resume, seed, precision, run directory, callbacks, fit, best weights, final metrics.

    train(config, strategy=None, log=print, write_results=True) -> results dict

The task-specific parts (data, vocabulary, model, probe records, final
metrics) come from a `Task` (attn_tf.training.trainer.ClassifierTask,
attn_tf.training.seq2seq_trainer.Seq2SeqTask), chosen by the model's registry
entry. Exporting is not part of training: the command (attn_tf.cli) trains,
exports, then writes results.json once, with its "export" entry.

Exact resume. The order of the training examples in epoch e is a function of
(seed, e) only (`epoch_seed`), the dropout seed-generator states are saved
with the weights and the optimizer state, and a checkpoint records the
batches done in its epoch. So a run stopped anywhere (Ctrl-C, --max-steps,
`--checkpoint-every` then a crash) and resumed sees the same batches and
dropout masks in the same order as if it had never stopped: at the next
batch, not at the start of its epoch.

A Task provides
  monitor                                  logs key of the best weights ("val_accuracy")
  load_data(config) -> data                (data.description is printed)
  new_tokenizer(config, data, run) / load_tokenizer(config, run)   (and report them)
  prepare_config(config, data)             record what the run needs later (e.g. class names)
  setup(config, data, tokenizer, log)      datasets (after the tokenizer exists)
  steps_per_epoch()                        batches per epoch
  epoch_dataset(epoch)                     the training batches of one epoch (deterministic in epoch)
  validation_dataset()
  build(config, steps_total) -> (model, train_model)   compiled, inside the strategy scope
  callbacks(ctx) -> list                   task extras (augmentation)
  validation_score(ctx) -> float           the monitor of the model's current weights (checkpoint averaging)
  probe_records(ctx) -> (function step -> [(tag, header, arrays)]) or None
  finish(ctx, results) -> results          test metrics, task files (chief only writes)
"""

import os
import time

import numpy as np

from attn_tf import run_dir as rd
from attn_tf.errors import UsageError

# Flags --resume takes from the command line; everything else (model, data,
# sizes, seed) comes from the run's config.json.
RESUMABLE_OVERRIDES = ("epochs", "max_steps", "attention_every", "verbose", "checkpoint_every", "export",
                       "export_dir", "average_epochs")
# --attention-every 0 turns the attention off; the batch-level scalars then
# keep this cadence instead of being written at every step.
DEFAULT_SCALAR_EVERY = 50


def epoch_seed(seed, epoch):
    """The shuffling seed of epoch `epoch` of a run seeded `seed` (independent of where a process started)."""
    return int(np.random.default_rng([int(seed), int(epoch), 0x5EED]).integers(0, 2**31 - 1))


def scalar_every(config):
    return int(config.get("attention_every") or 0) or DEFAULT_SCALAR_EVERY


def resolve_config(config, log=print):
    """(RunConfig, RunDir or None, checkpoint state or None) for a new or a resumed run."""
    explicit = set(config.get("_explicit", ()))
    if not config.get("resume"):
        return rd.RunConfig.from_dict({k: v for k, v in config.items() if k not in ("_explicit", "resume")}), \
            None, None
    run = rd.RunDir(rd.find_run(config.get("logdir", "runs"), config["resume"]))
    saved = run.load_config()
    for key in RESUMABLE_OVERRIDES:
        if key in explicit:
            saved[key] = config[key]
    saved.pop("resume", None)
    state = run.load_state()
    if state is None:
        raise UsageError("--resume %s: the run has no checkpoint yet (%s/%s); start it again"
                         % (run.path, rd.CHECKPOINTS, rd.STATE))
    log("Resuming %s from epoch %d%s, step %d" % (
        run.path, state["epoch"], (" batch %d" % state["batch"]) if state.get("batch") else "", state["step"]))
    return saved, run, state


class TrainContext:
    """What the task parts and a model's callback factories get (registry `ModelSpec.callbacks`).

    config, spec (the registry entry), task, data, tokenizer, run (RunDir),
    run_dir (its path), model (dict outputs), train_model (the model being
    fit; shares its layers), strategy, chief (whether this worker writes files;
    a factory that logs returns [] when not), log.
    """

    def __init__(self, **kw):
        self.__dict__.update(kw)


class Task:
    """Defaults of the task parts (see the module docstring); ClassifierTask and Seq2SeqTask extend it."""

    monitor = "val_accuracy"

    def __init__(self, spec):
        self.spec = spec

    def load_tokenizer(self, config, run):
        return self.spec.saved_tokenizer(run.path, config)

    def prepare_config(self, config, data):
        pass

    def validation_dataset(self):
        return self.val_ds

    def callbacks(self, ctx):
        return []

    def validation_score(self, ctx):
        """The monitored validation figure of the current weights (higher is better): a logs key
        "val_<metric>" of fit is the <metric> of evaluate on the validation split."""
        logs = ctx.train_model.evaluate(self.validation_dataset(), return_dict=True, verbose=0)
        return float(logs[self.monitor[len("val_"):]])


def _stream(task, start_epoch, skip, end_epoch):
    ds = task.epoch_dataset(start_epoch)
    if skip:
        ds = ds.skip(skip)
    for e in range(start_epoch + 1, end_epoch):
        ds = ds.concatenate(task.epoch_dataset(e))
    return ds


def train(config, strategy=None, log=print, write_results=True):
    """Runs one training job; returns the results dict (results.json too, if `write_results`)."""
    import keras

    from attn_tf.models import registry
    from attn_tf.training import averaging, devices
    from attn_tf.training import callbacks as cb

    config, run, state = resolve_config(config, log)
    spec = registry.get(config["model"])
    task = make_task(spec)
    # First: MultiWorkerMirroredStrategy must exist before any other TensorFlow op runs.
    strategy = strategy or devices.make_strategy(config["strategy"])
    chief = devices.is_chief(strategy)

    keras.utils.set_random_seed(config["seed"])
    if config.get("mixed_precision"):
        keras.mixed_precision.set_global_policy("mixed_float16")

    data = task.load_data(config)
    log("Data: %s" % data.description)

    scratch = None
    if run is None:
        name = config.get("dataset") or os.path.splitext(os.path.basename(config["data"]))[0]
        if chief:
            run = rd.RunDir(rd.new_run(config["logdir"], config["model"], name, config.get("run_name")))
        else:  # workers other than the chief write nothing; a scratch directory keeps the code paths equal
            import tempfile

            scratch = tempfile.mkdtemp(prefix="attn_tf-worker-")
            run = rd.RunDir(scratch)
        tokenizer = task.new_tokenizer(config, data, run)
        config["model_sizes"] = spec.sizes_for(config)  # so --resume rebuilds the same model
        task.prepare_config(config, data)
        run.save_config(config)
    else:
        tokenizer = task.load_tokenizer(config, run)
    task.setup(config, data, tokenizer, log)
    log("Device: %s; strategy: %s (%d replica%s)" % (
        devices.describe_devices(), config["strategy"], strategy.num_replicas_in_sync,
        "" if strategy.num_replicas_in_sync == 1 else "s"))

    steps_per_epoch = task.steps_per_epoch()
    total_steps = steps_per_epoch * int(config["epochs"])
    if config.get("max_steps"):
        total_steps = min(total_steps, int(config["max_steps"]))
    with strategy.scope():
        model, train_model = task.build(config, total_steps)
        if config["strategy"] == "multi_worker" and hasattr(train_model, "_maybe_symbolic_build"):
            # Keras 3.15's distributed fit/evaluate first average the first batch over the
            # replicas (strategy.reduce of the (x, y) tuple), which MultiWorkerMirroredStrategy
            # cannot do, to build the metrics; build them here from one local batch instead and
            # skip that step (private Keras API: keras is pinned in setup.cfg).
            train_model._symbolic_build(data_batch=next(iter(task.epoch_dataset(0))))
            train_model._maybe_symbolic_build = lambda *args, **kwargs: None
        if state is not None:
            cb.restore(train_model, run, state)

    ctx = TrainContext(config=config, spec=spec, task=task, data=data, tokenizer=tokenizer, run=run,
                       run_dir=run.path, model=model, train_model=train_model, strategy=strategy, chief=chief,
                       log=log)
    # The task's callbacks come first: they may add validation figures to the epoch logs
    # (seq2seq: val_bleu) that the scalar logger writes and the checkpointer selects on.
    callbacks, checkpointer = list(task.callbacks(ctx)), None
    if chief:
        callbacks.append(cb.ScalarLogger(run.path, scalar_every(config)))
        records = task.probe_records(ctx)
        if records is not None:
            callbacks.append(cb.AttentionLogger(run.file(rd.ATTENTION_LOGS), records, config["attention_every"],
                                                storage=config.get("attention_storage", "float16")))
        checkpointer = cb.Checkpointer(run, steps_per_epoch, monitor=task.monitor,
                                       every=config.get("checkpoint_every") or 0)
        callbacks.append(checkpointer)
    if config.get("max_steps"):
        callbacks.append(cb.StopAtStep(config["max_steps"]))
    average_epochs = int(config.get("average_epochs") or 0)
    if average_epochs >= 2:
        # Every worker keeps its own (identical) epoch weights, so all select the same weights below.
        callbacks.append(averaging.EpochWeights(run, steps_per_epoch, keep=average_epochs))
    for factory in spec.callback_factories():
        callbacks.extend(factory(ctx) or [])

    epoch = state["epoch"] if state else 0
    batch = state.get("batch", 0) if state else 0
    step = state["step"] if state else 0
    start = time.time()
    fit = dict(validation_data=task.validation_dataset(), callbacks=callbacks, verbose=config.get("verbose", 1),
               steps_per_epoch=steps_per_epoch, shuffle=False)
    try:
        if epoch < config["epochs"] and not (config.get("max_steps") and step >= config["max_steps"]):
            if batch:
                # The rest of the interrupted epoch, then the following epochs.
                train_model.fit(_stream(task, epoch, batch, epoch + 1), epochs=epoch + 1, initial_epoch=epoch,
                                **dict(fit, steps_per_epoch=steps_per_epoch - batch))
                epoch += 1
            if epoch < config["epochs"] and not train_model.stop_training:
                train_model.fit(_stream(task, epoch, 0, config["epochs"]), epochs=config["epochs"],
                                initial_epoch=epoch, **fit)
    except KeyboardInterrupt:
        if checkpointer is not None:
            checkpointer.save_now()  # continue at the next batch with --resume
        raise
    train_seconds = time.time() - start
    steps = int(train_model.optimizer.iterations.numpy())  # before the best weights (and their step) load

    if os.path.exists(run.best_weights):
        # Model selection on the validation split; the test split only reports.
        train_model.load_weights(run.best_weights)
    # --average-epochs K: the mean of the last K epoch ends instead, when it is better on validation.
    weights = averaging.select_weights(ctx, average_epochs, log=log) if average_epochs >= 2 else None
    results = {
        "model": config["model"],
        "dataset": config.get("dataset") or config.get("data"),
        "train_seconds": round(train_seconds, 1),
        "steps": steps,
        "run_dir": run.path,
    }
    results = task.finish(ctx, results)
    if weights is not None:
        results["weights"] = weights
    if scratch is not None:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
    if not chief:
        results["run_dir"] = None  # this worker wrote no run directory (and must not export)
    if chief:
        model.save(run.file(rd.MODEL))
        if write_results:
            run.save_results(results)
    if chief:
        log("Run directory: %s  (view with: tensorboard --logdir %s)" % (run.path, config["logdir"]))
    return results


def make_task(spec):
    from attn_tf.models import registry

    if spec.task == registry.SEQ2SEQ:
        from attn_tf.training.seq2seq_trainer import Seq2SeqTask

        return Seq2SeqTask(spec)
    from attn_tf.training.trainer import ClassifierTask

    return ClassifierTask(spec)
