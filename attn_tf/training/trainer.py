"""The classifier task of the training loop: data -> tokenizer -> model -> fit -> test metrics.

`train(config)` (the job behind train.py) is `attn_tf.training.loop.train`;
this module holds the classifier's parts of it (`ClassifierTask`).
"""

import numpy as np

from attn_tf.training.loop import RESUMABLE_OVERRIDES, Task, TrainContext, epoch_seed, train  # noqa: F401


def load_data(config):
    """Kept for existing imports; the owner is attn_tf.data.run_data."""
    from attn_tf.data.run_data import load_classification_data

    return load_classification_data(config)


def build_models(config, vocab_size, num_classes, total_steps=None):
    """Returns (model with dict outputs, training model with probabilities only).

    The optimizer is Adam at the registry's learning-rate schedule for the run's
    `total_steps` (attn_tf.training.schedules; constant unless the model's entry names one).

    The two share every layer. Training through the probabilities-only model
    keeps Keras' metric names plain ("accuracy", "val_accuracy") and lets
    `save_weights` carry the optimizer state for resuming. Extra losses a
    model adds (`add_loss` in a layer) reach the training model too.
    """
    import keras

    from attn_tf.models import registry

    model = registry.get(config["model"]).build(config, vocab_size=vocab_size, num_classes=num_classes)
    train_model = keras.Model(model.input, model.output["probabilities"], name=model.name + "_train")
    from attn_tf.training.schedules import learning_rate

    optimizer = keras.optimizers.Adam(learning_rate(config, total_steps))
    train_model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, train_model


class ClassifierTask(Task):
    """The classifier parts of the training loop (see attn_tf.training.loop)."""

    def load_data(self, config):
        return load_data(config)

    def _report(self, config, data, tokenizer):
        n_trunc, n_total = tokenizer.truncation_report(data.train_texts)
        self.log("Vocabulary: %d tokens; %d of %d training texts truncated to %d tokens" % (
            len(tokenizer.vocabulary), n_trunc, n_total, config["max_length"]))

    def new_tokenizer(self, config, data, run):
        from attn_tf import run_dir as rd

        tokenizer = self.spec.tokenizer(config, data)
        tokenizer.save(run.file(rd.VECTORIZER))
        return tokenizer

    def prepare_config(self, config, data):
        config["class_names"] = list(data.class_names)  # export needs them without reloading the data

    def setup(self, config, data, tokenizer, log):
        from attn_tf.data import make_dataset, vectorize_numpy

        self.config, self.data, self.tokenizer, self.log = config, data, tokenizer, log
        self._report(config, data, tokenizer)
        self.batch_size = int(config["batch_size"])
        self.train_ids = vectorize_numpy(data.train_texts, tokenizer)
        self.train_labels = np.asarray(data.train_labels, np.int32)
        self.augmented = None
        if config.get("augment", "none") != "none" or config.get("adversarial_training"):
            self.augmented = True  # built with the model (adversarial copies need it)
        self.val_ds = make_dataset(data.val_texts, data.val_labels, tokenizer, config["batch_size"], shuffle=False)
        self.test_ds = make_dataset(data.test_texts, data.test_labels, tokenizer, config["batch_size"],
                                    shuffle=False)

    def steps_per_epoch(self):
        if self.augmented:
            from attn_tf.training.augment import steps_per_epoch

            return steps_per_epoch(self.config, len(self.train_ids))
        return -(-len(self.train_ids) // self.batch_size)

    def epoch_dataset(self, epoch):
        """The epoch's batches: a permutation drawn from (seed, epoch) only, so a resumed run sees the same."""
        if self.augmented:
            return self._augment.epoch_dataset(epoch)
        rng = np.random.default_rng(epoch_seed(self.config["seed"], epoch))
        window = self.length_window()
        if not window:
            return self._padded_batches(rng.permutation(len(self.train_ids)))
        return self._length_sorted_dataset(rng, window)

    def _padded_batches(self, order):
        """The training examples in `order`, in batches padded to max_length."""
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices((self.train_ids[order], self.train_labels[order]))
        return ds.batch(self.batch_size).prefetch(tf.data.AUTOTUNE)

    def length_window(self):
        """Batches per length-sorting window (registry training key "length_window"; 0: plain shuffle)."""
        return int(self.spec.training_defaults(self.config).get("length_window") or 0)

    def _length_sorted_dataset(self, rng, window):
        """Batches of texts of similar length, each cut to its longest text when the model takes any length.

        A step costs in proportion to the padded length, so on movie_reviews (median 26 of 56 word pieces)
        MiniLM's epoch costs about half (attn_tf.data.pipeline.length_sorted_batches).
        """
        import tensorflow as tf

        from attn_tf.data.pipeline import length_sorted_batches, row_lengths

        lengths = row_lengths(self.train_ids)
        order = length_sorted_batches(lengths, self.batch_size, window, rng)
        if self.model.input.shape[1] is not None:  # a fixed-length model: sorted, still padded to max_length
            return self._padded_batches(order)
        ids, lengths = self.train_ids[order], lengths[order]
        kept = np.arange(ids.shape[1]) < lengths[:, None]  # each row up to its length (row-major order)
        rows = tf.RaggedTensor.from_row_lengths(ids[kept], lengths)
        ds = tf.data.Dataset.from_tensor_slices((rows, self.train_labels[order]))
        ds = ds.ragged_batch(self.batch_size).map(lambda x, y: (x.to_tensor(), y))
        return ds.apply(tf.data.experimental.assert_cardinality(self.steps_per_epoch())).prefetch(tf.data.AUTOTUNE)

    def build(self, config, total_steps):
        self.model, self.train_model = build_models(config, len(self.tokenizer.vocabulary),
                                                    len(self.data.class_names), total_steps)
        if self.augmented:
            from attn_tf.training.augment import AugmentedTraining

            self._augment = AugmentedTraining(config, self.data, self.tokenizer, self.model, self.train_ids)
        return self.model, self.train_model

    def callbacks(self, ctx):
        return self._augment.callbacks() if self.augmented else []

    def probe_records(self, ctx):
        import tensorflow as tf

        from attn_tf.training import callbacks as cb
        from attn_tf.training import probes

        config, data = self.config, self.data
        idx = probes.select_probes(data.test_labels, config["probe_examples"], seed=config["seed"])
        if not idx:
            return None
        texts = [data.test_texts[i] for i in idx]
        ids, _ = self.tokenizer(tf.constant(texts, dtype=tf.string))
        return cb.ClassifierProbes(self.model, ids.numpy(), self.tokenizer.tokens_for(texts),
                                   [int(data.test_labels[i]) for i in idx], data.class_names, texts=texts)

    def finish(self, ctx, results):
        test = self.train_model.evaluate(self.test_ds, return_dict=True, verbose=0)
        results = dict(results, test_accuracy=float(test["accuracy"]), test_loss=float(test["loss"]))
        # Keep the key order of results.json as before (model, dataset, test_*, ...).
        order = ["model", "dataset", "test_accuracy", "test_loss", "train_seconds", "steps", "run_dir"]
        results = {k: results[k] for k in order if k in results} | {k: v for k, v in results.items()
                                                                   if k not in order}
        self.log("Test accuracy: %.4f (%d test examples) after %d steps in %.0f s" % (
            results["test_accuracy"], len(self.data.test_texts), results["steps"], results["train_seconds"]))
        return results
