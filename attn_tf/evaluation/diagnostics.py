"""Wiegreffe & Pinter (2019, "Attention is not not Explanation"): the diagnostics that train models.

Both sections train small models with `keras.Model.fit` on the run's own
train split (model selection on its validation split, the test split read once
at the end), so they are opt-in (`--sections wp_uniform wp_diagnostic`):

* `uniform_baseline` ("wp_uniform"): the run's model (same registry entry,
  sizes, options, seed, epochs, batch size and learning rate as config.json)
  retrained with its pooling attention frozen to uniform over the real tokens
  (the attention layer's context vector `v` set to 0 and not trained: every
  score is 0, so softmax, sparsemax and entmax all give 1/T). W&P: if uniform
  attention reaches the same accuracy, the task does not need attention.
* `diagnostic` ("wp_diagnostic"): a non-contextual token-wise MLP
  (Embedding -> Dense(tanh) per token -> average with FIXED per-instance
  weights -> Dense softmax; `diagnostic_mlp`) trained three times, with the
  weights of every instance (train, validation, test) taken from
  (i) uniform, (ii) the run's trained attention, (iii) an adversary. The
  weights are an input of the MLP, not a variable: training cannot move them.
  W&P's claim: the trained model's weights help the MLP more than uniform
  (attention carries information about which tokens matter).

The adversary follows W&P's adversarial training: a model of the run's
architecture trained from scratch (same seed and epochs) to keep its
predictions close to the run's while moving its attention away,
L = TVD(p_adv, p_base) - lambda * KL(alpha_adv || alpha_base)
(lambda = ADVERSARY_LAMBDA, fixed, not tuned; the TVD and JSD it reaches on
the test split are reported with it). Its attention on each instance is the
adversarial distribution given to the MLP.

Differences from the run's own training: batches come from `fit(shuffle=True)`
under the run's seed, not the trainer's per-epoch permutation; the best epoch
by validation accuracy (TVD for the adversary) is kept, as the trainer keeps
its best checkpoint; penalty layers of the run's options (conicity, tying)
stay in the retrained model.
"""

import time

import numpy as np

from attn_tf.evaluation import metrics

SECTIONS = ("wp_uniform", "wp_diagnostic")
ADVERSARY_LAMBDA = 1.0
MLP_HIDDEN = 64
MLP_EPOCHS = 8
SPLITS = ("train", "val", "test")


def split_arrays(run):
    """{"train"|"val"|"test": (ids int32 [N, T], labels int32 [N])} of a run's data and vectorizer."""
    from attn_tf.data import vectorize_numpy

    return {s: (vectorize_numpy(getattr(run.data, s + "_texts"), run.vectorizer),
                np.asarray(getattr(run.data, s + "_labels"), np.int32)) for s in SPLITS}


def macro_f1(labels, pred, num_classes):
    """Macro-averaged F1 over the classes (a class never predicted nor present counts 0)."""
    labels, pred = np.asarray(labels), np.asarray(pred)
    f1 = []
    for c in range(num_classes):
        tp = np.sum((pred == c) & (labels == c))
        denom = np.sum(pred == c) + np.sum(labels == c)
        f1.append(2.0 * tp / denom if denom else 0.0)
    return float(np.mean(f1))


def _scores(probs, labels, num_classes):
    pred = np.asarray(probs).argmax(-1)
    return {"accuracy": float(np.mean(pred == labels)), "macro_f1": macro_f1(labels, pred, num_classes)}


def _fit(model, x, y, val, config, epochs, monitor="val_accuracy", mode="max"):
    """model.fit with the run's batch size; keeps the best epoch by `monitor` on validation. Returns it (1-based)."""
    import keras

    keep = keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=epochs, restore_best_weights=True)
    history = model.fit(x, y, batch_size=int(config.get("batch_size") or 64), epochs=epochs, validation_data=val,
                        shuffle=True, verbose=0, callbacks=[keep])
    if monitor not in history.history:  # else EarlyStopping would only warn and keep the last epoch
        raise KeyError("%s not among the logged metrics %s" % (monitor, sorted(history.history)))
    return int(keep.best_epoch) + 1


