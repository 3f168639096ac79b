"""The training job behind train.py: data -> vectorizer -> model -> fit -> evaluate -> save."""

import dataclasses
import json
import os
import sys
import time

from attn_tf.errors import UsageError

# Arguments of a run that --resume takes from the command line; everything
# else (model, data, sizes, seed) comes from the run's config.json.
RESUMABLE_OVERRIDES = ("epochs", "max_steps", "attention_every", "verbose")


@dataclasses.dataclass
class TrainContext:
    """What a model's callback factories (registry `ModelSpec.callbacks`) get from the training loop.

    config: the run's configuration (flags, model options included); model: the
    model with dict outputs; train_model: the model being fit (shares its layers);
    data: the run's data; tokenizer: the run's tokenizer; run_dir: the run
    directory; chief: whether this worker writes files (a factory that logs
    should return [] when not); log: the job's print function.
    """

    config: dict
    model: object
    train_model: object
    data: object
    tokenizer: object
    run_dir: str
    chief: bool
    log: object = print


def load_data(config):
    """Kept for existing imports; the owner is attn_tf.data.run_data."""
    from attn_tf.data.run_data import load_classification_data

    return load_classification_data(config)


def build_models(config, vocab_size, num_classes):
    """Returns (model with dict outputs, training model with probabilities only).

    The two share every layer. Training through the probabilities-only model
    keeps Keras' metric names plain ("accuracy", "val_accuracy") and lets
    `save_weights` carry the optimizer state for resuming.
    """
    import keras

    from attn_tf.models import registry

    model = registry.get(config["model"]).build(config, vocab_size=vocab_size, num_classes=num_classes)
    train_model = keras.Model(model.input, model.output["probabilities"], name=model.name + "_train")
    optimizer = keras.optimizers.Adam(config["learning_rate"])
    train_model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, train_model


