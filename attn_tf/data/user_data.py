"""Load a user's own text-classification file (CSV, TSV or JSONL).

The format is chosen by the file extension:

* ``.csv``: comma-separated, standard CSV quoting; a header row is required.
* ``.tsv``, ``.tab``, ``.txt``: tab-separated with NO quoting (a ``"`` is an
  ordinary character); a header row is required.  An Orange ``.tab`` file
  (header rows: names, types, flags) is recognised and its type/flag rows skipped.
* ``.jsonl``, ``.ndjson``: one JSON object per line.

Files must be UTF-8 (a byte-order mark is allowed).  Blank lines are skipped.
Labels are read as strings (JSON numbers/booleans are converted with ``str``)
and mapped to class indices in sorted order of the class names (numerically
when every name is an integer, so "2" comes before "10").  Texts may be empty.

The rows are split (seeded by ``seed``, stratified by class) into test
(``test_fraction``), then validation (``validation_fraction`` of the rest) and
train.  Every problem a user can fix raises :class:`DataError` naming the file
(and the line or column where it applies).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from .base import (
    TextClassificationData,
    check_fraction,
    raise_csv_field_limit,
    sort_class_names,
    stratified_split,
)
from .errors import DataError

__all__ = ["load_user_data", "USER_DATA_FORMATS"]

USER_DATA_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_ORANGE_TYPES = {
    "", "d", "discrete", "c", "continuous", "s", "string", "text", "t", "time",
}
_ORANGE_FLAGS = ("class", "meta", "m", "c", "i", "ignore", "w", "weight", "")


def _short(value, limit: int = 40) -> str:
    """repr of a column name, cut to `limit` characters (a binary file's "column" can be kilobytes of NULs)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'" + " (%d chars)" % len(str(value))


def _column_error(path: Path, kind: str, name: str, columns: list[str], where: str = "") -> DataError:
    flag = "--text-column" if kind == "text" else "--label-column"
    cols = ", ".join(_short(c) for c in columns[:20]) if columns else "(none)"
    if len(columns) > 20:
        cols += ", ... (%d columns)" % len(columns)
    return DataError(
        f"{path}: no {kind} column {name!r}{where}. Columns found: {cols}. "
        f"Pass the right name with {flag} NAME."
    )


def _read_delimited(path: Path, text: str, fmt: str, text_column: str, label_column: str):
    raise_csv_field_limit()
    if fmt == "csv":
        reader = csv.reader(io.StringIO(text, newline=""))
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    try:
        header = None
        for row in reader:
            if any(c.strip() for c in row):
                header = [c.strip() for c in row]
                break
        if header is None:
            raise DataError(f"{path} is empty (expected a header row, then one row per example).")
        for kind, name in (("text", text_column), ("label", label_column)):
            if name not in header:
                raise _column_error(path, kind, name, header, " in the header row")
        ti, li = header.index(text_column), header.index(label_column)

        rows = []
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            rows.append((reader.line_num, row))
    except csv.Error as e:
        raise DataError(f"{path}: line {reader.line_num}: malformed {fmt.upper()} ({e}).") from e

    # Orange .tab: skip the "types" and "flags" header rows.
    if fmt == "tsv" and path.suffix.lower() == ".tab" and len(rows) >= 2:
        types_row, flags_row = rows[0][1], rows[1][1]
        if all(c.strip().lower() in _ORANGE_TYPES for c in types_row) and all(
            c.strip().lower().startswith(_ORANGE_FLAGS) for c in flags_row
        ) and any(c.strip() for c in types_row):
            rows = rows[2:]

    texts, labels = [], []
    for line_num, row in rows:
        if max(ti, li) >= len(row):
            raise DataError(
                f"{path}: line {line_num} has {len(row)} field(s) but the header has {len(header)} "
                f"(columns: {', '.join(header)}); check the delimiter and quoting."
            )
        label = row[li].strip()
        if not label:
            raise DataError(
                f"{path}: line {line_num}: empty label in column {label_column!r}. "
                f"Every row needs a label; remove or fix that row."
            )
        texts.append(row[ti])
        labels.append(label)
    return texts, labels


def _read_jsonl(path: Path, text: str, text_column: str, label_column: str):
    texts, labels = [], []
    for line_num, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: line {line_num} is not valid JSON ({e.msg}, column {e.colno}).") from e
        if not isinstance(obj, dict):
            raise DataError(
                f"{path}: line {line_num} is a JSON {type(obj).__name__}, expected an object like "
                f'{{"{text_column}": "...", "{label_column}": "..."}}.'
            )
        for kind, name in (("text", text_column), ("label", label_column)):
            if name not in obj:
                raise _column_error(path, kind, name, list(obj), f" on line {line_num}")
        doc, label = obj[text_column], obj[label_column]
        if doc is None:
            doc = ""
        if not isinstance(doc, str):
            raise DataError(
                f"{path}: line {line_num}: {text_column!r} must be a string, got {type(doc).__name__}."
            )
        if isinstance(label, (dict, list)):
            raise DataError(
                f"{path}: line {line_num}: {label_column!r} must be a string or number, "
                f"got {type(label).__name__}."
            )
        label = "" if label is None else str(label).strip()
        if not label:
            raise DataError(
                f"{path}: line {line_num}: empty label in {label_column!r}. "
                f"Every row needs a label; remove or fix that line."
            )
        texts.append(doc)
        labels.append(label)
    return texts, labels


def read_text_file(path: Path) -> str:
    """The UTF-8 text of a user's data file (a BOM is dropped); a DataError naming the fix otherwise."""
    if not path.exists():
        raise DataError(f"Data file {path} does not exist. Check the path.")
    if not path.is_file():
        raise DataError(f"Data file {path} is not a regular file.")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"Cannot read data file {path}: {e}.") from e
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line} is not valid UTF-8 ({e.reason}); save the file as UTF-8.") from e


