"""Traversal-safe lookup of the frontend files in ``tb_plugin/static/``.

The MIME types are hard-coded: Python's `mimetypes` reads the Windows
registry, which often maps ``.js`` to ``text/plain`` (tensorboard#3077), and
browsers refuse ES modules served with a non-JavaScript type.
"""

import os
import re

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

MIME_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".map": "application/json",
    ".html": "text/html",
}

# One path component: letters, digits, '_', '-', '.', not starting with '.'
# (so no '..', no hidden files), no '%' (double-encoded traversal), no '\\'.
_COMPONENT = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$")


class UnsafePathError(ValueError):
    """The requested path could escape the static directory or is malformed."""


def resolve(relative_path, static_dir=None):
    """Maps a request path below ``static/`` to a file on disk.

    Args:
      relative_path: the already URL-decoded path after ``static/``, e.g.
        ``"lib/chart.js"``.
      static_dir: defaults to `STATIC_DIR`.
    Returns:
      (absolute file path, MIME type), or None if there is no such file or
      its type is not served.
    Raises:
      UnsafePathError: for absolute paths, backslashes, ``..``, hidden or
        otherwise malformed components, or a path whose real location (after
        symlinks) is outside the static directory.
    """
    static_dir = STATIC_DIR if static_dir is None else static_dir
    if not isinstance(relative_path, str) or not relative_path:
        raise UnsafePathError("empty static path")
    if "\\" in relative_path or "\x00" in relative_path:
        raise UnsafePathError("backslash or NUL in static path")
    if relative_path.startswith("/") or os.path.isabs(relative_path) or re.match(r"^[A-Za-z]:", relative_path):
        raise UnsafePathError("absolute static path")
    parts = relative_path.split("/")
    for part in parts:
        if not _COMPONENT.match(part):
            raise UnsafePathError("invalid static path component %r" % part)
    ext = os.path.splitext(parts[-1])[1].lower()
    mime = MIME_TYPES.get(ext)
    if mime is None:
        return None
    root = os.path.realpath(static_dir)
    candidate = os.path.realpath(os.path.join(root, *parts))
    if os.path.commonpath([root, candidate]) != root or candidate == root:
        raise UnsafePathError("static path leaves the static directory")
    if not os.path.isfile(candidate):
        return None
    return candidate, mime


def read(relative_path, static_dir=None):
    """(bytes, MIME type) of a static file, or None; raises UnsafePathError."""
    found = resolve(relative_path, static_dir)
    if found is None:
        return None
    path, mime = found
    try:
        with open(path, "rb") as f:
            return f.read(), mime
    except OSError:
        return None
