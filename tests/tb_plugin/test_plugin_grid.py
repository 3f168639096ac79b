"""What the tab fetches at scale: `/grid` thumbnails pooled on the server and
`/layer?head=&dtype=float16` for the enlarged matrix, on both data providers."""

import numpy as np
import pytest

from tb_plugin import thumbnails

from attention_logdirs import TAG

BASE = "/data/plugin/attention"


def grid(client, run, step, layer, **params):
    from urllib.parse import urlencode

    r = client.get("%s/grid?%s" % (BASE, urlencode(dict(run=run, tag=TAG, step=step, layer=layer, **params))))
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Content-Type"] == "application/octet-stream"
    shape = [int(n) for n in r.headers["X-Attention-Shape"].split(",")]
    maxima = np.array([float(m) for m in r.headers["X-Attention-Max"].split(",")])
    source = [int(n) for n in r.headers["X-Attention-Source-Shape"].split(",")]
    return np.frombuffer(r.get_data(), dtype=np.uint8).reshape(shape), maxima, source


def layer(client, run, step, index, **params):
    from urllib.parse import urlencode

    r = client.get("%s/layer?%s" % (BASE, urlencode(dict(run=run, tag=TAG, step=step, layer=index, **params))))
    assert r.status_code == 200, r.get_data(as_text=True)
    shape = [int(n) for n in r.headers["X-Attention-Shape"].split(",")]
    dtype = {"float16": "<f2", "float32": "<f4"}[r.headers["X-Attention-Dtype"]]
    return np.frombuffer(r.get_data(), dtype=dtype).reshape(shape)


def test_block_max_uneven_bins():
    a = np.arange(5 * 7, dtype=np.float32).reshape(1, 5, 7)
    got = thumbnails.block_max(a, 3)
    # rows binned [0,1] [2,3] [4]... by linspace(0, 5, 4) -> starts 0, 1, 3
    rows = [slice(0, 1), slice(1, 3), slice(3, 5)]
    cols = [slice(0, 2), slice(2, 4), slice(4, 7)]
    want = np.array([[a[0, r, c].max() for c in cols] for r in rows])
    np.testing.assert_array_equal(got[0], want)
    assert thumbnails.block_max(a, 64).shape == (1, 5, 7)  # small matrices are not pooled


