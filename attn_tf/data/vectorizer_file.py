"""The file format shared by the vectorizers of a run directory (vectorizer.json).

    save_config(path, file_format, version, config) -> Path
    load_config(path, file_format, version, from_config) -> the rebuilt object

A file is `{"format": file_format, "version": version, "config": {...}}`, the
config holding everything the vectorizer needs (vocabulary included), so a
run directory is self-contained. Written atomically (`attn_tf.atomic`); every
way a file can be unusable is one `DataError` naming the file and what is
wrong with it.
"""

from __future__ import annotations

import json
from pathlib import Path

from attn_tf import atomic

from .errors import DataError


def _kind(file_format: str) -> str:
    return file_format.rsplit(".", 1)[-1]


def save_config(path, file_format: str, version: int, config: dict) -> Path:
    """Writes `config` under `file_format` / `version` as JSON, atomically."""
    path = Path(path)
    payload = {"format": file_format, "version": version, "config": config}
    atomic.write_json(path, payload, ensure_ascii=False, indent=1)
    return path


def load_config(path, file_format: str, version: int, from_config):
    """Reads a file written by `save_config` and returns `from_config(config)`; DataError if unusable."""
    path = Path(path)
    kind = _kind(file_format)
    try:
        with open(path, "r", encoding="utf-8") as f:
            payload = json.load(f)
    except FileNotFoundError as e:
        raise DataError(f"Vectorizer file {path} does not exist.") from e
    except (OSError, ValueError) as e:
        raise DataError(f"Vectorizer file {path} is unreadable or not JSON ({e}).") from e
    if not isinstance(payload, dict) or payload.get("format") != file_format:
        raise DataError(f"{path} is not a {kind} file (missing format {file_format!r}).")
    if payload.get("version") != version:
        raise DataError(f"{path}: unsupported {kind} file version {payload.get('version')!r}.")
    try:
        return from_config(payload["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: invalid {kind} config ({e}).") from e
