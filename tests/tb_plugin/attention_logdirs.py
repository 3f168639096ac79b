"""Helpers for the Attention plugin tests: a logdir written without TensorFlow,
the two TensorBoard data providers (Python multiplexer and Rust data server)
and `make_app`, a TensorBoard WSGI app around `AttentionPlugin`.

The logdir (session scoped) holds these runs, each with `EXPECTED` values:

* transformer / attention/probe_000: 2 self layers x 2 heads x 5 tokens at
  steps 0, 10, 20; token 1 is an HTML injection string.
* transformer / attention/probe_001: 2 causal layers x 1 head x 4 tokens, step 0.
* pooling / attention/probe_000: one pooling layer [1, 1, 6] at steps 0, 5.
* cross / attention/probe_000: a self layer over 4 source tokens and a cross
  layer [2, 3, 4] (3 target queries x 4 source keys) at steps 1, 2.
* sampled / attention/probe_000: 30 steps (0..29) of a tiny [1, 3, 3] layer.
* big / attention/probe_000: 2 self layers x 8 heads x 128 tokens at steps 0, 1.
* broken / attention/probe_000: step 0 whose header lists 2 layers but whose
  blob 1 is not a .npy array and blob 2 is missing (not in `EXPECTED`).
"""

import os
import time

import numpy as np
import pytest

from tb_plugin import metadata
from tb_plugin.summary import AttentionEventWriter

EVIL_TOKEN = "<img src=x onerror=alert(1)>"
TAG = "attention/probe_000"
TAG_CAUSAL = "attention/probe_001"
ALL_TAGS = {
    "transformer": {TAG: [0, 10, 20], TAG_CAUSAL: [0]},
    "pooling": {TAG: [0, 5]},
    "cross": {TAG: [1, 2]},
    "sampled": {TAG: list(range(30))},
    "big": {TAG: [0, 1]},
    "broken": {TAG: [0]},
}


def _rows(m):
    m = np.asarray(m, dtype=np.float64)
    return m / m.sum(axis=-1, keepdims=True)


def transformer_arrays(step):
    """Hand-made [2, 5, 5] weights per layer; they change with the step."""
    t = 5
    base = np.arange(1, t * t + 1, dtype=np.float64).reshape(t, t)
    layers = []
    for layer in range(2):
        heads = []
        for head in range(2):
            m = np.eye(t) * (4 + step / 10.0) + ((base + 3 * layer + 7 * head) % 5) / 4.0
            heads.append(_rows(m))
        layers.append(np.stack(heads))
    return layers


def causal_arrays():
    t = 4
    mask = np.tril(np.ones((t, t)))
    return [
        _rows(mask * (1.0 + np.arange(t)[None, :]))[None],
        _rows(mask * (1.0 + np.arange(t)[::-1][None, :]))[None],
    ]


def big_arrays(step):
    rng = np.random.default_rng(1234 + step)
    layers = []
    for _ in range(2):
        x = np.exp(rng.normal(size=(8, 128, 128)) * 2.0)
        layers.append(x / x.sum(-1, keepdims=True))
    return layers