def build_like_run(run):
    """A new, untrained model of the run's architecture (registry entry, sizes and options of config.json)."""
    from attn_tf.models import registry

    return registry.get(run.config["model"]).build(run.config, vocab_size=len(run.vectorizer.vocabulary),
                                                   num_classes=len(run.data.class_names))


def freeze_uniform(model):
    """Freezes a pooling-attention model's attention to uniform over the real tokens (in place).

    The context vector `v` of the "attention_pooling" layer is set to zero and
    the layer is made non-trainable, so every score is 0 and the normaliser
    gives 1/T on the real tokens (0 on padding). Returns the model.
    """
    pool = model.get_layer("attention_pooling")
    pool.v.assign(np.zeros(pool.v.shape, np.float32))
    pool.trainable = False
    return model


def _train_model(model, learning_rate):
    import keras

    train = keras.Model(model.input, model.output["probabilities"])
    train.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return train


def _uniform_of(ids):
    mask = (np.asarray(ids) != 0).astype(np.float32)
    return mask / np.maximum(mask.sum(1, keepdims=True), 1.0)


def uniform_baseline(run, arrays=None, epochs=None, log=print):
    """W&P's uniform baseline: the run's model retrained with attention frozen to uniform.

    Args:
      run: a loaded run (attn_tf.evaluation.runner.Run) of a pooling-attention model.
      arrays: `split_arrays(run)` (computed when None).
      epochs: training epochs (default: config.json's).
    Returns:
      dict with the run's and the retrained model's validation and test
      accuracy / macro-F1 (full splits), the gaps, the best epoch, and the
      largest deviation of the retrained model's attention from 1/T.
    """
    import keras

    arrays = arrays or split_arrays(run)
    cfg = run.config
    epochs = int(epochs or cfg["epochs"])
    num_classes = len(run.data.class_names)
    keras.utils.set_random_seed(int(cfg["seed"]))
    model = freeze_uniform(build_like_run(run))
    train = _train_model(model, float(cfg["learning_rate"]))
    t = time.time()
    best = _fit(train, *arrays["train"], arrays["val"], cfg, epochs)
    seconds = time.time() - t
    out = {"epochs": epochs, "best_epoch": best, "train_seconds": round(seconds, 1), "run": {}, "uniform": {}}
    for split in ("val", "test"):
        ids, labels = arrays[split]
        own, _ = run.adapter.predict(ids)
        uni = model.predict(ids, batch_size=256, verbose=0)
        out["run"][split] = _scores(own, labels, num_classes)
        out["uniform"][split] = _scores(uni["probabilities"], labels, num_classes)
        if split == "val":
            out["max_deviation_from_uniform"] = float(np.abs(uni["attention"] - _uniform_of(ids)).max())
    out["gap_test_accuracy"] = out["run"]["test"]["accuracy"] - out["uniform"]["test"]["accuracy"]
    out["gap_val_accuracy"] = out["run"]["val"]["accuracy"] - out["uniform"]["val"]["accuracy"]
    log("  uniform-attention model: val %.4f test %.4f (run: val %.4f test %.4f), %.0f s" % (
        out["uniform"]["val"]["accuracy"], out["uniform"]["test"]["accuracy"], out["run"]["val"]["accuracy"],
        out["run"]["test"]["accuracy"], seconds))
    return out


# ---------------------------------------------------------------------------- adversary

def _tvd_loss(p_base, p_adv):
    from keras import ops

    return 0.5 * ops.sum(ops.abs(p_adv - p_base), axis=-1)


