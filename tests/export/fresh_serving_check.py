"""Loads an exported SavedModel the way a client or server would: a fresh interpreter that imports
only tensorflow and tensorflow_text (plus tensorflow_serving's protos for the warmup file).

    python fresh_serving_check.py EXPORT_DIR TEXTS_JSON OUT_NPZ

TEXTS_JSON: a JSON list of base64 strings. Runs every signature on those texts and writes the outputs
to OUT_NPZ as "<signature>/<output>" (the `attention` signature: "attention/..." with all layers and
heads, "attention_part/..." with the last layer and head 0 when the model has layers); prints a JSON
report (signatures with their specs, warmup replay, empty batch, the error
of an out-of-range layer index) on the last stdout line.
"""

import base64
import json
import os
import sys

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the TF Text ops the graph uses)
from tensorflow_serving.apis import prediction_log_pb2


def _spec(v):
    return [v.dtype.name, v.shape.as_list()]


def _call(sig, texts, **indexes):
    args = {"text": tf.constant(texts, dtype=tf.string)}
    _, inputs = sig.structured_input_signature
    for name in inputs:
        if name != "text":
            args[name] = tf.constant(indexes.get(name, []), dtype=tf.int32)
    return sig(**args)


def main(export_dir, texts_json, out_npz):
    with open(texts_json) as f:
        texts = [base64.b64decode(t) for t in json.load(f)]
    loaded = tf.saved_model.load(export_dir)
    report = {"signatures": sorted(loaded.signatures.keys()), "specs": {}, "empty_batch": {}}
    arrays = {}
    for key in report["signatures"]:
        sig = loaded.signatures[key]
        _, inputs = sig.structured_input_signature
        report["specs"][key] = {"inputs": {k: _spec(v) for k, v in inputs.items()},
                                "outputs": {k: _spec(v) for k, v in sig.structured_outputs.items()}}
        for name, value in _call(sig, texts).items():
            arrays["%s/%s" % (key, name)] = value.numpy()
        report["empty_batch"][key] = {k: list(v.shape) for k, v in _call(sig, []).items()}
    # kept for the older single-signature checks
    report["inputs"] = report["specs"]["serving_default"]["inputs"]
    report["outputs"] = report["specs"]["serving_default"]["outputs"]

    if "attention" in loaded.signatures:
        sig = loaded.signatures["attention"]
        full_shape = sig.structured_outputs["attention"].shape
        if full_shape.rank == 5:
            layers = int(arrays["attention/attention"].shape[1])
            part = _call(sig, texts, layers=[layers - 1], heads=[0])
            for name, value in part.items():
                arrays["attention_part/%s" % name] = value.numpy()
        try:
            _call(sig, texts[:1], layers=[99])
            report["bad_index_error"] = None
        except tf.errors.InvalidArgumentError as e:
            start = max(e.message.find("assertion failed"), 0)  # skip TF's "Graph execution error:" lines
            report["bad_index_error"] = e.message[start:start + 300]
    np.savez(out_npz, **arrays)

    replay = []
    path = os.path.join(export_dir, "assets.extra", "tf_serving_warmup_requests")
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        sig = loaded.signatures[request.model_spec.signature_name]
        feeds = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        result = sig(**feeds)
        replay.append({
            "model": request.model_spec.name,
            "signature": request.model_spec.signature_name,
            "inputs": sorted(request.inputs.keys()),
            "batch": int(feeds["text"].shape[0]),
            "output_batches": sorted({int(v.shape[0]) for v in result.values()}),
        })
    report["warmup"] = replay
    report["attn_tf_imported"] = any(m == "attn_tf" or m.startswith("attn_tf.") for m in sys.modules)
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:4])