def train(config, strategy=None, log=print):
    """Runs one training job. `config` is the dict of train.py flags.

    Returns a dict of results (also written to results.json in the run dir).
    """
    from attn_tf.models import registry

    spec = registry.get(config["model"])
    if spec.task == registry.SEQ2SEQ:
        from attn_tf.training.seq2seq_trainer import train_seq2seq

        return train_seq2seq(config, strategy=strategy, log=log)
    import keras
    import numpy as np
    import tensorflow as tf

    from attn_tf.data import TextVectorizer, make_dataset
    from attn_tf.training import callbacks as cb
    from attn_tf.training import devices, probes, run_dir as rd

    resumed_state = None
    if config.get("resume"):
        run_dir = rd.find_run(config["logdir"], config["resume"])
        saved = rd.load_config(run_dir)
        for key in RESUMABLE_OVERRIDES:
            if key in config.get("_explicit", ()):
                saved[key] = config[key]
        saved["resume"] = None
        config = saved
        resumed_state = cb.read_state(os.path.join(run_dir, "checkpoints"))
        if resumed_state is None:
            raise UsageError(
                "--resume %s: the run has no checkpoint yet (checkpoints/state.json); start it again"
                % run_dir
            )
        log("Resuming %s from epoch %d, step %d" % (run_dir, resumed_state["epoch"], resumed_state["step"]))
    else:
        config = {k: v for k, v in config.items() if k != "_explicit"}

    keras.utils.set_random_seed(config["seed"])
    if config.get("mixed_precision"):
        keras.mixed_precision.set_global_policy("mixed_float16")

    data = load_data(config)
    log("Data: %s" % data.description)

    if resumed_state is None:
        run_dir = rd.new_run_dir(config["logdir"], config["model"],
                                 config.get("dataset") or os.path.splitext(os.path.basename(config["data"]))[0],
                                 config.get("run_name"))
        vectorizer = spec.tokenizer(config, data)
        vectorizer.save(os.path.join(run_dir, "vectorizer.json"))
        config["model_sizes"] = spec.sizes_for(config)  # so --resume rebuilds the same model
        # Export needs the class names without reloading the data.
        config["class_names"] = list(data.class_names)
        rd.save_config(run_dir, config)
    else:
        vectorizer = spec.saved_tokenizer(run_dir, config)

    n_trunc, n_total = vectorizer.truncation_report(data.train_texts)
    log("Vocabulary: %d tokens; %d of %d training texts truncated to %d tokens" % (
        len(vectorizer.vocabulary), n_trunc, n_total, config["max_length"]))

    strategy = strategy or devices.make_strategy(config["strategy"])
    chief = devices.is_chief(strategy)
    log("Device: %s; strategy: %s (%d replica%s)" % (
        devices.describe_devices(), config["strategy"], strategy.num_replicas_in_sync,
        "" if strategy.num_replicas_in_sync == 1 else "s"))

    with strategy.scope():
        model, train_model = build_models(config, len(vectorizer.vocabulary), len(data.class_names))
        if resumed_state is not None:
            train_model.optimizer.build(train_model.trainable_variables)
            train_model.load_weights(os.path.join(run_dir, "checkpoints", "last.weights.h5"))

    train_ds = make_dataset(data.train_texts, data.train_labels, vectorizer, config["batch_size"],
                            shuffle=True, seed=config["seed"])
    if config.get("augment", "none") != "none" or config.get("adversarial_training"):
        from attn_tf.training.augment import augmented_training

        # Robustness remedies (issue: evaluation): returns a dataset and extra callbacks.
        train_ds, extra_callbacks = augmented_training(config, data, vectorizer, model, train_model)
    else:
        extra_callbacks = []
    val_ds = make_dataset(data.val_texts, data.val_labels, vectorizer, config["batch_size"], shuffle=False)
    test_ds = make_dataset(data.test_texts, data.test_labels, vectorizer, config["batch_size"], shuffle=False)

    callbacks = []
    if chief:
        probe_idx = probes.select_probes(data.test_labels, config["probe_examples"], seed=config["seed"])
        probe_texts = [data.test_texts[i] for i in probe_idx]
        probe_ids, _ = vectorizer(tf.constant(probe_texts, dtype=tf.string))
        callbacks.append(cb.ResumableTensorBoard(run_dir, update_freq=max(config["attention_every"], 1) or 50,
                                                 write_graph=False, profile_batch=0))
        if probe_idx:
            callbacks.append(cb.AttentionLogger(
                os.path.join(run_dir, "attention"), model, probe_ids.numpy(), vectorizer.tokens_for(probe_texts),
                [int(data.test_labels[i]) for i in probe_idx], data.class_names,
                every=config["attention_every"], texts=probe_texts))
        callbacks.append(cb.ResumeCheckpoint(os.path.join(run_dir, "checkpoints"),
                                             best_path=os.path.join(run_dir, "checkpoints", "best.weights.h5"),
                                             monitor="val_accuracy"))
    if config.get("max_steps"):
        callbacks.append(cb.StopAtStep(config["max_steps"]))
    callbacks.extend(extra_callbacks)
    ctx = TrainContext(config=config, model=model, train_model=train_model, data=data, tokenizer=vectorizer,
                       run_dir=run_dir, chief=chief, log=log)
    for factory in spec.callback_factories():
        callbacks.extend(factory(ctx) or [])

    initial_epoch = resumed_state["epoch"] if resumed_state else 0
    start = time.time()
    if initial_epoch < config["epochs"] and not (
            resumed_state and config.get("max_steps") and resumed_state["step"] >= config["max_steps"]):
        train_model.fit(train_ds, validation_data=val_ds, epochs=config["epochs"], initial_epoch=initial_epoch,
                        callbacks=callbacks, verbose=config.get("verbose", 1), shuffle=False)
    train_seconds = time.time() - start
    steps = int(train_model.optimizer.iterations.numpy())

    best = os.path.join(run_dir, "checkpoints", "best.weights.h5")
    if os.path.exists(best):
        # Model selection on the validation split; the test split only reports.
        train_model.load_weights(best)
    test = train_model.evaluate(test_ds, return_dict=True, verbose=0)
    results = {
        "model": config["model"],
        "dataset": config.get("dataset") or config.get("data"),
        "test_accuracy": float(test["accuracy"]),
        "test_loss": float(test["loss"]),
        "train_seconds": round(train_seconds, 1),
        "steps": steps,
        "run_dir": run_dir,
    }
    if chief:
        model.save(os.path.join(run_dir, "model.keras"))
        with open(os.path.join(run_dir, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
    if chief and config.get("export", True):
        from attn_tf.export import export_run

        results["export"] = export_run(run_dir, base_dir=config.get("export_dir", "saved_models"), log=log)
    log("Test accuracy: %.4f (%d test examples) after %d steps in %.0f s" % (
        results["test_accuracy"], len(data.test_texts), results["steps"], train_seconds))
    log("Run directory: %s  (view with: tensorboard --logdir %s)" % (run_dir, config["logdir"]))
    return results

