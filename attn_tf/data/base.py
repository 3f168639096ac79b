"""The dataset container and the seeded split helpers shared by the loaders."""

from __future__ import annotations

import csv
import re
import sys
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "TextClassificationData",
    "stratified_split",
    "sort_class_names",
    "check_fraction",
    "raise_csv_field_limit",
]


@dataclass
class TextClassificationData:
    """A text-classification dataset split into train / validation / test.

    ``*_texts`` are lists of ``str``; ``*_labels`` are ``np.int32`` arrays of
    indices into ``class_names``.  The validation split is carved out of the
    training data (seeded) and is the one to use for checkpoint selection and
    early stopping; the test split must never drive a training decision.
    ``description`` is one line naming the source and the split.
    """

    name: str
    class_names: list[str]
    train_texts: list[str]
    train_labels: np.ndarray
    val_texts: list[str]
    val_labels: np.ndarray
    test_texts: list[str]
    test_labels: np.ndarray
    description: str = field(default="")

    def __post_init__(self) -> None:
        for split in ("train", "val", "test"):
            texts = list(getattr(self, f"{split}_texts"))
            labels = np.asarray(getattr(self, f"{split}_labels"), dtype=np.int32).reshape(-1)
            if len(texts) != len(labels):
                raise ValueError(
                    f"{split}: {len(texts)} texts but {len(labels)} labels in dataset {self.name!r}"
                )
            setattr(self, f"{split}_texts", texts)
            setattr(self, f"{split}_labels", labels)
        self.class_names = [str(c) for c in self.class_names]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def sizes(self) -> dict[str, int]:
        return {
            "train": len(self.train_texts),
            "val": len(self.val_texts),
            "test": len(self.test_texts),
        }

    def class_counts(self, split: str = "train") -> dict[str, int]:
        labels = getattr(self, f"{split}_labels")
        counts = np.bincount(labels, minlength=self.num_classes)
        return {name: int(c) for name, c in zip(self.class_names, counts)}

    def __repr__(self) -> str:  # the default repr would print every text
        s = self.sizes()
        return (
            f"TextClassificationData(name={self.name!r}, classes={self.num_classes}, "
            f"train={s['train']}, val={s['val']}, test={s['test']})"
        )


def check_fraction(value: float, what: str) -> float:
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{what} must be in [0, 1), got {value}")
    return value


def stratified_split(
    labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices ``0..n-1`` into (kept, held_out), stratified by label.

    ``round(n * fraction)`` examples (half rounds up; at least one when
    ``fraction > 0`` and ``n >= 2``) are held out, shared among the classes in
    proportion to their size (largest-remainder method, ties broken at random),
    never taking the last example of a class unless every class is a singleton.
    Which examples are held out within a class is random.  Both index arrays are
    returned in ascending order.  Deterministic for a given ``rng`` state.
    """
    labels = np.asarray(labels).reshape(-1)
    n = len(labels)
    if n == 0 or fraction <= 0:
        return np.arange(n), np.arange(0)
    target = int(np.floor(n * fraction + 0.5))
    if n >= 2:
        target = max(target, 1)
    perm = rng.permutation(n)
    grouped = perm[np.argsort(labels[perm], kind="stable")]  # by class, random within class
    _, counts = np.unique(labels[grouped], return_counts=True)
    quotas = counts * fraction
    caps = counts - 1
    take = np.minimum(np.floor(quotas).astype(np.int64), caps)
    remaining = target - int(take.sum())
    if remaining > 0:
        tie = rng.random(len(counts))
        for c in sorted(range(len(counts)), key=lambda c: (-(quotas[c] - take[c]), tie[c])):
            if remaining == 0:
                break
            if take[c] < caps[c]:
                take[c] += 1
                remaining -= 1
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    held = [int(i) for s, k in zip(starts, take) for i in grouped[s : s + k]]
    if not held and n >= 2:
        held = [int(perm[0])]
    held_arr = np.sort(np.asarray(held, dtype=np.int64))
    mask = np.ones(n, dtype=bool)
    mask[held_arr] = False
    return np.nonzero(mask)[0], held_arr


_INT_RE = re.compile(r"^[+-]?\d+$")


def sort_class_names(names) -> list[str]:
    """Sorted unique class names; numerically if every name is an integer ("2" < "10")."""
    unique = set(str(n) for n in names)
    if unique and all(_INT_RE.match(n) for n in unique):
        return sorted(unique, key=lambda n: (int(n), n))
    return sorted(unique)


def raise_csv_field_limit() -> None:
    """Allow very long CSV fields (whole documents in one cell)."""
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 10
