"""Typed texts (POST /live, /live_rollout, /live_flow, GET /live_runs) through TensorBoard's WSGI app,
against both data providers, on tiny exported runs (test_plugin_live_support.py)."""

import base64
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from werkzeug.test import Client

from tb_plugin import live

from test_plugin_live_support import CLASS_NAMES, snapshot, write_live_logdir

BASE = "/data/plugin/attention"
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return write_live_logdir(str(tmp_path_factory.mktemp("live")), layers=2, seq2seq=True)


def _make_app(dp, logdir):
    from tensorboard.backend import application
    from tensorboard.plugins import base_plugin

    from tb_plugin.plugin import AttentionPlugin

    context = base_plugin.TBContext(data_provider=dp, sampling_hints={"attention": 0}, logdir=logdir)
    plugin = AttentionPlugin(context)
    return application.TensorBoardWSGI([plugin], data_provider=dp), plugin


def _serve(kind, runs):
    """(WSGI app, plugin, ingester) once the provider lists every run of the logdir."""
    from tensorboard import context

    from attention_logdirs import python_provider, rust_provider

    dp, ingester = (python_provider if kind == "python" else rust_provider)(runs["logdir"])
    wanted = {"bilstm-tiny/attention", "transformer-tiny/attention", "seq2seq-tiny/attention", "unexported/attention"}
    deadline = time.monotonic() + 60
    while True:
        try:
            names = {r.run_name for r in dp.list_runs(context.RequestContext(), experiment_id="")}
        except Exception:  # noqa: BLE001 - the data server is still starting
            names = set()
        if names >= wanted:
            break
        assert time.monotonic() < deadline, "provider never listed the runs: %s" % names
        time.sleep(0.1)
    app, plugin = _make_app(dp, runs["logdir"])
    return app, plugin, ingester


def _stop(ingester):
    handle = getattr(ingester, "_stdin_handle", None) if ingester is not None else None
    if handle is not None:
        handle.close()  # `--die-after-stdin`: the data server exits


@pytest.fixture(scope="module", params=["python", "rust"])
def both(request, runs):
    """A client for each data provider: run listing and resolution depend on it, inference does not."""
    app, _, ingester = _serve(request.param, runs)
    yield Client(app)
    _stop(ingester)


@pytest.fixture(scope="module")
def served(runs):
    """(WSGI app, plugin) on the Python multiplexer, for the tests of inference itself."""
    app, plugin, ingester = _serve("python", runs)
    yield app, plugin
    _stop(ingester)


@pytest.fixture
def client(served):
    return Client(served[0])


