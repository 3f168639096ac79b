"""Download cache: hash checks, reuse, pip failures (no network: pip is faked)."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from attn_tf.data import DataError, cache_dir
from attn_tf.data import cache

PKG, VER = "somePackage", "1.2.3"
GOOD = b"the pinned artifact bytes"
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()
BAD = b"something else entirely"
BAD_SHA = hashlib.sha256(BAD).hexdigest()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTN_TF_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


class FakePip:
    """Stands in for subprocess.run: records calls, 'downloads' given bytes into -d DIR."""

    def __init__(self, content=None, returncode=0, stderr=""):
        self.content, self.returncode, self.stderr = content, returncode, stderr
        self.calls = []

    def __call__(self, cmd, **kw):
        self.calls.append(cmd)
        if self.returncode == 0 and self.content is not None:
            dest = Path(cmd[cmd.index("-d") + 1])
            (dest / f"{PKG}-{VER}.tar.gz").write_bytes(self.content)
        return subprocess.CompletedProcess(cmd, self.returncode, stdout="", stderr=self.stderr)


def no_pip(*a, **kw):
    raise AssertionError("pip must not be called")


def test_cache_dir_env_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTN_TF_CACHE", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x"
    monkeypatch.delenv("ATTN_TF_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "attn_tf"
    monkeypatch.setenv("ATTN_TF_CACHE", "")
    assert cache_dir() == Path.home() / ".cache" / "attn_tf"


def test_download_verifies_and_caches(monkeypatch):
    fake = FakePip(GOOD)
    monkeypatch.setattr(cache.subprocess, "run", fake)
    path = cache.fetch_pypi_artifact(PKG, VER, GOOD_SHA, kind="sdist")
    assert path.read_bytes() == GOOD
    assert path.parent == cache.artifact_dir(PKG, VER, "sdist")
    cmd = fake.calls[0]
    assert cmd[:3] == [sys.executable, "-m", "pip"] and "download" in cmd
    assert "--no-deps" in cmd and f"{PKG}=={VER}" in cmd
    assert cmd[cmd.index("--no-binary") + 1] == ":all:"
    # temporary download dirs are cleaned up
    assert list((cache_dir() / "pypi" / ".tmp").iterdir()) == []
    # second call: reused, pip not called
    monkeypatch.setattr(cache.subprocess, "run", no_pip)
    assert cache.fetch_pypi_artifact(PKG, VER, GOOD_SHA, kind="sdist") == path


def test_wheel_uses_only_binary(monkeypatch):
    fake = FakePip(GOOD)
    monkeypatch.setattr(cache.subprocess, "run", fake)
    cache.fetch_pypi_artifact(PKG, VER, GOOD_SHA, kind="wheel")
    cmd = fake.calls[0]
    assert cmd[cmd.index("--only-binary") + 1] == ":all:" and "--no-binary" not in cmd


def test_preseeded_good_file_is_reused_without_pip(monkeypatch):
    d = cache.artifact_dir(PKG, VER, "wheel")
    d.mkdir(parents=True)
    (d / "pkg.whl").write_bytes(GOOD)
    monkeypatch.setattr(cache.subprocess, "run", no_pip)
    assert cache.fetch_pypi_artifact(PKG, VER, GOOD_SHA.upper(), kind="wheel") == d / "pkg.whl"


def test_pip_failure_gives_command_and_path(monkeypatch):
    fake = FakePip(returncode=1, stderr="ERROR: Could not find a version (network is unreachable)")
    monkeypatch.setattr(cache.subprocess, "run", fake)
    with pytest.raises(DataError) as ei:
        cache.fetch_pypi_artifact(PKG, VER, GOOD_SHA, kind="sdist", filename="x.tar.gz")
    msg = str(ei.value)
    assert f"{PKG}=={VER}" in msg
    assert "python -m pip download --no-deps --no-binary :all:" in msg
    assert "or place the file" in msg and str(cache.artifact_dir(PKG, VER, "sdist") / "x.tar.gz") in msg
    assert "network is unreachable" in msg


def test_pip_missing_or_timeout(monkeypatch):
    def boom(cmd, **kw):
        raise subprocess.TimeoutExpired(cmd, 5)

    monkeypatch.setattr(cache.subprocess, "run", boom)
    with pytest.raises(DataError, match=PKG):
        cache.fetch_pypi_artifact(PKG, VER, GOOD_SHA)


def test_hash_mismatch_on_download(monkeypatch):
    fake = FakePip(BAD)
    monkeypatch.setattr(cache.subprocess, "run", fake)
    with pytest.raises(DataError) as ei:
        cache.fetch_pypi_artifact(PKG, VER, GOOD_SHA)
    msg = str(ei.value)
    assert PKG in msg and VER in msg and GOOD_SHA in msg and BAD_SHA in msg
    # the bad file was not moved into place
    assert list(cache.artifact_dir(PKG, VER, "sdist").iterdir()) == []
    assert len(fake.calls) == 1


def test_corrupt_cached_file_is_redownloaded_once(monkeypatch):
    d = cache.artifact_dir(PKG, VER, "sdist")
    d.mkdir(parents=True)
    (d / f"{PKG}-{VER}.tar.gz").write_bytes(b"truncated")
    fake = FakePip(GOOD)
    monkeypatch.setattr(cache.subprocess, "run", fake)
    path = cache.fetch_pypi_artifact(PKG, VER, GOOD_SHA)
    assert path.read_bytes() == GOOD and len(fake.calls) == 1


def test_corrupt_cached_file_and_bad_download(monkeypatch):
    d = cache.artifact_dir(PKG, VER, "sdist")
    d.mkdir(parents=True)
    (d / f"{PKG}-{VER}.tar.gz").write_bytes(b"truncated")
    fake = FakePip(BAD)
    monkeypatch.setattr(cache.subprocess, "run", fake)
    with pytest.raises(DataError) as ei:
        cache.fetch_pypi_artifact(PKG, VER, GOOD_SHA)
    assert PKG in str(ei.value) and GOOD_SHA in str(ei.value) and BAD_SHA in str(ei.value)
    assert len(fake.calls) == 1


def test_json_cache_roundtrip_and_corruption(tmp_path):
    p = tmp_path / "parsed" / "x.json"
    assert cache.read_json_cache(p) is None
    cache.write_json_atomic(p, {"a": [1, "é"]})
    assert cache.read_json_cache(p) == {"a": [1, "é"]}
    assert cache.read_json_cache(p, validate=lambda o: "b" in o) is None and not p.exists()
    p.write_text('{"a": [1, ')  # truncated write
    assert cache.read_json_cache(p) is None and not p.exists()
