"""End to end against a real TF Serving model server (REST), when `tensorflow_model_server` is on PATH.

The binary ships only in Google's apt repository and the tensorflow/serving Docker image, neither of
which this project's machines can use, so the test skips (saying why) where it is missing. It serves
the exported tiny models through models.config with server batching and the warmup file, like the
docker command in README.md, section 'Serve with TF Serving', and compares the REST answers with the SavedModel signature's.
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from export_support import MAX_LENGTH, run_fresh

SERVER = shutil.which("tensorflow_model_server")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(SERVER is None, reason="tensorflow_model_server is not on PATH (TF Serving ships it "
                       "only as a Docker image and in Google's apt repository; see README.md, section 'Serve with TF Serving')"),
]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(url, payload=None):
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.fixture(scope="module")
def server(bilstm_export, transformer_export, tmp_path_factory):
    from attn_tf.export import layout

    tmp = tmp_path_factory.mktemp("server")
    base = bilstm_export.base_dir
    config = tmp / "models.config"  # the exported one, with local base paths instead of /models
    config.write_text(layout.models_config_text(layout.exported_models(base), root=base))
    grpc_port, rest_port = _free_port(), _free_port()
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen([
        SERVER, "--port=%d" % grpc_port, "--rest_api_port=%d" % rest_port, "--rest_api_num_threads=2",
        "--model_config_file=%s" % config, "--enable_batching",
        "--batching_parameters_file=%s" % os.path.join(base, "batching_parameters.txt"),
    ], stdout=log, stderr=subprocess.STDOUT)
    url = "http://127.0.0.1:%d/v1/models/" % rest_port
    try:
        deadline = time.time() + 120
        names = [bilstm_export.name, transformer_export.name]
        while True:
            assert proc.poll() is None, (tmp / "server.log").read_text()[-4000:]
            try:
                states = [_http(url + n)[1]["model_version_status"][0]["state"] for n in names]
                if all(s == "AVAILABLE" for s in states):
                    break
            except (OSError, KeyError, IndexError, ValueError):
                pass
            assert time.time() < deadline, (tmp / "server.log").read_text()[-4000:]
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _signature_outputs(export_dir, texts, tmp):
    texts_json = tmp / "texts.json"
    texts_json.write_text(json.dumps([base64.b64encode(t if isinstance(t, bytes) else t.encode()).decode()
                                      for t in texts]))
    run_fresh("fresh_serving_check.py", export_dir, texts_json, tmp / "out.npz")
    out = dict(np.load(tmp / "out.npz", allow_pickle=True))
    return {k.split("/", 1)[1]: v for k, v in out.items() if k.startswith("serving_default/")}


def test_rest_metadata(server, bilstm_export):
    status, meta = _http(server + bilstm_export.name + "/metadata")
    assert status == 200
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert set(sig["inputs"]) == {"text"}
    assert set(sig["outputs"]) == {"probabilities", "label", "tokens", "token_count", "explanation"}
    signatures = meta["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "predict", "attention"} <= set(signatures)


def test_rest_instances_and_inputs_match_signature(server, exported, tmp_path):
    texts = ["The movie was great fun.", "", " ".join(["good"] * 40)]
    ref = _signature_outputs(exported.path, texts, tmp_path)
    status, rows = _http(server + exported.name + ":predict", {"instances": texts})
    assert status == 200, rows
    rows = rows["predictions"]
    assert len(rows) == 3
    for i, row in enumerate(rows):
        np.testing.assert_allclose(row["probabilities"], ref["probabilities"][i], atol=1e-5)
        np.testing.assert_allclose(row["explanation"], ref["explanation"][i], atol=1e-5)
        assert row["label"] == ref["label"][i].decode()
        assert row["token_count"] == int(ref["token_count"][i])
        assert row["tokens"] == [t.decode() for t in ref["tokens"][i]]
    assert rows[1]["label"] == "" and rows[1]["token_count"] == 0
    assert rows[2]["token_count"] == 40 > MAX_LENGTH

    status, cols = _http(server + exported.name + ":predict", {"inputs": {"text": texts}})
    assert status == 200, cols
    np.testing.assert_allclose(cols["outputs"]["probabilities"], ref["probabilities"], atol=1e-5)
    assert cols["outputs"]["label"] == [l.decode() for l in ref["label"]]


def test_rest_invalid_utf8_as_b64(server, bilstm_export):
    raw = b"bad \xff\xfe movie"
    status, body = _http(server + bilstm_export.name + ":predict",
                         {"instances": [{"text": {"b64": base64.b64encode(raw).decode()}}]})
    assert status == 200, body
    row = body["predictions"][0]
    assert row["token_count"] == 3 and "\ufffd" in row["tokens"][1]


def test_rest_predict_and_attention_signatures(server, transformer_export):
    url = server + transformer_export.name + ":predict"
    texts = ["The movie was great fun.", ""]
    status, body = _http(url, {"signature_name": "predict", "instances": texts})
    assert status == 200, body
    assert set(body["predictions"][0]) == {"probabilities", "label", "token_count"}
    status, body = _http(url, {"signature_name": "attention",
                               "inputs": {"text": texts, "layers": [1], "heads": []}})
    assert status == 200, body
    att = np.array(body["outputs"]["attention"])
    assert att.shape == (2, 1, 2, MAX_LENGTH, MAX_LENGTH)
    status, body = _http(url, {"signature_name": "attention",
                               "inputs": {"text": texts, "layers": [7], "heads": []}})
    assert status == 400 and "`layers` indexes must be in [0, 2)" in body.get("error", ""), body