def post(client, route, body, status=200, content_type="application/json"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    r = client.post(BASE + "/" + route, data=data, content_type=content_type)
    text = r.get_data(as_text=True)
    assert r.status_code == status, (route, r.status_code, text[:600])
    return json.loads(text) if status == 200 else text


def reference(path, texts):
    """The SavedModel's own outputs, called directly (what the route must pass on)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    model = tf.saved_model.load(path)
    sig = model.signatures["attention"] if "attention" in model.signatures else model.signatures["serving_default"]
    kwargs = {k: tf.zeros([0], tf.int32) for k in sig.structured_input_signature[1] if k != "text"}
    return {k: v.numpy() for k, v in sig(text=tf.constant(texts), **kwargs).items()}


def export_path(run_dir):
    with open(os.path.join(run_dir, "results.json")) as f:
        recorded = json.load(f)["export"]["path"]
    return recorded if os.path.isabs(recorded) else os.path.join(os.path.dirname(os.path.dirname(run_dir)), recorded)


# -- which runs -------------------------------------------------------------------


def test_live_runs_lists_exported_runs_and_says_why_others_are_missing(both, runs):
    r = both.get(BASE + "/live_runs")
    assert r.status_code == 200
    answer = json.loads(r.get_data(as_text=True))
    by_run = {e["run"]: e for e in answer["runs"]}
    assert set(by_run) == {"bilstm-tiny/attention", "transformer-tiny/attention", "seq2seq-tiny/attention"}
    # The relative export path (train.py's) was found above the run directory; the absolute one as is.
    assert by_run["bilstm-tiny/attention"]["export_path"] == os.path.realpath(export_path(runs["bilstm"]))
    assert by_run["transformer-tiny/attention"]["run_dir"] == os.path.realpath(runs["transformer"])
    (missing,) = answer["without_export"]
    assert missing["run"] == "unexported/attention"
    assert "records no export" in missing["reason"] and "python -m attn_tf.export" in missing["reason"]
    assert answer["limits"]["max_text_chars"] == live.MAX_TEXT_CHARS
    assert answer["logdir"] == os.path.realpath(runs["logdir"])


def test_run_directory_never_leaves_the_logdir(tmp_path):
    logdir = tmp_path / "logs"
    (logdir / "a" / "attention").mkdir(parents=True)
    (logdir / "a" / "config.json").write_text("{}")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "config.json").write_text("{}")
    os.symlink(tmp_path / "outside", logdir / "link")
    assert live.run_directory(str(logdir), "a/attention") == os.path.realpath(logdir / "a")
    assert live.run_directory(str(logdir), "../outside") is None
    assert live.run_directory(str(logdir), "link") is None
    assert live.run_directory(str(logdir), ".") is None  # no run file at the root


# -- inference ------------------------------------------------------------------------


def test_bilstm_text_gives_its_tokens_prediction_and_pooling_weights(both, runs):
    texts = ["The film was GREAT fun", "bad acting and a boring plot"]
    answer = post(both, "live", {"run": "bilstm-tiny/attention", "texts": texts})
    ref = reference(export_path(runs["bilstm"]), texts)
    assert answer["task"] == "classifier" and answer["signature"] == "attention"
    assert len(answer["results"]) == 2
    for i, (text, res) in enumerate(zip(texts, answer["results"])):
        assert res["tokens"]["input"] == text.lower().split()
        assert res["text"] == text and res["step"] is None and res["label"] is None
        (layer,) = res["layers"]
        n = len(text.split())
        assert layer == {"name": "attention_pooling", "kind": "pooling", "shape": [1, 1, n], "query": None,
                         "key": "input"}
        w = np.array(res["weights"][0]["data"])
        assert w.shape == (1, 1, n)
        np.testing.assert_allclose(w[0, 0], ref["attention"][i][:n], atol=2e-6)
        np.testing.assert_allclose(res["probabilities"], ref["probabilities"][i], atol=1e-6)
        assert res["class_names"] == CLASS_NAMES
        assert res["prediction"] == CLASS_NAMES[int(np.argmax(ref["probabilities"][i]))]


def test_transformer_text_gives_every_block_and_base64_matches_json(client, runs):
    texts = ["a movie not boring"]
    plain = post(client, "live", {"run": "transformer-tiny/attention", "texts": texts})
    packed = post(client, "live", {"run": "transformer-tiny/attention", "texts": texts, "encoding": "base64"})
    ref = reference(export_path(runs["transformer"]), texts)
    res = plain["results"][0]
    assert [l["name"] for l in res["layers"]] == ["encoder/block_0", "encoder/block_1"]
    assert all(l["kind"] == "self" and l["shape"] == [2, 4, 4] for l in res["layers"])
    for b, (wj, wb) in enumerate(zip(res["weights"], packed["results"][0]["weights"])):
        dense = np.array(wj["data"])
        np.testing.assert_allclose(dense.sum(-1), 1.0, atol=1e-5)  # rows of real tokens sum to 1
        np.testing.assert_allclose(dense, ref["attention"][0, b, :, :4, :4], atol=2e-6)
        raw = np.frombuffer(base64.b64decode(wb["base64"]), "<f4").reshape(wb["shape"])
        np.testing.assert_allclose(raw, dense, atol=1e-6)
    # A repeated text is answered from the result cache, with the same numbers.
    again = post(client, "live", {"run": "transformer-tiny/attention", "texts": texts})
    assert again["results"][0]["weights"] == res["weights"] and again["model_loaded_now"] is False


def test_truncation_is_reported(client):
    text = " ".join(["film"] * 30)
    res = post(client, "live", {"run": "bilstm-tiny/attention", "texts": [text]})["results"][0]
    assert len(res["tokens"]["input"]) == 16
    assert res["extra"]["truncated"] is True and res["extra"]["token_count"] == 30


def test_seq2seq_text_gives_cross_attention_and_decoded_output(client):
    res = post(client, "live", {"run": "seq2seq-tiny/attention", "texts": ["a b c"]})
    assert res["task"] == "seq2seq" and res["signature"] == "translate"
    item = res["results"][0]
    assert item["tokens"]["source"] == ["a", "b", "c"]
    (layer,) = item["layers"]
    t = len(item["tokens"]["target"])
    assert layer["kind"] == "cross" and layer["shape"] == [1, t, 3] and t >= 1
    assert isinstance(item["prediction"], str)
    w = np.array(item["weights"][0]["data"])
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)


def test_compare_aligns_tokens_with_difflib(client):
    answer = post(client, "live", {"run": "bilstm-tiny/attention", "compare": True,
                                   "texts": ["the film was great", "the film was not great at all"]})
    pairs = answer["alignment"]["pairs"]["input"]
    assert pairs == [[0, 0], [1, 1], [2, 2], [3, 4]]
    assert "difflib" in answer["alignment"]["method"]
    assert live.align_tokens(["the", "a", "the"], ["a", "the"]) == [[1, 0], [2, 1]]


def test_rollout_and_flow_of_a_typed_text(client):
    body = {"run": "transformer-tiny/attention", "text": "the plot was fun"}
    r = post(client, "live_rollout", body)
    assert r["tokens"] == ["the", "plot", "was", "fun"]
    np.testing.assert_allclose(np.array(r["rollout"]).sum(-1), 1.0, atol=1e-6)
    f = post(client, "live_flow", dict(body, position=2, head_fusion="max"))
    assert len(f["flow"]) == 4 and f["position"] == 2
    msg = post(client, "live_rollout", {"run": "bilstm-tiny/attention", "text": "the plot"}, status=400)
    assert "self or causal" in msg
    msg = post(client, "live_flow", dict(body, position=9), status=400)
    assert "'position'" in msg or '"position"' in msg


def test_nothing_is_written_to_the_logdir(client, runs):
    before = snapshot(runs["logdir"])
    post(client, "live", {"run": "transformer-tiny/attention", "texts": ["nothing written here", "or here"]})
    post(client, "live_rollout", {"run": "transformer-tiny/attention", "text": "nothing written"})
    assert snapshot(runs["logdir"]) == before


# -- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize("body,status,needle", [
    ({"run": "bilstm-tiny/attention", "texts": ["x" * (live.MAX_TEXT_CHARS + 1)]}, 413, "MAX_TEXT_CHARS"),
    ({"run": "bilstm-tiny/attention", "texts": ["a"] * (live.MAX_TEXTS + 1)}, 413, "MAX_TEXTS"),
    ({"run": "bilstm-tiny/attention", "texts": ["   "]}, 400, "texts[0] is empty"),
    ({"run": "bilstm-tiny/attention", "texts": []}, 400, "non-empty list"),
    ({"run": "bilstm-tiny/attention", "texts": [3]}, 400, "must be a string"),
    ({"texts": ["a"]}, 400, 'missing required field "run"'),
    ({"run": "bilstm-tiny/attention", "texts": ["a"], "encoding": "xml"}, 400, '"encoding"'),
    ({"run": "bilstm-tiny/attention", "texts": ["a"], "compare": True}, 400, "exactly 2 texts"),
    ({"run": "nope", "texts": ["a"]}, 404, "no run 'nope'"),
    ({"run": "bilstm-tiny", "texts": ["a"]}, 404, "no run 'bilstm-tiny'"),  # a directory, not a listed run
    ({"run": "../../etc", "texts": ["a"]}, 404, "no run"),
    ({"run": "unexported/attention", "texts": ["a"]}, 404, "has no exported model"),
], ids=lambda v: v if isinstance(v, (int, str)) else None)
def test_bad_requests_are_4xx_naming_the_problem(client, body, status, needle):
    assert needle in post(client, "live", body, status=status)


def test_bad_transport_is_refused(client):
    assert "Content-Type: application/json" in post(client, "live", "{}", status=415, content_type="text/plain")
    assert "not UTF-8 JSON" in post(client, "live", "{nope", status=400)
    big = json.dumps({"run": "x", "texts": ["a" * (live.MAX_BODY_BYTES + 10)]})
    assert "MAX_BODY_BYTES" in post(client, "live", big, status=413)
    r = client.get(BASE + "/live")
    assert r.status_code == 405 and "POST" in r.get_data(as_text=True)


def test_step_beyond_int64_says_out_of_range(both):
    r = both.get(BASE + "/header?run=bilstm-tiny/attention&tag=attention/probe_000&step=%d" % 2**70)
    text = r.get_data(as_text=True)
    assert r.status_code == 400 and "out of range" in text and "must be an integer" not in text, text


# -- concurrency, model cache, lazy TensorFlow ------------------------------------------------


class _FakeModel:
    """Stands in for a SavedModel: a pooling answer; its load waits for `gate`."""

    gate = threading.Event()
    signature, task = "serving_default", "classifier"
    load_seconds = warmup_seconds = 0.0

    def __init__(self, path):
        self.path = path
        _FakeModel.gate.wait(30)

    def infer(self, texts, class_names=None):
        from tb_plugin import metadata

        out = []
        for t in texts:
            toks = t.split()
            layer = metadata.make_layer("attention_pooling", "pooling", (1, 1, len(toks)), query=None)
            header = metadata.make_header({"input": toks}, [layer], text=t, prediction="pos",
                                          probabilities=[0.5, 0.5], class_names=CLASS_NAMES)
            out.append((header, [np.full((1, 1, len(toks)), 1.0 / len(toks), np.float32)]))
        return out


def test_concurrent_inferences_over_the_limit_get_429(served):
    app, plugin = served
    saved = plugin._live.models
    plugin._live.models = live.ModelCache(loader=_FakeModel)
    _FakeModel.gate.clear()
    statuses = []
    try:
        def one(text):
            r = Client(app).post(BASE + "/live", data=json.dumps({"run": "bilstm-tiny/attention", "texts": [text]}),
                                 content_type="application/json")
            statuses.append(r.status_code)
            return r

        threads = [threading.Thread(target=one, args=("busy text %d" % i,)) for i in range(live.MAX_CONCURRENT)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while plugin._live._slots._value > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        r = one("one too many")
        assert r.status_code == 429, r.get_data(as_text=True)
        assert "MAX_CONCURRENT" in r.get_data(as_text=True) and r.headers["Retry-After"] == "1"
    finally:
        _FakeModel.gate.set()
        for t in threads:
            t.join(30)
        plugin._live.models = saved
    assert sorted(statuses) == [200] * live.MAX_CONCURRENT + [429]


def test_model_cache_holds_at_most_max_models(tmp_path):
    _FakeModel.gate.set()
    paths = []
    for i in range(3):
        p = tmp_path / str(i)
        p.mkdir()
        (p / "saved_model.pb").write_bytes(b"x")
        paths.append(str(p))
    cache = live.ModelCache(max_models=2, loader=_FakeModel)
    for p in paths + paths[-1:]:
        cache.get(p)
    assert len(cache) == 2 and cache.loads == 3
    _, loaded = cache.get(paths[0])  # dropped as the least recently used: loaded again
    assert loaded and cache.loads == 4


LAZY = r"""
import json, sys
import tb_plugin.plugin
imported = "tensorflow" in sys.modules
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from werkzeug.test import Client
from tensorboard.backend import application
mux = plugin_event_multiplexer.EventMultiplexer()
mux.AddRunsFromDirectory(sys.argv[1]); mux.Reload()  # (TensorBoard's own reader may import TensorFlow)
dp = data_provider.MultiplexerDataProvider(mux, sys.argv[1])
plugin = tb_plugin.plugin.AttentionPlugin(base_plugin.TBContext(data_provider=dp, logdir=sys.argv[1]))
c = Client(application.TensorBoardWSGI([plugin], data_provider=dp))
runs = json.loads(c.get("/data/plugin/attention/live_runs").get_data(as_text=True))["runs"]
before = ("tensorflow_text" in sys.modules, len(plugin._live.models))
r = c.post("/data/plugin/attention/live", data=json.dumps({"run": "bilstm-tiny/attention", "texts": ["great"]}),
           content_type="application/json")
print(json.dumps({"runs": len(runs), "tf_at_import": imported, "before": before, "status": r.status_code,
                  "after": ["tensorflow_text" in sys.modules, len(plugin._live.models)]}))
"""


def test_tensorflow_is_imported_only_for_the_first_inference(runs):
    out = subprocess.run([sys.executable, "-c", LAZY, runs["logdir"]], capture_output=True, text=True, cwd=ROOT,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES=""), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"runs": 3, "tf_at_import": False, "before": [False, 0], "status": 200,
                      "after": [True, 1]}, result