def _neg_kl_loss(a_base, a_adv):
    """-KL(alpha_adv || alpha_base) per instance (0 log 0 = 0; padding has 0 in both)."""
    from keras import ops

    eps = 1e-12
    kl = ops.where(a_adv > 0, a_adv * (ops.log(ops.maximum(a_adv, eps)) - ops.log(ops.maximum(a_base, eps))), 0.0)
    return -ops.sum(kl, axis=-1)


def train_adversary(run, arrays, base, lam=ADVERSARY_LAMBDA, epochs=None):
    """W&P's adversarial model: the run's architecture trained on TVD(p, p_base) - lam * KL(alpha || alpha_base).

    Args:
      run: the loaded run (its config gives seed, epochs, batch size, learning rate).
      arrays: `split_arrays(run)`.
      base: {split: (probabilities [N, C], attention [N, T])} of the run's model.
      lam: weight of the KL term.
    Returns:
      (model, best epoch by validation TVD).
    """
    import keras

    cfg = run.config
    epochs = int(epochs or cfg["epochs"])
    keras.utils.set_random_seed(int(cfg["seed"]))
    model = build_like_run(run)
    model.compile(optimizer=keras.optimizers.Adam(float(cfg["learning_rate"])),
                  loss={"probabilities": _tvd_loss, "attention": _neg_kl_loss},
                  loss_weights={"probabilities": 1.0, "attention": float(lam)},
                  metrics={"probabilities": [_tvd_loss]})

    def targets(split):
        p, a = base[split]
        return {"probabilities": p.astype(np.float32), "attention": a.astype(np.float32)}

    val = (arrays["val"][0], targets("val"))
    best = _fit(model, arrays["train"][0], targets("train"), val, cfg, epochs,
                monitor="val_probabilities__tvd_loss", mode="min")
    return model, best


# ---------------------------------------------------------------------------- diagnostic MLP

def diagnostic_mlp(vocab_size, num_classes, max_length, embedding_dim=100, hidden=MLP_HIDDEN):
    """W&P's non-contextual diagnostic classifier with imposed pooling weights.

        ids [B, T] -> Embedding -> Dense(hidden, tanh) per token -> sum_t w_t h_t -> Dense(C, softmax)

    The weights w [B, T] are the model's second input: they are used as given
    on the real tokens (renormalised to sum 1 there; padding gets 0), never
    trained.

    Args:
      vocab_size, num_classes, max_length: as the run's model.
      embedding_dim, hidden: sizes of the token embedding and the per-token layer.
    Returns:
      keras.Model([ids, weights]) -> probabilities [B, C].
    """
    import keras
    from keras import layers, ops

    ids = keras.Input(shape=(max_length,), dtype="int32", name="token_ids")
    weights = keras.Input(shape=(max_length,), dtype="float32", name="pooling_weights")
    h = layers.Embedding(vocab_size, embedding_dim, name="embedding")(ids)
    h = layers.Dense(hidden, activation="tanh", name="token_mlp")(h)
    mask = ops.cast(ops.not_equal(ids, 0), "float32")
    w = weights * mask
    w = w / ops.maximum(ops.sum(w, axis=-1, keepdims=True), 1e-12)
    pooled = ops.einsum("bt,btd->bd", w, h)
    probs = layers.Dense(num_classes, activation="softmax", name="classifier")(pooled)
    return keras.Model([ids, weights], probs, name="wp_diagnostic_mlp")


