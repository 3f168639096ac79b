import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Tests must never touch the user's real cache unless they ask for it: every
# test gets an empty temporary data cache ($ATTN_TF_CACHE, which subprocesses
# inherit), except the tests that are about the real data (the directories
# below, or a test marked `real_data`). A test that would need a dataset
# without asking for it fails instead of quietly downloading into ~/.cache.
REAL_DATA_DIRS = ("data", "seq2seq", "pretrained")


@pytest.fixture(autouse=True)
def _temporary_data_cache(request, tmp_path_factory, monkeypatch):
    rel = os.path.relpath(str(request.node.fspath), os.path.dirname(os.path.abspath(__file__)))
    if rel.split(os.sep)[0] in REAL_DATA_DIRS or request.node.get_closest_marker("real_data"):
        yield
        return
    monkeypatch.setenv("ATTN_TF_CACHE", str(tmp_path_factory.mktemp("attn_tf_cache")))
    yield
