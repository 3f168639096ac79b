"""Robustness remedies for train.py: noise augmentation and adversarial training.

`AugmentedTraining(config, data, vectorizer, model, clean_ids)` gives the
training loop its epoch datasets and callbacks when `--augment noise` or
`--adversarial-training` is given:

* `--augment noise`: every epoch, each training example is, with probability
  0.5, replaced by a noisy copy: one of 1 or 2 random character edits, 10%
  word drops or 10% adjacent-word swaps (the perturbations of
  `attn_tf.data.perturb`, so training noise and the evaluation's random
  noise are the same kinds). A new draw every epoch (seeded by --seed and the
  epoch).
* `--adversarial-training`: at the start of every epoch a callback computes
  HotFlip-style perturbations with the current model for a random half of the
  training examples and the epoch trains on the clean data plus these
  adversarial copies (true labels). The flips are gradient-guided character
  edits (`adversarial_typos`: the 10% most salient words each get the edit
  with the largest first-order loss increase, no verification queries), so
  they keep the label; word-level flips to arbitrary vocabulary words would
  often invert it ("good" -> "bad") and teach wrong labels.

Each epoch's dataset is a `tf.data.Dataset.from_generator` of ready batches
(ids int32 [b, max_length], labels int32 [b]) with a known cardinality. It is
meant for the default and mirrored strategies (not multi_worker).
"""

import math

import numpy as np

NOISE_PROBABILITY = 0.5
NOISE_CHOICES = ("char_1", "char_2", "drop_10", "swap_10")
ADVERSARIAL_FRACTION = 0.5
ADVERSARIAL_WORDS = 0.1


class _State:
    def __init__(self):
        self.epoch = -1
        self.adversarial = None  # (ids [K, T], labels [K]) for self.epoch


def noisy_ids(tokens, clean_ids, vectorizer, rng, probability=NOISE_PROBABILITY, choices=NOISE_CHOICES):
    """Ids with a random subset of rows replaced by noisy versions of their tokens."""
    from attn_tf.data import perturb

    ids = clean_ids.copy()
    rows = np.nonzero(rng.random(len(tokens)) < probability)[0]
    if not len(rows):
        return ids
    kinds = rng.integers(0, len(choices), len(rows))
    new_tokens = []
    for r, k in zip(rows, kinds):
        kind, amount = perturb.NOISE_CONFIGS[choices[k]]
        fn = {"char": perturb.char_noise, "drop": perturb.word_drop, "swap": perturb.word_swap}[kind]
        new_tokens.append(fn(tokens[r], amount, rng).tokens)
    ids[rows] = perturb.tokens_to_ids(vectorizer, new_tokens, ids.shape[1])
    return ids


def adversarial_typos(adapter, vectorizer, tokens, ids, labels, rng, fraction=ADVERSARIAL_WORDS,
                      batch_size=128):
    """Gradient-guided character flips (HotFlip's flips, for a word-level model), first order only.

    In each row the round(fraction * words) (at least one) most salient
    editable words (|dL/de . e|, L = -log p_label) get one character edit
    each: of the four edit kinds the one whose new token id has the largest
    first-order loss increase (E_new - E_old) . dL/de is kept. A typo does not
    change the label for a reader, so the copies keep their labels (unlike
    word flips, which may turn "good" into "bad"). Returns the new ids.
    """
    from attn_tf.data import perturb
    from attn_tf.models.gradients import loss_gradients

    emb_matrix = np.asarray(adapter.embedding_matrix.numpy(), np.float32)
    out = ids.copy()
    width = ids.shape[1]
    for start in range(0, len(ids), batch_size):
        rows = np.arange(start, min(start + batch_size, len(ids)))
        grads, embs = loss_gradients(adapter, ids[rows], labels[rows], batch_size=batch_size)
        sal = np.abs((grads * embs).sum(-1))
        cand_rows, cand_pos, cand_tokens = [], [], []
        for r, i in enumerate(rows):
            toks = tokens[i][:width]
            elig = [j for j, t in enumerate(toks) if perturb.editable(t) and t not in perturb.STOPWORDS]
            if not elig:
                continue
            k = max(1, int(round(fraction * sum(perturb.is_word(t) for t in toks))))
            for j in sorted(elig, key=lambda j: -sal[r, j])[:k]:
                for kind in perturb.EDIT_KINDS:
                    new, d = perturb.char_edit(toks[j], kind, rng)
                    if d:
                        cand_rows.append(r)
                        cand_pos.append(j)
                        cand_tokens.append(new)
        if not cand_rows:
            continue
        new_ids = perturb.tokens_to_ids(vectorizer, [[t] for t in cand_tokens], 1)[:, 0]
        cand_rows, cand_pos = np.array(cand_rows), np.array(cand_pos)
        old_ids = ids[rows[cand_rows], cand_pos]
        gain = ((emb_matrix[new_ids] - emb_matrix[old_ids]) * grads[cand_rows, cand_pos]).sum(-1)
        best = {}
        for c in np.argsort(-gain, kind="stable"):
            best.setdefault((cand_rows[c], cand_pos[c]), c)
        for (r, j), c in best.items():
            out[rows[r], j] = new_ids[c]
    return out


