"""Loads an exported SavedModel the way a client or server would: a fresh interpreter that imports
only tensorflow and tensorflow_text (plus tensorflow_serving's protos for the warmup file).

    python fresh_serving_check.py EXPORT_DIR TEXTS_JSON OUT_NPZ

TEXTS_JSON: a JSON list of base64 strings. Writes the signature outputs on those texts to OUT_NPZ and
prints a JSON report (signatures, specs, warmup replay, empty batch) on the last stdout line.
"""

import base64
import json
import os
import sys

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the TF Text ops the graph uses)
from tensorflow_serving.apis import prediction_log_pb2


def main(export_dir, texts_json, out_npz):
    with open(texts_json) as f:
        texts = [base64.b64decode(t) for t in json.load(f)]
    loaded = tf.saved_model.load(export_dir)
    sig = loaded.signatures["serving_default"]
    _, inputs = sig.structured_input_signature
    report = {
        "signatures": sorted(loaded.signatures.keys()),
        "inputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in inputs.items()},
        "outputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in sig.structured_outputs.items()},
    }
    out = sig(text=tf.constant(texts, dtype=tf.string))
    np.savez(out_npz, **{k: v.numpy() for k, v in out.items()})

    empty = sig(text=tf.constant([], dtype=tf.string))
    report["empty_batch"] = {k: list(v.shape) for k, v in empty.items()}

    replay = []
    path = os.path.join(export_dir, "assets.extra", "tf_serving_warmup_requests")
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        batch = tf.make_ndarray(request.inputs["text"])
        result = sig(text=tf.constant(batch))
        replay.append({
            "model": request.model_spec.name,
            "signature": request.model_spec.signature_name,
            "inputs": sorted(request.inputs.keys()),
            "batch": int(batch.shape[0]),
            "output_batches": sorted({int(v.shape[0]) for v in result.values()}),
        })
    report["warmup"] = replay
    report["attn_tf_imported"] = any(m == "attn_tf" or m.startswith("attn_tf.") for m in sys.modules)
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:4])
