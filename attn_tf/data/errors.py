"""The one exception type the data pipeline raises for problems a user can fix.

``train.py`` catches :class:`DataError`, prints its message (without a traceback)
and exits with status 2, so every message must say *which* dataset or file is
affected and *what to do* about it.
"""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(Exception):
    """A dataset or data file could not be fetched, verified or parsed.

    The message names the dataset/file and the action to take (a command to run,
    a flag to pass, a cache file to delete).
    """
