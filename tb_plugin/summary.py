"""Writers of attention summaries: a `tf.summary` op and a TensorFlow-free writer.

Both produce the format defined in `tb_plugin.metadata`. The layer blobs are
float16 (exact, the default) or, with ``storage="uint8"``, the compact 8-bit
encoding (<= 1 byte per weight; see `tb_plugin.metadata`).

    # inside `with tf.summary.create_file_writer(logdir).as_default():`
    summary.attention("attention/probe_000", header, [w0, w1], step=100)

    # without TensorFlow (tests, other Keras backends):
    with summary.AttentionEventWriter(logdir) as w:
        w.add(header, [w0, w1], step=100, tag="attention/probe_000")
"""

import time

from tb_plugin import metadata


def with_storage(header, storage):
    """`header` stamped for `storage` (a copy; the header itself if unchanged)."""
    if storage is None or header.get("dtype", metadata.DEFAULT_STORAGE) == storage:
        return header
    metadata.check_storage(storage)
    header = dict(header)
    header["dtype"] = storage
    header["version"] = max(int(header.get("version", 1)), metadata.STORAGES[storage])
    return header


def _blobs(header, arrays):
    storage = metadata.check_storage(header.get("dtype", metadata.DEFAULT_STORAGE))
    layers = header["layers"]
    if len(layers) != len(arrays):
        raise ValueError(
            "header lists %d layers but %d arrays were given" % (len(layers), len(arrays))
        )
    blobs = [metadata.encode_header(header)]
    for layer, arr in zip(layers, arrays):
        if list(arr.shape) != list(layer["shape"]):
            raise ValueError(
                "layer %r: array shape %s differs from header shape %s"
                % (layer["name"], tuple(arr.shape), tuple(layer["shape"]))
            )
        blobs.append(metadata.encode_array(arr, storage))
    return blobs


def attention(name, header, arrays, step=None, description=None, storage=None):
    """Writes one attention sample with the default `tf.summary` writer.

    Args:
      name: the tag, e.g. `metadata.probe_tag(i)`.
      header: a dict from `metadata.make_header`.
      arrays: one [H, Q, K] array per layer in header["layers"] (NumPy).
      step: int64 step; defaults to `tf.summary.experimental.get_step()`.
      storage: "float16" or "uint8" (see `metadata.STORAGES`); None keeps the
        header's "dtype" (float16 unless `make_header(storage=...)` said
        otherwise). Use one storage per tag: only the first step's metadata
        is kept by TensorBoard (the header of each step says how it is stored,
        so the plugin reads a mixed series correctly anyway).
    Returns:
      True if written, False if no default writer is recording.
    """
    import tensorflow as tf

    header = with_storage(header, storage)
    blobs = _blobs(header, arrays)
    md = metadata.create_summary_metadata(
        description=description, storage=header.get("dtype", metadata.DEFAULT_STORAGE)
    )
    with tf.summary.experimental.summary_scope(name, "attention_summary", values=[]) as (tag, _):
        # A callable is only evaluated when a writer records, so an inactive
        # writer costs nothing.
        return tf.summary.write(
            tag=tag,
            tensor=lambda: tf.constant(blobs, dtype=tf.string),
            step=step,
            metadata=md,
        )


def attention_pb(tag, header, arrays, description=None, storage=None):
    """A `summary_pb2.Summary` proto holding one attention sample (no TF needed)."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.util import tensor_util

    import numpy as np

    header = with_storage(header, storage)
    blobs = _blobs(header, arrays)
    tensor = tensor_util.make_tensor_proto(np.array(blobs, dtype=object), dtype="string", shape=[len(blobs)])
    summary = summary_pb2.Summary()
    md = metadata.create_summary_metadata(description=description, storage=header.get("dtype", metadata.DEFAULT_STORAGE))
    summary.value.add(tag=tag, metadata=md, tensor=tensor)
    return summary


class AttentionEventWriter:
    """Writes attention samples to an event file without TensorFlow.

    Refuses a step that is not greater than the last step written for the same
    tag, because TensorBoard's readers disagree about repeated or decreasing
    steps (the Rust server drops every later step).
    """

    def __init__(self, logdir, filename_suffix="", storage=None):
        """`storage`: "float16"/"uint8" for every sample (None: each header's dtype)."""
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._storage = None if storage is None else metadata.check_storage(storage)
        self._writer = EventFileWriter(logdir, filename_suffix=filename_suffix)
        self._last_step = {}

    def add(self, header, arrays, step, tag, wall_time=None, description=None, storage=None):
        from tensorboard.compat.proto import event_pb2

        step = int(step)
        last = self._last_step.get(tag)
        if last is not None and step <= last:
            raise ValueError("step %d for tag %r is not after the last step %d" % (step, tag, last))
        event = event_pb2.Event(
            wall_time=time.time() if wall_time is None else wall_time,
            step=step,
            summary=attention_pb(tag, header, arrays, description=description,
                                 storage=storage if storage is not None else self._storage),
        )
        self._writer.add_event(event)
        self._last_step[tag] = step

    def flush(self):
        self._writer.flush()

    def close(self):
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
