"""Device and distribution-strategy choice."""

import json
import os

from attn_tf.errors import UsageError

STRATEGIES = ("default", "mirrored", "multi_worker")


def describe_devices():
    """One line saying where training runs."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return "GPU: %s" % ", ".join(g.name for g in gpus)
    return "CPU (no GPU visible)"


def make_strategy(name, devices=None):
    """Returns a tf.distribute strategy.

    Args:
      name: "default" (one device: the GPU if present, else the CPU),
        "mirrored" (all local GPUs, or `devices`), or "multi_worker"
        (MultiWorkerMirroredStrategy configured by the TF_CONFIG variable).
      devices: optional device list for "mirrored" (tests use 2 logical CPUs).
    """
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise UsageError(
                "--strategy multi_worker needs the TF_CONFIG environment variable "
                "(cluster and task of this worker); see the README"
            )
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as e:
            raise UsageError("TF_CONFIG is not valid JSON: %s" % e) from None
        _patch_keras_multi_worker_reduce()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UsageError("unknown strategy %r; choose one of: %s" % (name, ", ".join(STRATEGIES)))


def _patch_keras_multi_worker_reduce():
    """Keras 3.15 averages each step's metric values over the workers with
    `strategy.reduce("MEAN", v, axis=0)`, which fails for the 0-d values every
    metric returns ("Invalid reduction dimension 0 for input with 0
    dimensions"), so a multi-worker `fit` never ran. 0-d values are reduced
    with axis=None here (the mean over the replicas); everything else goes to
    Keras' own function. Only for --strategy multi_worker; keras is pinned.
    """
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as keras_trainer
    from keras.src import tree

    original = getattr(keras_trainer.reduce_per_replica, "__wrapped__", keras_trainer.reduce_per_replica)

    def reduce_per_replica(values, strategy, reduction):
        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or reduction not in ("auto", "mean"):
            return original(values, strategy, reduction)

        def one(v):
            local = strategy.experimental_local_results(v)[0] if isinstance(v, tf.distribute.DistributedValues) \
                else v
            if getattr(local, "shape", None) is not None and local.shape.rank == 0:
                return strategy.reduce("MEAN", v, axis=None)
            return original(v, strategy, reduction)

        return tree.map_structure(one, values)

    reduce_per_replica.__wrapped__ = original
    keras_trainer.reduce_per_replica = reduce_per_replica


def is_chief(strategy):
    """True on the worker that writes logs, checkpoints and exports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)
