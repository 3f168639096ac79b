"""Shared by the export tests: the texts every check uses and helpers (conftest.py has the fixtures)."""

import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# Texts every check runs through the signature: ordinary, edge cases, OOV.
TEXTS = [
    "The movie was great fun.",
    "Awful plot and boring acting.",
    "",                                   # empty
    "   \t\n  ",                          # whitespace only
    " ".join(["good", "film"] * 30),      # 60 tokens: truncated to max_length 16
    b"bad \xff\xfe movie \xc3",           # invalid UTF-8
    "zzqx unknownword",                   # out of vocabulary only
    "ÉNORME film — très BON!",            # non-ASCII, case folding
]
MAX_LENGTH = 16


class Exported:
    def __init__(self, kind, run_dir, base_dir, name, version, class_names):
        self.kind, self.run_dir, self.base_dir = kind, run_dir, base_dir
        self.name, self.version, self.class_names = name, version, class_names

    @property
    def path(self):
        return os.path.join(self.base_dir, self.name, str(self.version))


def keras_reference(run_dir, texts):
    """The in-memory Keras model's outputs (vectorizer + model call) and the vectorizer's tokens."""
    import keras

    from attn_tf.data import TextVectorizer
    import attn_tf.layers  # noqa: F401

    vec = TextVectorizer.load(os.path.join(run_dir, "vectorizer.json"))
    model = keras.saving.load_model(os.path.join(run_dir, "model.keras"), compile=False)
    ids, counts = vec(np.array(texts, dtype=object))
    out = model(ids, training=False)
    tokens = vec.tokens_for(np.array(texts, dtype=object))
    return {k: np.asarray(v) for k, v in out.items()}, counts.numpy(), tokens


def run_fresh(script, *args, timeout=180):
    """Runs tests/export/<script> in a fresh interpreter (it imports no attn_tf); returns the process."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, os.path.join(HERE, script), *map(str, args)], cwd="/",
                          capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, "%s failed:\n%s\n%s" % (script, proc.stdout[-4000:], proc.stderr[-4000:])
    return proc


def session_bundle_config_class():
    """tensorflow.serving.SessionBundleConfig, the message whose batching_parameters field the model server
    parses --batching_parameters_file into.

    tensorflow-serving-api (PyPI) does not ship session_bundle_config_pb2, so unless it is importable
    the message is rebuilt here from tensorflow_serving/servables/tensorflow/session_bundle_config.proto
    (BatchingParameters fields 1-7 as upstream; SessionBundleConfig reduced to its batching_parameters
    field), in a private descriptor pool.
    """
    try:
        from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2

        return session_bundle_config_pb2.SessionBundleConfig
    except ImportError:
        pass
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    F = descriptor_pb2.FieldDescriptorProto
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    fdp = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/servables/tensorflow/session_bundle_config.proto",
        package="tensorflow.serving", syntax="proto3", dependency=["google/protobuf/wrappers.proto"])
    bp = fdp.message_type.add(name="BatchingParameters")
    wrapped = [(1, "max_batch_size", "Int64Value"), (2, "batch_timeout_micros", "Int64Value"),
               (3, "max_enqueued_batches", "Int64Value"), (4, "num_batch_threads", "Int64Value"),
               (5, "thread_pool_name", "StringValue")]
    for number, name, wrapper in wrapped:
        bp.field.add(name=name, number=number, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                     type_name=".google.protobuf." + wrapper)
    bp.field.add(name="allowed_batch_sizes", number=6, type=F.TYPE_INT64, label=F.LABEL_REPEATED)
    bp.field.add(name="pad_variable_length_inputs", number=7, type=F.TYPE_BOOL, label=F.LABEL_OPTIONAL)
    sbc = fdp.message_type.add(name="SessionBundleConfig")
    sbc.field.add(name="batching_parameters", number=3, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                  type_name=".tensorflow.serving.BatchingParameters")
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.SessionBundleConfig"))