def steps_per_epoch(config, n):
    """Batches per epoch with --augment / --adversarial-training (adversarial copies add examples)."""
    n_adv = int(round(ADVERSARIAL_FRACTION * n)) if config.get("adversarial_training") else 0
    return math.ceil((n + n_adv) / int(config["batch_size"]))


class AugmentedTraining:
    """The training batches of --augment noise / --adversarial-training, one epoch at a time.

    `epoch_dataset(epoch)` is a `tf.data.Dataset.from_generator` of ready
    batches (ids int32 [b, max_length], labels int32 [b]); the noise and the
    order of epoch e are drawn from (seed, e) only, so a resumed run sees the
    same batches. The adversarial copies of epoch e are computed with the model
    at the start of epoch e (`callbacks()`: on_epoch_begin); a run resumed in
    the middle of epoch e recomputes them with the model at the checkpoint, so
    with --adversarial-training a resume is exact at epoch boundaries only.
    Meant for the default and mirrored strategies (not multi_worker).
    """

    def __init__(self, config, data, vectorizer, model, clean_ids):
        from attn_tf.errors import UsageError

        self.augment = config.get("augment", "none")
        self.adversarial = bool(config.get("adversarial_training"))
        if self.augment not in ("none", "noise"):
            raise UsageError("--augment %s: unknown augmentation; choose none or noise" % self.augment)
        if config.get("strategy") == "multi_worker":
            raise UsageError("--augment/--adversarial-training are not supported with --strategy multi_worker")
        self.seed = int(config.get("seed", 0))
        self.batch_size = int(config["batch_size"])
        self.vectorizer, self.model = vectorizer, model
        texts = list(data.train_texts)
        self.labels = np.asarray(data.train_labels, np.int32)
        self.clean_ids = clean_ids
        self.tokens = vectorizer.tokens_for(texts)
        self.n = len(texts)
        self.n_adv = int(round(ADVERSARIAL_FRACTION * self.n)) if self.adversarial else 0
        self.state = _State()
        self._adapter = None

    def _adversarial_copies(self, epoch):
        from attn_tf.models.adapter import ClassifierAdapter

        if self._adapter is None:
            self._adapter = ClassifierAdapter(self.model)
        rng = np.random.default_rng([self.seed, epoch, 11])
        pick = rng.choice(self.n, self.n_adv, replace=False)
        adv = adversarial_typos(self._adapter, self.vectorizer, [self.tokens[i] for i in pick],
                                self.clean_ids[pick], self.labels[pick], rng)
        return adv, self.labels[pick]

    def epoch_batches(self, epoch):
        rng = np.random.default_rng([self.seed, epoch, 7])
        ids = noisy_ids(self.tokens, self.clean_ids, self.vectorizer, rng) if self.augment == "noise" \
            else self.clean_ids
        y = self.labels
        if self.n_adv:
            if self.state.epoch != epoch or self.state.adversarial is None:
                self.state.epoch, self.state.adversarial = epoch, self._adversarial_copies(epoch)
            adv_ids, adv_y = self.state.adversarial
            ids = np.concatenate([ids, adv_ids])
            y = np.concatenate([y, adv_y])
        order = rng.permutation(len(ids))
        for i in range(0, len(order), self.batch_size):
            sel = order[i:i + self.batch_size]
            yield ids[sel], y[sel]

    def epoch_dataset(self, epoch):
        import tensorflow as tf

        width = self.clean_ids.shape[1]
        ds = tf.data.Dataset.from_generator(
            lambda: self.epoch_batches(epoch),
            output_signature=(tf.TensorSpec([None, width], tf.int32), tf.TensorSpec([None], tf.int32)))
        # No prefetch: the generator of epoch e must start after on_epoch_begin(e) has
        # computed the adversarial copies with the model of that moment.
        return ds.apply(tf.data.experimental.assert_cardinality(math.ceil((self.n + self.n_adv) / self.batch_size)))

    def callbacks(self):
        import keras

        outer = self

        class EpochState(keras.callbacks.Callback):
            """With adversarial training, computes the epoch's adversarial copies at its start."""

            def on_epoch_begin(self, epoch, logs=None):
                if outer.n_adv and outer.state.epoch != epoch:
                    outer.state.epoch, outer.state.adversarial = epoch, outer._adversarial_copies(epoch)

        return [EpochState()]
