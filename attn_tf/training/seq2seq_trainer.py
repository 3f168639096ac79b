"""The seq2seq training job behind `train.py --model seq2seq_gru|seq2seq_transformer`.

data (cmudict / de_en / --data TSV) -> source and target vocabularies ->
model -> fit (teacher forcing, masked loss and token accuracy, the callbacks
of train.py) -> decode the held-out split (greedy or --beam-size) -> metrics
(WER/PER for cmudict, BLEU/chrF otherwise) -> results.json, model.keras,
export.

Run directory (besides the common layout of `attn_tf.training.run_dir`):
  source_vocab.json, target_vocab.json   the vocabularies
  attention/                             probe attention (cross; Transformer: also
                                         encoder self and decoder causal self)
  test/                                  final metrics as scalars (test/wer, ...)
  predictions.tsv                        source, output, references of the test split
"""

import json
import os
import time

import numpy as np

from attn_tf.errors import UsageError

RESUMABLE_OVERRIDES = ("epochs", "max_steps", "attention_every", "verbose")

# Model sizes and training defaults: attn_tf.models.registry.
LENGTH_PENALTY = 0.6
LABEL_SMOOTHING = 0.0
BUCKETS = (4, 6, 8, 10, 12, 14, 16, 20, 24, 32, 48, 64, 96)


# ----------------------------------------------------------------------------- data

def load_seq2seq_data(config):
    from attn_tf.data.seq2seq_datasets import load_seq2seq_dataset, load_seq2seq_user_data

    if config.get("data"):
        return load_seq2seq_user_data(config["data"], seed=config["seed"])
    return load_seq2seq_dataset(config["dataset"], seed=config["seed"])


def _dataset_key(config):
    return config.get("dataset") or "user"


def build_vocabularies(data, config):
    from attn_tf.models import registry

    return registry.get(config["model"]).tokenizer(config, data)


