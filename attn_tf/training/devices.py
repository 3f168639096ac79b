"""Device and distribution-strategy choice."""

import json
import os

from attn_tf.errors import UsageError

STRATEGIES = ("default", "mirrored", "multi_worker")

# How long the coordination service waits for a worker's heartbeat before it declares the worker dead
# and aborts every collective. TensorFlow's default, 10 s, killed healthy runs on a loaded 2-core machine
# (a worker's heartbeat thread starved for 10 s while two workers shared the cores); a crashed worker is
# still detected, two minutes later.
HEARTBEAT_TIMEOUT_S = 120

# The TF_CONFIG task types the coordination service coordinates (those MultiWorkerMirroredStrategy picks).
_COORDINATED_JOBS = ("chief", "worker")


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
        _configure_coordination_service()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UsageError("unknown strategy %r; choose one of: %s" % (name, ", ".join(STRATEGIES)))


def _configure_coordination_service():
    """The coordination service MultiWorkerMirroredStrategy would configure itself (same leader and
    jobs), with a longer heartbeat timeout. The strategy keeps a service configured before it is built.
    """
    # the proto module the strategy itself uses (its path moved between TensorFlow versions)
    from tensorflow.python.distribute.collective_all_reduce_strategy import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.distribute.cluster_resolver import TFConfigClusterResolver
    from tensorflow.python.eager import context

    if context.context().coordination_service is not None:
        return
    resolver = TFConfigClusterResolver()
    if resolver.task_type not in _COORDINATED_JOBS:
        return  # the strategy leaves the service off for other task types; so do we
    cluster = resolver.cluster_spec()
    jobs = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=cluster.num_tasks(job))
            for job in _COORDINATED_JOBS if job in cluster.jobs]
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=multi_worker_util.coordination_leader(cluster),
        coordinated_jobs=jobs, heartbeat_timeout_in_ms=HEARTBEAT_TIMEOUT_S * 1000)


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