def load_user_data(
    path,
    text_column: str = "text",
    label_column: str = "label",
    seed: int = 0,
    test_fraction: float = 0.1,
    validation_fraction: float = 0.1,
) -> TextClassificationData:
    """Read a CSV/TSV/JSONL file of labelled texts and split it train/val/test.

    ``test_fraction`` of the rows become the test split, then
    ``validation_fraction`` of the remaining rows the validation split (both
    stratified by class, seeded by ``seed``).  See the module docstring for the
    formats.  Raises :class:`DataError` for a missing/empty/unreadable file, an
    unknown extension, a missing column, an empty label, a malformed line or
    fewer than two classes.
    """
    path = Path(path).expanduser()
    test_fraction = check_fraction(test_fraction, "test_fraction")
    validation_fraction = check_fraction(validation_fraction, "validation_fraction")
    fmt = USER_DATA_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path}: unknown file extension {path.suffix!r}. Supported: "
            f"{', '.join(sorted(USER_DATA_FORMATS))} (CSV, tab-separated, JSON lines)."
        )
    text = read_text_file(path)
    if not text.strip():
        raise DataError(f"{path} is empty.")

    if fmt == "jsonl":
        texts, labels = _read_jsonl(path, text, text_column, label_column)
    else:
        texts, labels = _read_delimited(path, text, fmt, text_column, label_column)
    if not texts:
        raise DataError(f"{path} has a header but no data rows.")

    class_names = sort_class_names(labels)
    if len(class_names) < 2:
        raise DataError(
            f"{path}: column {label_column!r} has only {len(class_names)} distinct label "
            f"({', '.join(repr(c) for c in class_names)}); classification needs at least 2 classes."
        )
    index = {c: i for i, c in enumerate(class_names)}
    y = np.asarray([index[label] for label in labels], dtype=np.int32)

    rng = np.random.default_rng(seed)
    rest, test = stratified_split(y, test_fraction, rng)
    keep_rel, val_rel = stratified_split(y[rest], validation_fraction, rng)
    train, val = rest[keep_rel], rest[val_rel]
    if len(train) == 0:
        raise DataError(f"{path}: too few rows ({len(texts)}) to make a training split.")

    def pick(idx):
        return [texts[i] for i in idx], y[idx]

    data = TextClassificationData(
        name=path.stem,
        class_names=class_names,
        train_texts=pick(train)[0],
        train_labels=pick(train)[1],
        val_texts=pick(val)[0],
        val_labels=pick(val)[1],
        test_texts=pick(test)[0],
        test_labels=pick(test)[1],
    )
    data.description = (
        f"user data {path} ({fmt.upper()}, {len(texts)} rows, text={text_column!r}, "
        f"label={label_column!r}); seeded stratified split (seed {seed}): "
        f"test {test_fraction:.0%}, validation {validation_fraction:.0%} of the rest; "
        f"{len(train)} train / {len(val)} val / {len(test)} test, {len(class_names)} classes"
    )
    return data
