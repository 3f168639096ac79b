"""The compact uint8 storage of logged attention next to the exact float16 default:
size on disk, the heatmap error bound, the format version, and the plugin
reading both (Python reader and Rust data server)."""

import glob
import io
import json
import os
import zipfile

import numpy as np
import pytest
from werkzeug.test import Client

from tb_plugin import metadata, summary

from attention_logdirs import make_app, python_provider, rust_provider, wait_for_data

TAG = "attention/probe_000"
BASE = "/data/plugin/attention"
H, T, L = 4, 96, 2
STEPS = (0, 1, 2)


def softmax_layers(seed, layers=L, heads=H, tokens=T, sharpness=2.0):
    """Softmax attention with a spread of peakiness, like trained heads."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(layers):
        logits = rng.normal(size=(heads, tokens, tokens)) * sharpness * rng.uniform(0.3, 1.5, size=(heads, 1, 1))
        a = np.exp(logits - logits.max(-1, keepdims=True))
        out.append(a / a.sum(-1, keepdims=True))
    return out


def header_for(tokens=T, layers=L, heads=H, **kw):
    return metadata.make_header(
        {"input": ["w%d" % i for i in range(tokens)]},
        [metadata.make_layer("encoder/block_%d" % i, "self", [heads, tokens, tokens]) for i in range(layers)],
        **kw,
    )


def colour_index(m, vmax):
    """What the tab draws: 256 colours over 0 .. vmax (matrix.js matrixImage)."""
    t = np.clip(np.asarray(m, np.float64) / (vmax or 1.0), 0.0, 1.0)
    return np.rint(t * 255).astype(int)


# -- encoding -------------------------------------------------------------------


def test_float16_stays_default_and_exact():
    arr = softmax_layers(0)[0]
    blob = metadata.encode_array(arr)
    assert blob[:6] == b"\x93NUMPY"
    back = metadata.decode_array(blob)
    assert back.dtype == np.float16
    np.testing.assert_array_equal(back, arr.astype(np.float16))
    header = header_for()
    assert header["dtype"] == "float16" and header["version"] == 1
    md = metadata.create_summary_metadata()
    assert json.loads(md.plugin_data.content) == {"version": 1}


@pytest.mark.parametrize("sharpness", [0.5, 2.0, 6.0])
def test_uint8_within_one_colour_of_float16_per_matrix(sharpness):
    arr = softmax_layers(1, layers=1, sharpness=sharpness)[0]
    f16 = arr.astype(np.float16).astype(np.float64)
    u8 = metadata.decode_array(metadata.encode_array(arr, "uint8")).astype(np.float64)
    assert u8.shape == arr.shape
    for h in range(arr.shape[0]):
        vmax = f16[h].max()
        # the weights: within 1/255 of the matrix max (the bound is 1/510)
        assert np.abs(u8[h] - f16[h]).max() <= vmax / 255.0
        assert np.abs(u8[h] - f16[h]).max() <= vmax / 510.0 * 1.0001
        # the heatmap: each cell's colour moves by at most one of 256 steps
        diff = np.abs(colour_index(u8[h], u8[h].max()) - colour_index(f16[h], vmax))
        assert diff.max() <= 1, diff.max()


def test_uint8_edge_cases():
    zeros = np.zeros((2, 3, 3))
    np.testing.assert_array_equal(metadata.decode_array(metadata.encode_array(zeros, "uint8")), zeros)
    const = np.full((1, 2, 5), 0.2)
    np.testing.assert_allclose(metadata.decode_array(metadata.encode_array(const, "uint8")), np.float16(0.2), rtol=1e-6)
    signed = np.array([[[-1.0, 0.0, 3.0]]])  # not attention, but the affine range covers it
    back = metadata.decode_array(metadata.encode_array(signed, "uint8"))
    assert np.abs(back - signed).max() <= 4.0 / 510 + 1e-6
    empty = np.zeros((2, 0, 0))
    assert metadata.decode_array(metadata.encode_array(empty, "uint8")).shape == (2, 0, 0)
    with pytest.raises(ValueError, match="finite"):
        metadata.encode_array(np.array([[[np.nan, 1.0]]]), "uint8")
    with pytest.raises(ValueError, match="unknown attention storage 'int4'"):
        metadata.encode_array(zeros, "int4")


def test_corrupt_uint8_blobs_are_value_errors():
    good = metadata.encode_array(softmax_layers(2, layers=1, tokens=8)[0], "uint8")
    with pytest.raises(ValueError):
        metadata.decode_array(good[: len(good) // 2])  # truncated zip
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        part = io.BytesIO()
        np.save(part, np.zeros((1, 2, 2), np.uint8))
        z.writestr("q.npy", part.getvalue())
    with pytest.raises(ValueError, match="lacks lo.npy, step.npy"):
        metadata.decode_array(buf.getvalue())


def test_format_version_and_metadata_say_which():
    header = header_for(storage="uint8")
    assert header["dtype"] == "uint8" and header["version"] == 2
    md = metadata.create_summary_metadata(storage="uint8")
    content = json.loads(md.plugin_data.content)
    assert content == {"version": 2, "storage": "uint8"}
    assert metadata.parse_plugin_metadata(md.plugin_data.content)["storage"] == "uint8"
    with pytest.raises(ValueError, match="upgrade attn-tf"):
        metadata.parse_plugin_metadata(b'{"version": 2, "storage": "int4"}')
    with pytest.raises(ValueError, match="upgrade attn-tf"):
        metadata.parse_plugin_metadata(b'{"version": 3}')
    bad = dict(header, dtype="bfloat16")
    with pytest.raises(ValueError, match="dtype"):
        metadata.validate_header(bad)
    with pytest.raises(ValueError, match="unknown attention storage"):
        header_for(storage="float8")
    # a float16 header re-stamped by the writer
    stamped = summary.with_storage(header_for(), "uint8")
    assert stamped["dtype"] == "uint8" and stamped["version"] == 2


# -- on disk and through the plugin ------------------------------------------------


@pytest.fixture(scope="module")
def storage_logdir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("storage_logdir"))
    written = {}
    for storage in ("float16", "uint8"):
        with summary.AttentionEventWriter(os.path.join(root, storage), storage=storage) as w:
            for step in STEPS:
                arrays = softmax_layers(10 + step)
                w.add(header_for(), arrays, step=step, tag=TAG, wall_time=1000.0 + step)
                written[step] = arrays
    return root, written


def run_bytes(root, run):
    return sum(os.path.getsize(p) for p in glob.glob(os.path.join(root, run, "events.out.tfevents.*")))


def test_uint8_event_file_at_most_one_byte_per_weight(storage_logdir):
    root, _ = storage_logdir
    weights = len(STEPS) * L * H * T * T
    f16 = run_bytes(root, "float16") / weights
    u8 = run_bytes(root, "uint8") / weights
    assert 2.0 <= f16 < 2.1  # the default: float16 plus headers
    assert u8 <= 1.0, u8


@pytest.fixture(scope="module", params=["python", "rust"])
def storage_client(request, storage_logdir):
    root, _ = storage_logdir
    if request.param == "python":
        dp, ingester = python_provider(root)
    else:
        dp, ingester = rust_provider(root)
    wait_for_data(dp, {"float16": {TAG: list(STEPS)}, "uint8": {TAG: list(STEPS)}})
    yield Client(make_app(dp, {metadata.PLUGIN_NAME: 0})[0])
    handle = getattr(ingester, "_stdin_handle", None) if ingester is not None else None
    if handle is not None:
        handle.close()


def layer_route(client, run, step, layer):
    r = client.get("%s/layer?run=%s&tag=%s&step=%d&layer=%d" % (BASE, run, TAG, step, layer))
    assert r.status_code == 200, r.get_data(as_text=True)
    shape = [int(s) for s in r.headers["X-Attention-Shape"].split(",")]
    return np.frombuffer(r.get_data(), dtype="<f4").reshape(shape)


def test_plugin_reads_both_storages(storage_client, storage_logdir):
    _, written = storage_logdir
    tags = json.loads(storage_client.get(BASE + "/tags").get_data(as_text=True))
    assert set(tags) == {"float16", "uint8"}
    header = json.loads(storage_client.get("%s/header?run=uint8&tag=%s&step=1" % (BASE, TAG)).get_data(as_text=True))
    assert header["dtype"] == "uint8" and header["version"] == 2
    for step in STEPS:
        for layer in range(L):
            exact = layer_route(storage_client, "float16", step, layer)
            np.testing.assert_array_equal(exact, written[step][layer].astype(np.float16).astype(np.float32))
            compact = layer_route(storage_client, "uint8", step, layer)
            vmax = exact.max(axis=(1, 2))
            assert (np.abs(compact - exact).max(axis=(1, 2)) <= vmax / 255.0).all()
    # derived views read the compact data too
    for route in ("rollout", "stats"):
        params = "run=uint8&tag=%s&step=2" % TAG if route == "rollout" else "run=uint8&tag=%s" % TAG
        r = storage_client.get("%s/%s?%s" % (BASE, route, params))
        assert r.status_code == 200, (route, r.get_data(as_text=True)[:300])
