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

from attn_tf.training.loop import RESUMABLE_OVERRIDES, Task  # noqa: E402,F401

# Model sizes and training defaults: attn_tf.models.registry.
from attn_tf.decoding.settings import LENGTH_PENALTY, beam_size as run_beam_size, decode_max_length, length_penalty  # noqa: E402,F401  (owner: decoding)

LABEL_SMOOTHING = 0.0
BUCKETS = (4, 6, 8, 10, 12, 14, 16, 20, 24, 32, 48, 64, 96)


# ----------------------------------------------------------------------------- data

def load_seq2seq_data(config):
    """Kept for existing imports; the owner is attn_tf.data.run_data."""
    from attn_tf.data.run_data import load_seq2seq_data as load

    return load(config)


def build_vocabularies(data, config):
    from attn_tf.models import registry

    return registry.get(config["model"]).tokenizer(config, data)


def bucket_batch_sizes(batch_size, batch_tokens=None):
    """Batch size of each length bucket: `batch_size`, or as many as fit `batch_tokens` tokens (never fewer)."""
    if not batch_tokens:
        return [batch_size] * (len(BUCKETS) + 1)
    return [max(batch_size, int(batch_tokens) // b) for b in BUCKETS] + [batch_size]


def make_pair_dataset(source_ids, target_ids, batch_size, shuffle, seed=0, batch_tokens=None, batches=None):
    """`((source [b, S], target_in [b, T]), target_out [b, T])` batches, bucketed by length.

    `source_ids` / `target_ids` are lists of int arrays (targets with [START]
    and [END]). Examples of similar length share a batch (less padding);
    with `shuffle` the order is reshuffled every epoch (seeded). `batches`:
    exactly that many batches (cut short, or continued with a reshuffled pass).
    """
    import tensorflow as tf

    def ragged(arrays):
        lengths = np.array([len(a) for a in arrays], np.int64)
        values = np.concatenate(arrays) if arrays else np.zeros([0], np.int32)
        return tf.RaggedTensor.from_row_lengths(values.astype(np.int32), lengths)

    n = len(source_ids)
    sizes = bucket_batch_sizes(batch_size, batch_tokens)
    ds = tf.data.Dataset.from_tensor_slices((ragged(source_ids), ragged(target_ids)))
    ds = ds.map(lambda s, t: (s, t))
    if shuffle:
        ds = ds.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    ds = ds.bucket_by_sequence_length(
        lambda s, t: tf.maximum(tf.shape(s)[0], tf.shape(t)[0]),
        bucket_boundaries=list(BUCKETS), bucket_batch_sizes=sizes,
        padded_shapes=([None], [None]))
    ds = ds.map(lambda s, t: ((s, t[:, :-1]), t[:, 1:]), num_parallel_calls=tf.data.AUTOTUNE)
    # The number of batches is known (one partial batch per bucket at most):
    # telling tf.data lets Keras show steps per epoch from the first epoch on.
    lengths = np.maximum([len(a) for a in source_ids], [len(a) for a in target_ids]) if n else np.zeros([0])
    bucket = np.searchsorted(np.asarray(BUCKETS), lengths, side="right")
    counts = np.bincount(bucket, minlength=len(BUCKETS) + 1)
    if batches:
        ds = ds.repeat().take(int(batches))
    else:
        batches = int(sum(-(-int(c) // sizes[i]) for i, c in enumerate(counts)))
    ds = ds.apply(tf.data.experimental.assert_cardinality(int(batches)))
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
    """The seq2seq learning rate: cosine decay by default (attn_tf.training.schedules owns the schedules)."""
    from attn_tf.training.schedules import learning_rate as scheduled

    return scheduled(config, total_steps, default="cosine")


def compile_model(model, config, total_steps=None):
    import keras

    from attn_tf.metrics.masked import MaskedAccuracy, MaskedLoss

    from attn_tf.models import registry

    defaults = registry.get(config["model"]).training_defaults(config)
    clipnorm = defaults.get("clipnorm")
    clip = {"clipnorm": clipnorm} if clipnorm else {}
    model.compile(optimizer=keras.optimizers.Adam(learning_rate(config, total_steps), **clip),
                  loss=MaskedLoss(label_smoothing=defaults.get("label_smoothing", LABEL_SMOOTHING)), metrics=[MaskedAccuracy()])


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

class Seq2SeqProbes:
    """Probe records of fixed source/target pairs: step -> [(tag, header, arrays)] (tb_plugin format).

    Teacher-forced on the reference target: rows of the cross-attention are
    the target tokens produced at each step (y1 .. yn, [END]), columns the
    source tokens. The header also carries the model's current decoded output
    (`prediction`) and the reference (`label`).
    """

    def __init__(self, model, source_vocab, target_vocab, sources, targets, translator):
        import tensorflow as tf

        self.sources, self.targets, self.translator = list(sources), list(targets), translator
        self.src_ids = source_vocab.encode(tf.constant(self.sources, tf.string))[0]
        tgt, _ = target_vocab.encode(tf.constant(self.targets, tf.string), add_start=True, add_end=True)
        self.target_in = tgt[:, :-1]
        self.src_tokens = source_vocab.tokens_for(self.sources)
        tgt_tokens = target_vocab.tokens_for(self.targets)
        self.tgt_out = [t + ["[END]"] for t in tgt_tokens]
        self.tgt_in = [["[START]"] + t for t in tgt_tokens]
        self._maps = tf.function(lambda s, t: model.attention_maps(s, t))

    def __call__(self, step):
        from tb_plugin import metadata

        maps = {k: np.asarray(v) for k, v in self._maps(self.src_ids, self.target_in).items()}
        predictions = self.translator(self.sources)
        records = []
        for i in range(len(self.sources)):
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
                                                      arrays[-1].shape, query="target_input", key="target_input"))
            cross = maps["cross"]
            for b in range(cross.shape[1]):
                arrays.append(cross[i, b, :, :t, :s])
                name = ("decoder/block_%d/cross_attention" % b) if cross.shape[1] > 1 or "decoder_self" in maps \
                    else "decoder/cross_attention"
                layers.append(metadata.make_layer(name, "cross", arrays[-1].shape, query="target", key="source"))
            header = metadata.make_header(
                {"source": self.src_tokens[i], "target": self.tgt_out[i], "target_input": self.tgt_in[i]},
                layers, text=self.sources[i], label=self.targets[i], prediction=predictions[i],
                extra={"teacher_forced": True, "task": "seq2seq"})
            records.append((metadata.probe_tag(i), header, arrays))
        return records


def make_attention_logger(logdir, model, source_vocab, target_vocab, sources, targets, every, translator):
    """The AttentionLogger of seq2seq probe pairs (kept for existing callers)."""
    from attn_tf.training.callbacks import AttentionLogger

    return AttentionLogger(logdir, Seq2SeqProbes(model, source_vocab, target_vocab, sources, targets, translator),
                           every)


# ----------------------------------------------------------------------------- evaluation

def validation_translation(data, translator):
    """A Keras callback: at each epoch end, greedy-decode the validation sources and add their
    metrics (`val_bleu`, `val_chrf`; cmudict: `val_wer`, `val_per` and `val_word_accuracy`,
    1 - WER, higher is better) to the epoch logs.

    Teacher-forced token accuracy is a poor proxy for the decoded output, so the weights of the
    best validation BLEU (or word accuracy) are kept (the test split is not read); the scalar
    logger writes them as validation `epoch_bleu` / `epoch_chrf` (`epoch_wer`, ...).
    """
    import keras

    class ValidationTranslation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs.update(validation_logs(data, translator))

    return ValidationTranslation()


def validation_logs(data, translator):
    """The decoded validation figures as epoch-log keys: "val_bleu", "val_chrf"; cmudict "val_wer",
    "val_per" and "val_word_accuracy" (1 - WER, higher is better)."""
    metrics, _, _ = evaluate_outputs(data, translator, split="val")
    logs = {"val_" + k: float(v) for k, v in metrics.items()}
    if "wer" in metrics:
        logs["val_word_accuracy"] = 1.0 - float(metrics["wer"])
    return logs


def validation_monitor(data):
    """The logs key that selects the kept weights: "val_bleu" for BLEU-scored data, "val_word_accuracy"
    (1 - WER) for WER-scored data (cmudict), both decoded every epoch; "val_accuracy" (teacher-forced
    token accuracy) without a validation split."""
    if data.val_sources and "bleu" in data.metrics:
        return "val_bleu"
    if data.val_sources and "wer" in data.metrics:
        return "val_word_accuracy"
    return "val_accuracy"


def evaluate_outputs(data, translator, log=print, split="test"):
    """Decodes the unique sources of `split` ("test" or "val"); returns (metrics, rows of (source, output, refs), seconds)."""
    from attn_tf.data.seq2seq_datasets import group_references
    from attn_tf.metrics import evaluate

    sources, references = group_references(getattr(data, split + "_sources"), getattr(data, split + "_targets"))
    start = time.time()
    outputs = translator(sources)
    seconds = time.time() - start
    metrics = evaluate(data.metrics, outputs, references)
    return metrics, list(zip(sources, outputs, references)), seconds


def format_metrics(metrics):
    """'WER 28.60%, PER 6.80%' / 'BLEU 8.48, chrF 28.82': a metrics dict of attn_tf.metrics.evaluate, printed."""
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

    from attn_tf import run_dir as rd
    from attn_tf.models import registry

    run = rd.RunDir(run_dir)
    config = run.load_config()
    spec = registry.get(config["model"])
    registry.resolve(spec.builder)  # imports the model's module: registers its classes for loading
    model = keras.models.load_model(run.file(rd.MODEL), compile=False)
    source_vocab, target_vocab = spec.saved_tokenizer(run.path, config)
    return config, model, source_vocab, target_vocab


def load_ensemble(run_dirs):
    """(config, Seq2SeqEnsemble, source_vocab, target_vocab) of two or more finished seq2seq runs.

    The runs must have been trained on the same split with the same vocabularies (UsageError otherwise:
    `attn_tf.models.seq2seq_ensemble.check_members`). The returned config is the first run's, with
    "max_length" the shortest of the members' and "members" the run directories.
    """
    from attn_tf.models.seq2seq_ensemble import Seq2SeqEnsemble, check_members

    run_dirs = [str(d) for d in run_dirs]
    if len(run_dirs) < 2:
        check_members([(d, None, None, None) for d in run_dirs])  # too few: its message, before any loading
    loaded = [load_run(d) for d in run_dirs]
    max_length = check_members([(d, c, s, t) for d, (c, _, s, t) in zip(run_dirs, loaded)])
    config, _, source_vocab, target_vocab = loaded[0]
    config = dict(config, max_length=max_length, members=run_dirs)
    return config, Seq2SeqEnsemble([m for _, m, _, _ in loaded]), source_vocab, target_vocab


class Seq2SeqTask(Task):
    """The seq2seq parts of the training loop (see attn_tf.training.loop)."""

    def load_data(self, config):
        return load_seq2seq_data(config)

    def new_tokenizer(self, config, data, run):
        from attn_tf import run_dir as rd

        source_vocab, target_vocab = self.spec.tokenizer(config, data)
        source_vocab.save(run.file(rd.SOURCE_VOCAB))
        target_vocab.save(run.file(rd.TARGET_VOCAB))
        return source_vocab, target_vocab

    def setup(self, config, data, tokenizer, log):
        self.config, self.data, self.log = config, data, log
        self.source_vocab, self.target_vocab = tokenizer
        if "attention" not in self.spec.options and config.get("attention", "additive") != "additive":
            from attn_tf.models import registry

            log("Note: --attention applies to %s; %s uses multi-head scaled dot-product" % (
                ", ".join(n for n in registry.names(registry.SEQ2SEQ) if "attention" in registry.get(n).options),
                config["model"]))
        log("Vocabularies: %d source tokens (%s), %d target tokens (%s)" % (
            self.source_vocab.size, self.source_vocab.tokenizer, self.target_vocab.size,
            self.target_vocab.tokenizer))

        def encoded(sources, targets):
            return (self.source_vocab.encode_numpy(sources),
                    self.target_vocab.encode_numpy(targets, add_start=True, add_end=True))

        self.train_pairs = encoded(data.train_sources, data.train_targets)
        # Pairs outside the vocabularies (de_en's dictionary phrases): a fresh sample each epoch.
        self.extra_pairs = encoded(data.extra_sources, data.extra_targets) if getattr(
            data, "extra_per_epoch", 0) else None
        self._steps = None
        self.val_ds = make_pair_dataset(*encoded(data.val_sources, data.val_targets), config["batch_size"],
                                        shuffle=False)
        self.test_ds = make_pair_dataset(*encoded(data.test_sources, data.test_targets), config["batch_size"],
                                         shuffle=False)
        self._steps = int(self.epoch_dataset(0).cardinality().numpy())
        self.monitor = validation_monitor(data)

    def steps_per_epoch(self):
        return self._steps

    def callbacks(self, ctx):
        if self.monitor != "val_accuracy":
            return [validation_translation(self.data, self.probe_translator)]
        return []

    def validation_score(self, ctx):
        """The monitor of the current weights: greedy validation BLEU or word accuracy, as each epoch's."""
        if self.monitor == "val_accuracy":
            return super().validation_score(ctx)
        return validation_logs(self.data, self.probe_translator)[self.monitor]

    def epoch_dataset(self, epoch):
        """The epoch's batches, shuffled by a seed drawn from (seed, epoch) only, then bucketed by length.

        With extra pairs (``data.extra_per_epoch``) the epoch adds its own seeded sample of them
        and has as many batches as epoch 0 (so every epoch has ``steps_per_epoch`` batches).
        """
        from attn_tf.training.loop import epoch_seed

        seed = epoch_seed(self.config["seed"], epoch)
        sources, targets = self.train_pairs
        if self.extra_pairs is not None:
            pick = np.random.default_rng([seed, 1]).choice(len(self.extra_pairs[0]), self.data.extra_per_epoch,
                                                           replace=False)
            sources = list(sources) + [self.extra_pairs[0][i] for i in pick]
            targets = list(targets) + [self.extra_pairs[1][i] for i in pick]
        return make_pair_dataset(sources, targets, self.config["batch_size"], shuffle=True, seed=seed,
                                 batch_tokens=self.spec.training_defaults(self.config).get("batch_tokens"),
                                 batches=self._steps if self.extra_pairs is not None else None)

    def build(self, config, total_steps):
        self.model = build_seq2seq_model(config, self.source_vocab.size, self.target_vocab.size)
        compile_model(self.model, config, total_steps)
        self.log("Model: %s, %d parameters; %d training steps, cosine learning-rate decay" % (
            config["model"], self.model.count_params(), total_steps))
        self.max_decode = decode_max_length(config)
        self.probe_translator = Translator(self.model, self.source_vocab, self.target_vocab, self.max_decode,
                                           beam_size=1)
        return self.model, self.model

    def probe_records(self, ctx):
        from attn_tf.data.seq2seq_datasets import group_references

        config, data = self.config, self.data
        k = min(config["probe_examples"], len(set(data.test_sources)))
        if k <= 0:
            return None
        uniq, refs = group_references(data.test_sources, data.test_targets)
        rng = np.random.default_rng(config["seed"])
        chosen = sorted(rng.choice(len(uniq), size=k, replace=False).tolist())
        return Seq2SeqProbes(self.model, self.source_vocab, self.target_vocab, [uniq[i] for i in chosen],
                             [refs[i][0] for i in chosen], self.probe_translator)

    def finish(self, ctx, results):
        from attn_tf import run_dir as rd

        config, model = self.config, self.model
        beam_size = run_beam_size(config)
        penalty = length_penalty(config)
        test = model.evaluate(self.test_ds, return_dict=True, verbose=0)
        translator = self.probe_translator if beam_size == 1 else Translator(
            model, self.source_vocab, self.target_vocab, self.max_decode, beam_size=beam_size,
            length_penalty=penalty)
        metrics, rows, decode_seconds = evaluate_outputs(self.data, translator, log=self.log)
        results = {
            "model": results["model"],
            "dataset": results["dataset"],
            "attention": config.get("attention") if "attention" in self.spec.options else "multi_head",
            "beam_size": beam_size,
            "length_penalty": penalty if beam_size > 1 else None,
            "test_sources": len(rows),
            **{"test_" + k: v for k, v in metrics.items()},
            "test_loss": float(test["loss"]),
            "test_token_accuracy": float(test["accuracy"]),
            "train_seconds": results["train_seconds"],
            "decode_seconds": round(decode_seconds, 2),
            "steps": results["steps"],
            "parameters": int(model.count_params()),
            "run_dir": results["run_dir"],
        }
        if ctx.chief:
            run = ctx.run
            with open(run.file(rd.PREDICTIONS), "w", encoding="utf-8") as f:
                f.write("source\toutput\treferences\n")
                for s_, o, r in rows:
                    f.write("%s\t%s\t%s\n" % (s_, o, " | ".join(r)))
            _write_scalars(run.file(rd.TEST_LOGS),
                           dict(metrics, loss=results["test_loss"], token_accuracy=results["test_token_accuracy"]),
                           results["steps"])
        self.log("Test (%d held-out sources, %s): %s; token accuracy %.4f; after %d steps in %.0f s" % (
            len(rows), "greedy" if beam_size == 1 else "beam %d, length penalty %g" % (beam_size, penalty),
            format_metrics(metrics),
            results["test_token_accuracy"], results["steps"], results["train_seconds"]))
        return results


def train_seq2seq(config, strategy=None, log=print):
    """Runs one seq2seq training job (kept for existing callers): attn_tf.training.loop.train."""
    from attn_tf.training.loop import train

    return train(config, strategy=strategy, log=log)
