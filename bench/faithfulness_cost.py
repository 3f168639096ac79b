"""Cost of the faithfulness training curve (--faithfulness-every) relative to training, measured in one run.

    python bench/faithfulness_cost.py [--epochs 2] [--samples 100] [--dataset movie_reviews]

Trains the default bilstm_attention job (same sizes, batch 64, Adam 2e-3) with the FaithfulnessLogger at
the default cadence (every epoch) and prints, per epoch, the seconds of the epoch (training + validation,
as Keras runs it) beside the seconds of the faithfulness measurement, and their ratio; the target is
<= 5% at the default cadence. The load average is printed with the figures (the development machine is
shared: absolute seconds move with it, the ratio much less).
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--dataset", default="movie_reviews")
    p.add_argument("--out", default="/tmp/attn_tf_faithfulness_cost")
    a = p.parse_args(argv)

    import keras

    from attn_tf.data import TextVectorizer, make_dataset
    from attn_tf.data.run_data import load_classification_data
    from attn_tf.models.adapter import ClassifierAdapter
    from attn_tf.models.bilstm_attention import bilstm_attention
    from attn_tf.training.faithfulness import AdapterFunctions, FaithfulnessLogger, validation_sample

    keras.utils.set_random_seed(0)
    data = load_classification_data({"dataset": a.dataset, "data": None, "seed": 0})
    vec = TextVectorizer.adapt(data.train_texts, max_tokens=20000, min_count=1, max_length=64)
    model = bilstm_attention(len(vec.vocabulary), len(data.class_names), max_length=64)
    train_model = keras.Model(model.input, model.output["probabilities"])
    train_model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    train_ds = make_dataset(data.train_texts, data.train_labels, vec, 64, shuffle=True, seed=0)
    val_ds = make_dataset(data.val_texts, data.val_labels, vec, 64, shuffle=False)

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.time()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.time() - self._t)

    timer = Timer()
    ids = validation_sample(data.val_texts, vec, a.samples, 0)
    logger = FaithfulnessLogger(a.out, AdapterFunctions(ClassifierAdapter(model, kind="bilstm_attention")), ids)
    # The timer's on_epoch_end runs before the logger's, so epoch seconds exclude the measurement.
    train_model.fit(train_ds, validation_data=val_ds, epochs=a.epochs, callbacks=[timer, logger], verbose=2)
    rows = []
    for e, (ep, h) in enumerate(zip(timer.seconds, logger.history)):
        rows.append({"epoch": e + 1, "epoch_seconds": round(ep, 2), "faithfulness_seconds": round(h["seconds"], 2),
                     "ratio": round(h["seconds"] / ep, 4)})
        print("epoch %d: training+validation %.1f s, faithfulness (%d examples) %.2f s, ratio %.1f%%"
              % (e + 1, ep, len(ids), h["seconds"], 100 * h["seconds"] / ep))
    # The first measurement includes tracing the gradient/predict functions; later ones are the steady cost.
    steady = rows[1:] or rows
    total = sum(r["faithfulness_seconds"] for r in steady) / sum(r["epoch_seconds"] for r in steady)
    print(json.dumps({"bench": "faithfulness_cost", "samples": len(ids), "cadence": "every epoch",
                      "epochs": rows, "steady_ratio": round(total, 4),
                      "first_epoch_ratio": rows[0]["ratio"], "target": 0.05,
                      "load_average": [round(x, 2) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
