"""Sweep of the faithful-attention options of bilstm_attention on movie_reviews, judged on VALIDATION.

    python bench/faithful_options.py --name ortho_sparse --lstm orthogonal --normalizer sparsemax

Trains like `python train.py` (movie_reviews, 4 epochs, Adam 2e-3, batch 64, max length 64, seed 0, best
epoch by validation accuracy) with the given options (and, with --lstm-units / --embedding-dim /
--attention-units / --dropout / --embedding-dropout, sizes other than the registry's defaults), writes a
run directory that `python -m attn_tf.evaluate` can read (runs/faithful/<name>), and prints one JSON line
with the validation accuracy (per epoch, and the best) and, on a fixed sample of validation examples, tau(attention, gradient), tau(attention, LOO),
ERASER AOPC comprehensiveness of the attention / gradient / random rankings and the attention entropy
ratio. The test split is not read by the sweep (model choice is on validation). Once a variant is chosen,

    python bench/faithful_options.py --test runs/faithful/<name>

reads the test split once and writes its accuracy to the run's results.json (as train.py does), so
`python -m attn_tf.evaluate runs/faithful/<name>` reports it.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_accuracy(run_dir):
    """Full test-split accuracy of a finished sweep run, written to its results.json."""
    import keras
    import numpy as np

    import attn_tf.layers  # noqa: F401  (registers the custom layers)
    from attn_tf.data import TextVectorizer, vectorize_numpy
    from attn_tf.data.run_data import load_classification_data as load_data

    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    data = load_data(config)
    vec = TextVectorizer.load(os.path.join(run_dir, "vectorizer.json"))
    model = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
    probs = model.predict(vectorize_numpy(data.test_texts, vec), batch_size=256, verbose=0)["probabilities"]
    acc = float(np.mean(probs.argmax(-1) == np.asarray(data.test_labels)))
    path = os.path.join(run_dir, "results.json")
    with open(path) as f:
        results = json.load(f)
    results["test_accuracy"] = acc
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps({"run_dir": run_dir, "test_accuracy": acc, "test_examples": len(data.test_texts)}))


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--test"]:
        for run_dir in argv[1:]:
            test_accuracy(run_dir)
        return
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--lstm", default="vanilla")
    p.add_argument("--normalizer", default="softmax")
    p.add_argument("--conicity-weight", type=float, default=None)
    p.add_argument("--tying-weight", type=float, default=0.0)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    # Sizes (defaults: the registry's bilstm_attention "default" sizes).
    p.add_argument("--lstm-units", type=int, default=None)
    p.add_argument("--embedding-dim", type=int, default=None)
    p.add_argument("--attention-units", type=int, default=None)
    p.add_argument("--dropout", type=float, default=None)
    p.add_argument("--embedding-dropout", type=float, default=None)
    p.add_argument("--val-samples", type=int, default=300)
    p.add_argument("--logdir", default="runs/faithful")
    p.add_argument("--results", default="runs/faithful/sweep.jsonl")
    a = p.parse_args(argv)

    import keras
    import numpy as np

    from attn_tf.data import TextVectorizer, make_dataset, vectorize_numpy
    from attn_tf.models.bilstm_attention import bilstm_attention
    from attn_tf.data.run_data import load_classification_data as load_data
    from attn_tf.models import registry

    sizes = dict(registry.get("bilstm_attention").sizes["default"])
    for key in ("lstm_units", "embedding_dim", "attention_units", "dropout", "embedding_dropout"):
        if getattr(a, key) is not None:
            sizes[key] = getattr(a, key)
    keras.utils.set_random_seed(a.seed)
    config = {"model": "bilstm_attention", "dataset": "movie_reviews", "data": None, "seed": a.seed,
              "max_length": 64, "vocab_size": 20000, "batch_size": 64, "epochs": a.epochs,
              "learning_rate": a.learning_rate, "lstm": a.lstm, "attention_normalizer": a.normalizer,
              "conicity_weight": a.conicity_weight, "tying_weight": a.tying_weight, "model_sizes": sizes}
    data = load_data(config)
    run_dir = os.path.join(a.logdir, a.name)
    os.makedirs(run_dir, exist_ok=True)
    vec = TextVectorizer.adapt(data.train_texts, max_tokens=20000, min_count=1, max_length=64)
    vec.save(os.path.join(run_dir, "vectorizer.json"))
    config["class_names"] = list(data.class_names)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    model = bilstm_attention(len(vec.vocabulary), len(data.class_names), max_length=64, lstm=a.lstm,
                             conicity_weight=a.conicity_weight, tying_weight=a.tying_weight,
                             attention_normalizer=a.normalizer, **sizes)
    train_model = keras.Model(model.input, model.output["probabilities"])
    train_model.compile(keras.optimizers.Adam(a.learning_rate), "sparse_categorical_crossentropy",
                        metrics=["accuracy"])
    train_ds = make_dataset(data.train_texts, data.train_labels, vec, 64, shuffle=True, seed=a.seed)
    val_ds = make_dataset(data.val_texts, data.val_labels, vec, 64, shuffle=False)
    best = os.path.join(run_dir, "best.weights.h5")
    ckpt = keras.callbacks.ModelCheckpoint(best, monitor="val_accuracy", save_best_only=True,
                                           save_weights_only=True)
    t0 = time.time()
    hist = train_model.fit(train_ds, validation_data=val_ds, epochs=a.epochs, callbacks=[ckpt], verbose=2)
    train_s = time.time() - t0
    train_model.load_weights(best)
    model.save(os.path.join(run_dir, "model.keras"))

    from attn_tf.evaluation.adapter import ClassifierAdapter
    from attn_tf.evaluation import erasure, faithfulness, importance

    adapter = ClassifierAdapter(model)
    rng = np.random.default_rng(0)
    idx = np.sort(rng.permutation(len(data.val_texts))[:a.val_samples])
    texts = [data.val_texts[i] for i in idx]
    ids = vectorize_numpy(texts, vec)
    probs, att = adapter.predict(ids)
    grad = importance.gradient_importance(adapter, ids, hold_attention=True)
    loo = importance.leave_one_out(adapter, ids, probs)[0]
    summary, _ = faithfulness.agreement(att, grad, loo, ids)
    er = erasure.eraser(adapter, ids, probs, {"attention": att, "gradient": grad,
                                              "random": rng.random(ids.shape)})
    lengths = (ids != 0).sum(1)
    ent = -(np.where(att > 0, att * np.log(np.maximum(att, 1e-12)), 0)).sum(1)
    ratio = np.where(lengths > 1, ent / np.log(np.maximum(lengths, 2)), 1.0)
    res = {"name": a.name, "lstm": a.lstm, "normalizer": a.normalizer, "conicity_weight": a.conicity_weight,
           "tying_weight": a.tying_weight, "epochs": a.epochs, "learning_rate": a.learning_rate,
           "seed": a.seed, **sizes,
           "val_accuracy_best": float(max(hist.history["val_accuracy"])),
           "best_epoch": int(np.argmax(hist.history["val_accuracy"]) + 1),
           "val_accuracy_per_epoch": [round(float(v), 4) for v in hist.history["val_accuracy"]],
           "val_tau_attn_grad": summary["attn_grad"]["mean"], "val_tau_attn_loo": summary["attn_loo"]["mean"],
           "val_tau_grad_loo": summary["grad_loo"]["mean"],
           "val_aopc_comp_attention": er["attention"]["aopc_comprehensiveness"],
           "val_aopc_comp_gradient": er["gradient"]["aopc_comprehensiveness"],
           "val_aopc_comp_random": er["random"]["aopc_comprehensiveness"],
           "val_aopc_suff_attention": er["attention"]["aopc_sufficiency"],
           "val_entropy_ratio": float(ratio.mean()), "val_zero_weight_frac": float(
               ((att == 0) & (ids != 0)).sum() / max((ids != 0).sum(), 1)),
           "train_seconds": round(train_s, 1), "load": os.getloadavg()[0], "run_dir": run_dir}
    with open(os.path.join(run_dir, "results.json"), "w") as f:
        json.dump({"model": "bilstm_attention", "dataset": "movie_reviews", "train_seconds": res["train_seconds"],
                   "steps": int(train_model.optimizer.iterations.numpy()), "run_dir": run_dir,
                   "validation": res}, f, indent=2)
    os.makedirs(os.path.dirname(a.results), exist_ok=True)
    with open(a.results, "a") as f:
        f.write(json.dumps(res) + "\n")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
