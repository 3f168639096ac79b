"""The one atomic file writer: a temporary file in the same directory, fsync, then a rename.

    write_json(path, obj, **json_dump_kwargs) -> path
    write_with(path, write, binary=False) -> path   `write(f)` fills the file (e.g. numpy.savez)

A crash or an error while writing leaves the previous file (or none), never a
half-written one, and no temporary file behind. The file gets the usual
permissions (0666 less the umask; `mkstemp` alone would make it 0600).
At the bottom of the import order: data, run directories and the cache use it.
"""

import json
import os
import tempfile


def _umask_mode(mode=0o666):
    current = os.umask(0)
    os.umask(current)
    return mode & ~current


def write_with(path, write, binary=False):
    """Writes `path` atomically: `write(f)` fills an open temporary file (text UTF-8, or bytes)."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def write_json(path, obj, **json_kwargs):
    return write_with(path, lambda f: json.dump(obj, f, **json_kwargs))