def make_pair_dataset(source_ids, target_ids, batch_size, shuffle, seed=0):
    """`((source [b, S], target_in [b, T]), target_out [b, T])` batches, bucketed by length.

    `source_ids` / `target_ids` are lists of int arrays (targets with [START]
    and [END]). Examples of similar length share a batch (less padding);
    with `shuffle` the order is reshuffled every epoch (seeded).
    """
    import tensorflow as tf

    def ragged(arrays):
        lengths = np.array([len(a) for a in arrays], np.int64)
        values = np.concatenate(arrays) if arrays else np.zeros([0], np.int32)
        return tf.RaggedTensor.from_row_lengths(values.astype(np.int32), lengths)

    n = len(source_ids)
    ds = tf.data.Dataset.from_tensor_slices((ragged(source_ids), ragged(target_ids)))
    ds = ds.map(lambda s, t: (s, t))
    if shuffle:
        ds = ds.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    ds = ds.bucket_by_sequence_length(
        lambda s, t: tf.maximum(tf.shape(s)[0], tf.shape(t)[0]),
        bucket_boundaries=list(BUCKETS), bucket_batch_sizes=[batch_size] * (len(BUCKETS) + 1),
        padded_shapes=([None], [None]))
    ds = ds.map(lambda s, t: ((s, t[:, :-1]), t[:, 1:]), num_parallel_calls=tf.data.AUTOTUNE)
    # The number of batches is known (one partial batch per bucket at most):
    # telling tf.data lets Keras show steps per epoch from the first epoch on.
    lengths = np.maximum([len(a) for a in source_ids], [len(a) for a in target_ids]) if n else np.zeros([0])
    bucket = np.searchsorted(np.asarray(BUCKETS), lengths, side="right")
    batches = int(sum(-(-int(c) // batch_size) for c in np.bincount(bucket, minlength=len(BUCKETS) + 1)))
    ds = ds.apply(tf.data.experimental.assert_cardinality(batches))
    return ds.prefetch(tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------- model

def model_sizes(config):
    """The size arguments of the model: config["model_sizes"] (saved with the run) or the registry's defaults."""
    from attn_tf.models import registry

    return registry.get(config["model"]).sizes_for(config)


def build_seq2seq_model(config, source_vocab_size, target_vocab_size):
    """The model named by config["model"], sized by `model_sizes(config)`."""
    from attn_tf.models import registry

    spec = registry.get(config["model"])
    if spec.task != registry.SEQ2SEQ:
        raise UsageError("unknown seq2seq model %r" % config["model"])
    model = spec.build(config, source_vocab_size=source_vocab_size, target_vocab_size=target_vocab_size)
    model.build_dummy()
    return model


def learning_rate(config, total_steps):
    """Cosine decay from --learning-rate to 5% of it over the run's steps (Transformer: 5% linear warm-up).

    `total_steps` is epochs x batches per epoch (or --max-steps if smaller); a
    constant rate when it is unknown.
    """
    import keras

    lr = float(config["learning_rate"])
    if not total_steps:
        return lr
    from attn_tf.models import registry

    warmup_fraction = registry.get(config["model"]).training_defaults(config).get("warmup")
    if warmup_fraction:
        warmup = max(1, min(1000, int(total_steps * warmup_fraction)))
        return keras.optimizers.schedules.CosineDecay(
            lr * 0.01, decay_steps=max(total_steps - warmup, 1), alpha=0.05, warmup_target=lr, warmup_steps=warmup)
    return keras.optimizers.schedules.CosineDecay(lr, decay_steps=total_steps, alpha=0.05)


def compile_model(model, config, total_steps=None):
    import keras

    from attn_tf.metrics.masked import MaskedAccuracy, MaskedLoss

    from attn_tf.models import registry

    clipnorm = registry.get(config["model"]).training_defaults(config).get("clipnorm")
    clip = {"clipnorm": clipnorm} if clipnorm else {}
    model.compile(optimizer=keras.optimizers.Adam(learning_rate(config, total_steps), **clip),
                  loss=MaskedLoss(label_smoothing=LABEL_SMOOTHING), metrics=[MaskedAccuracy()])


def decode_max_length(config):
    return int(config["max_length"]) + 1


class Translator:
    """Strings -> decoded strings, tokens and attention with a traced decode function."""

    def __init__(self, model, source_vocab, target_vocab, max_length, beam_size=1,
                 length_penalty=LENGTH_PENALTY):
        import tensorflow as tf

        from attn_tf.decoding import decode

        self.source_vocab, self.target_vocab = source_vocab, target_vocab
        self._fn = tf.function(
            lambda ids: decode(model, ids, max_length, beam_size=beam_size, length_penalty=length_penalty),
            input_signature=[tf.TensorSpec([None, None], tf.int32)])

    def ids(self, source_ids):
        return self._fn(source_ids)

    def __call__(self, texts, batch_size=256):
        """-> list of output strings, in the order of `texts` (batched by length)."""
        import tensorflow as tf

        texts = list(texts)
        lengths = [len(t) for t in texts]
        order = np.argsort(lengths, kind="stable")
        out = [None] * len(texts)
        for i in range(0, len(texts), batch_size):
            idx = order[i:i + batch_size]
            ids, _ = self.source_vocab.encode(tf.constant([texts[j] for j in idx], tf.string))
            result = self._fn(ids)
            decoded = self.target_vocab.decode(result["ids"]).numpy()
            for j, s in zip(idx, decoded):
                out[j] = s.decode("utf-8")
        return out


# ----------------------------------------------------------------------------- attention logging

def make_attention_logger(logdir, model, source_vocab, target_vocab, sources, targets, every, translator):
    import keras
    import tensorflow as tf

    from tb_plugin import metadata, summary
    from attn_tf.training.event_steps import last_steps

    class _Logger(keras.callbacks.Callback):
        """Logs the attention of fixed probe pairs every `every` optimizer steps.

        Teacher-forced on the reference target: rows of the cross-attention
        are the target tokens produced at each step (y1 .. yn, [END]),
        columns the source tokens. The header also carries the model's
        current decoded output (`prediction`) and the reference (`label`).
        Runs outside the compiled train step; steps continue on resume and
        a step already written is never written again.
        """

        def __init__(self):
            super().__init__()
            self.every = int(every)
            self.src_ids = source_vocab.encode(tf.constant(sources, tf.string))[0]
            tgt, _ = target_vocab.encode(tf.constant(targets, tf.string), add_start=True, add_end=True)
            self.target_in = tgt[:, :-1]
            self.src_tokens = source_vocab.tokens_for(sources)
            tgt_tokens = target_vocab.tokens_for(targets)
            self.tgt_out = [t + ["[END]"] for t in tgt_tokens]
            self.tgt_in = [["[START]"] + t for t in tgt_tokens]
            self._maps = tf.function(lambda s, t: model.attention_maps(s, t))
            self._writer = None
            self._step = 0
            self._last = -1

        def log(self, step):
            if step <= self._last or self._writer is None:
                return False
            maps = {k: np.asarray(v) for k, v in self._maps(self.src_ids, self.target_in).items()}
            predictions = translator(sources)
            with self._writer.as_default():
                for i in range(len(sources)):
                    s, t = len(self.src_tokens[i]), len(self.tgt_out[i])
                    layers, arrays = [], []
                    if "encoder_self" in maps:
                        for b in range(maps["encoder_self"].shape[1]):
                            arrays.append(maps["encoder_self"][i, b, :, :s, :s])
                            layers.append(metadata.make_layer("encoder/block_%d/self_attention" % b, "self",
                                                              arrays[-1].shape, query="source", key="source"))
                    if "decoder_self" in maps:
                        for b in range(maps["decoder_self"].shape[1]):
                            arrays.append(maps["decoder_self"][i, b, :, :t, :t])
                            layers.append(metadata.make_layer("decoder/block_%d/self_attention" % b, "causal",
                                                              arrays[-1].shape, query="target_input",
                                                              key="target_input"))
                    cross = maps["cross"]
                    for b in range(cross.shape[1]):
                        arrays.append(cross[i, b, :, :t, :s])
                        name = ("decoder/block_%d/cross_attention" % b) if cross.shape[1] > 1 or "decoder_self" in maps \
                            else "decoder/cross_attention"
                        layers.append(metadata.make_layer(name, "cross", arrays[-1].shape, query="target", key="source"))
                    header = metadata.make_header(
                        {"source": self.src_tokens[i], "target": self.tgt_out[i], "target_input": self.tgt_in[i]},
                        layers, text=sources[i], label=targets[i], prediction=predictions[i],
                        extra={"teacher_forced": True, "task": "seq2seq"})
                    summary.attention(metadata.probe_tag(i), header, arrays, step=step)
            self._writer.flush()
            self._last = step
            return True

        def on_train_begin(self, logs=None):
            if self.every <= 0:
                return
            os.makedirs(logdir, exist_ok=True)
            written = last_steps(logdir)
            self._last = max(written.values()) if written else -1
            self._writer = tf.summary.create_file_writer(logdir)
            self._step = int(self.model.optimizer.iterations.numpy())
            if self._step == 0:
                self.log(0)

        def on_train_batch_end(self, batch, logs=None):
            if self.every <= 0:
                return
            self._step += 1
            if self._step % self.every == 0:
                self.log(self._step)

        def on_train_end(self, logs=None):
            if self.every <= 0 or self._writer is None:
                return
            self.log(self._step)
            self._writer.close()

    return _Logger()


# ----------------------------------------------------------------------------- evaluation

def evaluate_outputs(data, translator, log=print):
    """Decodes the unique test sources; returns (metrics dict, rows of (source, output, refs))."""
    from attn_tf.data.seq2seq_datasets import group_references
    from attn_tf.metrics import evaluate

    sources, references = group_references(data.test_sources, data.test_targets)
    start = time.time()
    outputs = translator(sources)
    seconds = time.time() - start
    metrics = evaluate(data.metrics, outputs, references)
    return metrics, list(zip(sources, outputs, references)), seconds


def _format_metrics(metrics):
    parts = []
    for k, v in metrics.items():
        parts.append("%s %.2f%%" % (k.upper(), 100 * v) if k in ("wer", "per") else "%s %.2f" % (
            "BLEU" if k == "bleu" else "chrF", v))
    return ", ".join(parts)


def _write_scalars(logdir, values, step):
    import tensorflow as tf

    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default():
        for k, v in values.items():
            tf.summary.scalar("test/" + k, float(v), step=step)
    writer.flush()
    writer.close()


def load_run(run_dir):
    """(config, model, source_vocab, target_vocab) of a finished seq2seq run."""
    import keras

    from attn_tf.data.seq2seq_vocab import SequenceVocabulary
    from attn_tf.training import run_dir as rd
    import attn_tf.models.seq2seq_gru  # noqa: F401  (registers the classes)
    import attn_tf.models.seq2seq_transformer  # noqa: F401

    config = rd.load_config(run_dir)
    model = keras.models.load_model(os.path.join(run_dir, "model.keras"), compile=False)
    return (config, model, SequenceVocabulary.load(os.path.join(run_dir, "source_vocab.json")),
            SequenceVocabulary.load(os.path.join(run_dir, "target_vocab.json")))


# ----------------------------------------------------------------------------- the job

def train_seq2seq(config, strategy=None, log=print):
    """Runs one seq2seq training job; returns the results dict (also in results.json)."""
    import keras
    import tensorflow as tf

    from attn_tf.data.seq2seq_vocab import SequenceVocabulary
    from attn_tf.training import callbacks as cb
    from attn_tf.training import devices, run_dir as rd

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
            raise UsageError("--resume %s: the run has no checkpoint yet (checkpoints/state.json); start it again"
                             % run_dir)
        log("Resuming %s from epoch %d, step %d" % (run_dir, resumed_state["epoch"], resumed_state["step"]))
    else:
        config = {k: v for k, v in config.items() if k != "_explicit"}
    from attn_tf.models import registry

    spec = registry.get(config["model"])
    if "attention" not in spec.options and config.get("attention", "additive") != "additive":
        log("Note: --attention applies to %s; %s uses multi-head scaled dot-product" % (
            ", ".join(n for n in registry.names(registry.SEQ2SEQ) if "attention" in registry.get(n).options),
            config["model"]))

    keras.utils.set_random_seed(config["seed"])
    if config.get("mixed_precision"):
        keras.mixed_precision.set_global_policy("mixed_float16")

    data = load_seq2seq_data(config)
    log("Data: %s" % data.description)

    if resumed_state is None:
        name = config.get("dataset") or os.path.splitext(os.path.basename(config["data"]))[0]
        run_dir = rd.new_run_dir(config["logdir"], config["model"], name, config.get("run_name"))
        source_vocab, target_vocab = build_vocabularies(data, config)
        config["model_sizes"] = model_sizes(config)  # so --resume rebuilds the same model
        source_vocab.save(os.path.join(run_dir, "source_vocab.json"))
        target_vocab.save(os.path.join(run_dir, "target_vocab.json"))
        rd.save_config(run_dir, config)
    else:
        source_vocab = SequenceVocabulary.load(os.path.join(run_dir, "source_vocab.json"))
        target_vocab = SequenceVocabulary.load(os.path.join(run_dir, "target_vocab.json"))
    log("Vocabularies: %d source tokens (%s), %d target tokens (%s)" % (
        source_vocab.size, source_vocab.tokenizer, target_vocab.size, target_vocab.tokenizer))

    strategy = strategy or devices.make_strategy(config["strategy"])
    chief = devices.is_chief(strategy)
    log("Device: %s; strategy: %s (%d replica%s)" % (
        devices.describe_devices(), config["strategy"], strategy.num_replicas_in_sync,
        "" if strategy.num_replicas_in_sync == 1 else "s"))

    def encoded(sources, targets):
        return (source_vocab.encode_numpy(sources),
                target_vocab.encode_numpy(targets, add_start=True, add_end=True))

    train_ds = make_pair_dataset(*encoded(data.train_sources, data.train_targets), config["batch_size"],
                                 shuffle=True, seed=config["seed"])
    val_ds = make_pair_dataset(*encoded(data.val_sources, data.val_targets), config["batch_size"], shuffle=False)
    test_ds = make_pair_dataset(*encoded(data.test_sources, data.test_targets), config["batch_size"],
                                shuffle=False)
    total_steps = int(train_ds.cardinality().numpy()) * int(config["epochs"])
    if config.get("max_steps"):
        total_steps = min(total_steps, int(config["max_steps"]))

    with strategy.scope():
        model = build_seq2seq_model(config, source_vocab.size, target_vocab.size)
        compile_model(model, config, total_steps)
        if resumed_state is not None:
            model.optimizer.build(model.trainable_variables)
            model.load_weights(os.path.join(run_dir, "checkpoints", "last.weights.h5"))
    log("Model: %s, %d parameters; %d training steps, cosine learning-rate decay" % (
        config["model"], model.count_params(), total_steps))

    max_decode = decode_max_length(config)
    beam_size = int(config.get("beam_size", 1))
    probe_translator = Translator(model, source_vocab, target_vocab, max_decode, beam_size=1)
    callbacks = []
    if chief:
        callbacks.append(cb.ResumableTensorBoard(run_dir, update_freq=max(config["attention_every"], 1) or 50,
                                                 write_graph=False, profile_batch=0))
        k = min(config["probe_examples"], len(set(data.test_sources)))
        if k > 0:
            from attn_tf.data.seq2seq_datasets import group_references

            uniq, refs = group_references(data.test_sources, data.test_targets)
            rng = np.random.default_rng(config["seed"])
            chosen = sorted(rng.choice(len(uniq), size=k, replace=False).tolist())
            callbacks.append(make_attention_logger(
                os.path.join(run_dir, "attention"), model, source_vocab, target_vocab,
                [uniq[i] for i in chosen], [refs[i][0] for i in chosen], config["attention_every"],
                probe_translator))
        callbacks.append(cb.ResumeCheckpoint(os.path.join(run_dir, "checkpoints"),
                                             best_path=os.path.join(run_dir, "checkpoints", "best.weights.h5"),
                                             monitor="val_accuracy"))
    if config.get("max_steps"):
        callbacks.append(cb.StopAtStep(config["max_steps"]))

    initial_epoch = resumed_state["epoch"] if resumed_state else 0
    start = time.time()
    if initial_epoch < config["epochs"] and not (
            resumed_state and config.get("max_steps") and resumed_state["step"] >= config["max_steps"]):
        model.fit(train_ds, validation_data=val_ds, epochs=config["epochs"], initial_epoch=initial_epoch,
                  callbacks=callbacks, verbose=config.get("verbose", 1), shuffle=False)
    train_seconds = time.time() - start
    steps = int(model.optimizer.iterations.numpy())

    best = os.path.join(run_dir, "checkpoints", "best.weights.h5")
    if os.path.exists(best):
        model.load_weights(best)  # model selection on the validation split
    test = model.evaluate(test_ds, return_dict=True, verbose=0)
    translator = probe_translator if beam_size == 1 else Translator(model, source_vocab, target_vocab, max_decode,
                                                                     beam_size=beam_size)
    metrics, rows, decode_seconds = evaluate_outputs(data, translator, log=log)
    results = {
        "model": config["model"],
        "dataset": config.get("dataset") or config.get("data"),
        "attention": config.get("attention") if "attention" in spec.options else "multi_head",
        "beam_size": beam_size,
        "test_sources": len(rows),
        **{"test_" + k: v for k, v in metrics.items()},
        "test_loss": float(test["loss"]),
        "test_token_accuracy": float(test["accuracy"]),
        "train_seconds": round(train_seconds, 1),
        "decode_seconds": round(decode_seconds, 2),
        "steps": steps,
        "parameters": int(model.count_params()),
        "run_dir": run_dir,
    }
    if chief:
        model.save(os.path.join(run_dir, "model.keras"))
        with open(os.path.join(run_dir, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
        with open(os.path.join(run_dir, "predictions.tsv"), "w", encoding="utf-8") as f:
            f.write("source\toutput\treferences\n")
            for s, o, r in rows:
                f.write("%s\t%s\t%s\n" % (s, o, " | ".join(r)))
        _write_scalars(os.path.join(run_dir, "test"),
                       dict(metrics, loss=results["test_loss"], token_accuracy=results["test_token_accuracy"]),
                       steps)
    if chief and config.get("export", True):
        results["export"] = _export(run_dir, config, log)
        with open(os.path.join(run_dir, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
    log("Test (%d held-out sources, %s): %s; token accuracy %.4f; after %d steps in %.0f s" % (
        len(rows), "greedy" if beam_size == 1 else "beam %d" % beam_size, _format_metrics(metrics),
        results["test_token_accuracy"], steps, train_seconds))
    log("Run directory: %s  (view with: tensorboard --logdir %s)" % (run_dir, config["logdir"]))
    return results


def _export(run_dir, config, log):
    from attn_tf.export import export_run

    return export_run(run_dir, base_dir=config.get("export_dir", "saved_models"), log=log)