def test_thumbnails_keep_a_single_peak_visible():
    a = np.zeros((1, 512, 512), np.float32)
    a[0, 300, 17] = 0.9
    q, maxima = thumbnails.layer_thumbnails(a, 64, "none")
    assert q.shape == (1, 64, 64) and maxima[0] == pytest.approx(0.9)
    assert q[0, 300 * 64 // 512, 17 * 64 // 512] == 255 and q.sum() == 255


def test_grid_route_pools_every_head_and_the_aggregate(client, logdir):
    header, arrays = logdir.expected["big"][TAG][1]
    for index in (0, 1):
        full = arrays[index].astype(np.float32)  # [8, 128, 128], as stored
        q, maxima, source = grid(client, "big", 1, index, size=32)
        assert source == [8, 128, 128] and q.shape == (9, 32, 32)
        mats = np.concatenate([full, full.mean(axis=0, keepdims=True)])
        np.testing.assert_allclose(maxima, mats.reshape(9, -1).max(axis=1), rtol=1e-6)
        want = np.rint(mats.reshape(9, 32, 4, 32, 4).max(axis=(2, 4)) / maxima[:, None, None] * 255)
        assert np.abs(q.astype(int) - want).max() <= 1
    q, maxima, _ = grid(client, "big", 1, 0, size=16, agg="max")
    np.testing.assert_allclose(maxima[-1], arrays[0].astype(np.float32).max(), rtol=1e-6)
    q, _, _ = grid(client, "big", 1, 0, size=16, agg="none")
    assert q.shape == (8, 16, 16)


def test_grid_of_small_and_rectangular_layers(client, logdir):
    _, arrays = logdir.expected["transformer"][TAG][10]
    q, maxima, _ = grid(client, "transformer", 10, 1)  # 5 tokens < 64: not pooled
    full = arrays[1].astype(np.float32)
    np.testing.assert_array_equal(q[:2], np.rint(full / full.reshape(2, -1).max(1)[:, None, None] * 255))
    q, _, source = grid(client, "cross", 2, 1, size=4)  # cross [2, 3, 4]: as is
    assert source == [2, 3, 4] and q.shape == (3, 3, 4)


def test_layer_one_head_in_float16(client, logdir):
    _, arrays = logdir.expected["big"][TAG][0]
    one = layer(client, "big", 0, 1, head=3, dtype="float16")
    assert one.shape == (1, 128, 128)
    np.testing.assert_array_equal(one[0], arrays[1][3])
    mean = layer(client, "big", 0, 1, head="mean")
    np.testing.assert_allclose(mean[0], arrays[1].astype(np.float32).mean(axis=0), rtol=1e-6)
    whole = layer(client, "big", 0, 0, dtype="float16")
    np.testing.assert_array_equal(whole, arrays[0])


@pytest.mark.parametrize("url,param", [
    ("/grid?run=big&tag=%s&step=0&layer=0&size=2" % TAG, "size"),
    ("/grid?run=big&tag=%s&step=0&layer=0&size=9999" % TAG, "size"),
    ("/grid?run=big&tag=%s&step=0&layer=0&agg=median" % TAG, "agg"),
    ("/grid?run=big&tag=%s&step=0&layer=5" % TAG, "layer"),
    ("/grid?run=big&tag=%s&step=0" % TAG, "layer"),
    ("/layer?run=big&tag=%s&step=0&layer=0&head=8" % TAG, "head"),
    ("/layer?run=big&tag=%s&step=0&layer=0&head=first" % TAG, "head"),
    ("/layer?run=big&tag=%s&step=0&layer=0&dtype=float64" % TAG, "dtype"),
])
def test_bad_grid_and_head_params_are_400(client, url, param):
    r = client.get(BASE + url)
    assert r.status_code == 400, (url, r.status_code)
    assert "'%s'" % param in r.get_data(as_text=True)


def test_grid_unknown_step_is_404(client):
    r = client.get(BASE + "/grid?run=big&tag=%s&step=7&layer=0" % TAG)
    assert r.status_code == 404


def test_grid_relative_entropy_header(client, logdir):
    r = client.get(BASE + "/grid?run=transformer&tag=%s&step=0&layer=0" % TAG)
    assert "X-Attention-Entropy" not in r.headers  # only when asked for
    r = client.get(BASE + "/grid?run=transformer&tag=%s&step=0&layer=0&entropy=1" % TAG)
    ent = [float(e) for e in r.headers["X-Attention-Entropy"].split(",")]
    _, arrays = logdir.expected["transformer"][TAG][0]
    a = arrays[0].astype(np.float64)
    p = a / a.sum(-1, keepdims=True)
    plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    want = (-plogp.sum(-1) / np.log(5)).mean(-1)
    np.testing.assert_allclose(ent[:2], want, rtol=1e-5)
    uniform = thumbnails.relative_entropy(np.ones((1, 4, 4)), "causal")
    assert uniform[0] == pytest.approx(1.0)  # row 0 (one key) skipped
    assert np.isnan(thumbnails.relative_entropy(np.zeros((1, 3, 3)), "self")[0])


def test_as_float32_is_the_cast_for_every_half():
    every = np.arange(65536, dtype=np.uint16).view(np.float16).reshape(16, 64, 64)
    got = thumbnails.as_float32(every)
    want = every.astype(np.float32)
    assert got.dtype == np.float32 and got.shape == every.shape
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    assert same.all()
    assert thumbnails.as_float32(np.ones((2, 2), np.float64)).dtype == np.float32
