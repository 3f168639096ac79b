"""assets.extra/tf_serving_warmup_requests: PredictionLog records TF Serving replays at load time.

TF Serving runs every record through the model before it marks the version
AVAILABLE, so the first real request does not pay for graph optimisation and
table initialisation (https://www.tensorflow.org/tfx/serving/saved_model_warmup).

The records are `tensorflow.serving.PredictionLog` messages with a
`predict_log.request` (a PredictRequest for one signature) in a TFRecord file.
They are built with `tensorflow_serving.apis` when tensorflow-serving-api is
installed, else encoded directly (the same bytes; the wire format of the few
fields used is written out below), so exporting does not need that package.
"""

import os

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
MAX_RECORDS = 1000  # TF Serving reads at most this many


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number, payload):
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _encode_prediction_log(model_name, signature_name, tensor_protos):
    """PredictionLog{predict_log{request{model_spec{name, signature_name}, inputs}}} as bytes."""
    model_spec = _field(1, model_name.encode("utf-8")) + _field(3, signature_name.encode("utf-8"))
    request = _field(1, model_spec)  # PredictRequest.model_spec = 1
    for key in sorted(tensor_protos):  # map<string, TensorProto> inputs = 2: entries {key = 1, value = 2}
        entry = _field(1, key.encode("utf-8")) + _field(2, tensor_protos[key].SerializeToString())
        request += _field(2, entry)
    predict_log = _field(1, request)  # PredictLog.request = 1
    return _field(6, predict_log)  # PredictionLog.predict_log = 6


def prediction_log_bytes(model_name, signature_name, inputs):
    """One serialized PredictionLog for `inputs` (a dict name -> array-like)."""
    import tensorflow as tf

    tensors = {k: tf.make_tensor_proto(v) for k, v in inputs.items()}
    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError:
        return _encode_prediction_log(model_name, signature_name, tensors)
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name))
    for k in sorted(tensors):
        request.inputs[k].CopyFrom(tensors[k])
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    return log.SerializeToString()


def write_warmup(version_dir, model_name, signature_name, batches):
    """Writes the warmup file of `version_dir`. Returns its path.

    `batches` is a list of input dicts (requests to `signature_name`) or of
    (signature name, input dict) pairs, so every signature of a model gets
    its graph warmed up before the first real request.
    """
    import tensorflow as tf

    if len(batches) > MAX_RECORDS:
        raise ValueError("at most %d warmup records, got %d" % (MAX_RECORDS, len(batches)))
    directory = os.path.join(version_dir, WARMUP_DIR)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, WARMUP_FILE)
    with tf.io.TFRecordWriter(path) as writer:
        for entry in batches:
            signature, inputs = entry if isinstance(entry, tuple) else (signature_name, entry)
            writer.write(prediction_log_bytes(model_name, signature, inputs))
    return path


def read_warmup(path):
    """The records of a warmup file as PredictionLog messages (needs tensorflow-serving-api)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    return [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