def train_mlp(arrays, weights, vocab_size, num_classes, config, embedding_dim=100, epochs=MLP_EPOCHS):
    """Trains one diagnostic MLP with the given per-instance weights; returns (model, scores dict).

    weights: {split: [N, T]} imposed pooling weights. Scores: validation and
    test accuracy / macro-F1, best epoch (by validation accuracy).
    """
    import keras

    keras.utils.set_random_seed(int(config["seed"]))
    ids, labels = arrays["train"]
    model = diagnostic_mlp(vocab_size, num_classes, ids.shape[1], embedding_dim)
    model.compile(optimizer=keras.optimizers.Adam(float(config["learning_rate"])),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    val = ([arrays["val"][0], weights["val"]], arrays["val"][1])
    best = _fit(model, [ids, weights["train"]], labels, val, config, epochs)
    out = {"best_epoch": best}
    for split in ("val", "test"):
        p = model.predict([arrays[split][0], weights[split]], batch_size=256, verbose=0)
        out[split] = _scores(p, arrays[split][1], num_classes)
    return model, out


def diagnostic(run, arrays=None, lam=ADVERSARY_LAMBDA, mlp_epochs=MLP_EPOCHS, log=print):
    """W&P's diagnostic MLP with uniform, the run's and an adversary's pooling weights.

    Returns:
      dict: "mlp" {"uniform"|"model"|"adversary": scores}, "adversary"
      (lambda, best epoch, test TVD of its predictions and JSD of its attention
      from the run's, its test accuracy), sizes and timings.
    """
    arrays = arrays or split_arrays(run)
    vocab_size = len(run.vectorizer.vocabulary)
    num_classes = len(run.data.class_names)
    emb_dim = int(run.adapter.embedding_matrix.shape[-1])
    base = {s: run.adapter.predict(arrays[s][0]) for s in SPLITS}
    t = time.time()
    adversary, adv_best = train_adversary(run, arrays, base, lam)
    adv_seconds = time.time() - t
    adv = {s: adversary.predict(arrays[s][0], batch_size=256, verbose=0) for s in SPLITS}
    test_ids, test_labels = arrays["test"]
    real = test_ids != 0
    a_adv, a_base = adv["test"]["attention"], base["test"][1]
    out = {
        "adversary": {
            "lambda": lam, "objective": "TVD(p_adv, p_base) - lambda * KL(alpha_adv || alpha_base)",
            "best_epoch": adv_best, "train_seconds": round(adv_seconds, 1),
            "test_tvd": metrics.summarize(metrics.tvd(adv["test"]["probabilities"], base["test"][0])),
            "test_jsd": metrics.summarize(metrics.jsd(np.where(real, a_adv, 0), np.where(real, a_base, 0))),
            "test": _scores(adv["test"]["probabilities"], test_labels, num_classes),
        },
        "mlp_sizes": {"embedding_dim": emb_dim, "hidden": MLP_HIDDEN, "epochs": mlp_epochs},
        "mlp": {},
    }
    log("  adversary (lambda %g): test TVD %.3f, JSD %.3f, %.0f s" % (
        lam, out["adversary"]["test_tvd"]["mean"], out["adversary"]["test_jsd"]["mean"], adv_seconds))
    sources = {"uniform": {s: _uniform_of(arrays[s][0]) for s in SPLITS},
               "model": {s: base[s][1] for s in SPLITS},
               "adversary": {s: adv[s]["attention"] for s in SPLITS}}
    for name, weights in sources.items():
        t = time.time()
        _, scores = train_mlp(arrays, weights, vocab_size, num_classes, run.config, emb_dim, mlp_epochs)
        scores["train_seconds"] = round(time.time() - t, 1)
        out["mlp"][name] = scores
        log("  MLP with %s weights: test accuracy %.4f, macro-F1 %.4f" % (
            name, scores["test"]["accuracy"], scores["test"]["macro_f1"]))
    out["model_minus_uniform_test_f1"] = (out["mlp"]["model"]["test"]["macro_f1"]
                                          - out["mlp"]["uniform"]["test"]["macro_f1"])
    return out


def run_section(name, run, log=print):
    """Runs section `name` ("wp_uniform" or "wp_diagnostic") on a loaded run; returns its results dict."""
    arrays = split_arrays(run)
    if name == "wp_uniform":
        return uniform_baseline(run, arrays, log=log)
    if name == "wp_diagnostic":
        return diagnostic(run, arrays, log=log)
    raise ValueError("unknown diagnostics section %r (choose from %s)" % (name, ", ".join(SECTIONS)))
