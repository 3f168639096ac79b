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
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UsageError("unknown strategy %r; choose one of: %s" % (name, ", ".join(STRATEGIES)))


def is_chief(strategy):
    """True on the worker that writes logs, checkpoints and exports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)