def write_logdir(root):
    expected = {}

    def add(writer, run, tag, step, header, arrays):
        writer.add(header, arrays, step=step, tag=tag, wall_time=1000.0 + step)
        f16 = [np.asarray(a, dtype=np.float16) for a in arrays]
        expected.setdefault(run, {}).setdefault(tag, {})[step] = (header, f16)

    # transformer
    tokens = ["[CLS]", EVIL_TOKEN, "b", "c", "d"]
    header = metadata.make_header(
        {"input": tokens},
        [metadata.make_layer("encoder/block_%d" % i, "self", [2, 5, 5]) for i in range(2)],
        text="b c d", label="pos", prediction="neg", probabilities=[0.4, 0.6],
        class_names=["neg", "pos"],
    )
    causal_header = metadata.make_header(
        {"input": ["<s>", "x", "y", "z"]},
        [metadata.make_layer("decoder/block_%d" % i, "causal", [1, 4, 4]) for i in range(2)],
    )
    with AttentionEventWriter(os.path.join(root, "transformer")) as w:
        for step in (0, 10, 20):
            add(w, "transformer", TAG, step, header, transformer_arrays(step))
        add(w, "transformer", TAG_CAUSAL, 0, causal_header, causal_arrays())

    # pooling
    pool_tokens = ["a", "b", EVIL_TOKEN, "d", "e", "f"]
    pool_header = metadata.make_header(
        {"input": pool_tokens},
        [metadata.make_layer("attention_pooling", "pooling", [1, 1, 6], query=None)],
        label="pos", prediction="pos",
    )
    with AttentionEventWriter(os.path.join(root, "pooling")) as w:
        for step in (0, 5):
            weights = _rows(np.arange(1, 7, dtype=np.float64) ** (1 + step / 5.0))
            add(w, "pooling", TAG, step, pool_header, [weights[None, None, :]])

    # cross attention (Q != K)
    cross_header = metadata.make_header(
        {"source": ["s0", "s1", "s2", "s3"], "target": ["t0", "t1", "t2"]},
        [
            metadata.make_layer("encoder/block_0", "self", [2, 4, 4], query="source", key="source"),
            metadata.make_layer("decoder/cross_0", "cross", [2, 3, 4], query="target", key="source"),
        ],
    )
    with AttentionEventWriter(os.path.join(root, "cross")) as w:
        for step in (1, 2):
            enc = np.stack([_rows(np.eye(4) + step), _rows(np.ones((4, 4)))])
            cross = np.stack([_rows(np.arange(12).reshape(3, 4) + 1.0 * step),
                              _rows(np.ones((3, 4)))])
            add(w, "cross", TAG, step, cross_header, [enc, cross])

    # 30 steps: more than the default sample of 10
    tiny_header = metadata.make_header(
        {"input": ["p", "q", "r"]}, [metadata.make_layer("block_0", "self", [1, 3, 3])]
    )
    with AttentionEventWriter(os.path.join(root, "sampled")) as w:
        for step in range(30):
            add(w, "sampled", TAG, step, tiny_header, [_rows(np.eye(3) + step)[None]])

    # 8 heads x 128 x 128 for timing
    big_header = metadata.make_header(
        {"input": ["tok%d" % i for i in range(128)]},
        [metadata.make_layer("encoder/block_%d" % i, "self", [8, 128, 128]) for i in range(2)],
    )
    with AttentionEventWriter(os.path.join(root, "big")) as w:
        for step in (0, 1):
            add(w, "big", TAG, step, big_header, big_arrays(step))
    # broken data: written by hand, bypassing the writer's checks
    write_broken_run(os.path.join(root, "broken"))
    return expected


def write_broken_run(path):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    header = metadata.make_header(
        {"input": ["a", "b"]},
        [metadata.make_layer("block_%d" % i, "self", [1, 2, 2]) for i in range(2)],
    )
    blobs = [metadata.encode_header(header), b"this is not a .npy array"]
    tensor = tensor_util.make_tensor_proto(np.array(blobs, dtype=object), dtype="string", shape=[2])
    summary = summary_pb2.Summary()
    summary.value.add(tag=TAG, metadata=metadata.create_summary_metadata(), tensor=tensor)
    writer = EventFileWriter(path)
    writer.add_event(event_pb2.Event(wall_time=1000.0, step=0, summary=summary))
    writer.close()


class Logdir:
    def __init__(self, path, expected):
        self.path = path
        self.expected = expected  # run -> tag -> step -> (header, [float16 arrays])


def python_provider(path):
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer

    mux = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={metadata.PLUGIN_NAME: 0})
    mux.AddRunsFromDirectory(path)
    mux.Reload()
    return data_provider.MultiplexerDataProvider(mux, path), None


def rust_provider(path):
    from tensorboard.data import server_ingester
    from tensorboard.util import grpc_util

    try:
        binary = server_ingester.get_server_binary()
    except server_ingester.NoDataServerError as e:
        pytest.skip("no TensorBoard data server: %s" % e)
    ingester = server_ingester.SubprocessServerDataIngester(
        binary,
        path,
        reload_interval=0,
        channel_creds_type=grpc_util.ChannelCredsType.LOCAL,
        samples_per_plugin={metadata.PLUGIN_NAME: 0},
    )
    try:
        ingester.start()
    except server_ingester.NoDataServerError as e:
        pytest.skip("no TensorBoard data server: %s" % e)
    return ingester.data_provider, ingester


def wait_for_data(dp, expected_tags, timeout=60.0):
    """Polls until every run/tag shows all its steps (the Rust server loads asynchronously)."""
    from tensorboard import context

    deadline = time.monotonic() + timeout
    while True:
        try:
            seqs = dp.read_blob_sequences(
                context.RequestContext(), experiment_id="", plugin_name=metadata.PLUGIN_NAME, downsample=10**6
            )
            if all(
                [d.step for d in seqs.get(run, {}).get(tag, [])] == steps
                for run, tags in expected_tags.items()
                for tag, steps in tags.items()
            ):
                return
        except Exception:  # server still starting
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("data provider did not load the logdir in %.0f s" % timeout)
        time.sleep(0.05)


def make_app(dp, sampling_hints=None):
    from tensorboard.backend import application
    from tensorboard.plugins import base_plugin

    from tb_plugin.plugin import AttentionPlugin

    context = base_plugin.TBContext(data_provider=dp, sampling_hints=sampling_hints or {})
    plugin = AttentionPlugin(context)
    return application.TensorBoardWSGI([plugin], data_provider=dp), plugin
