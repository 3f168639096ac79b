"""A small generated sentiment CSV: the label is given by one sentiment word."""

import csv
import random

POSITIVE = ["good", "great", "fine", "lovely", "superb", "fun"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring", "weak"]
FILLER = ["the", "movie", "plot", "was", "a", "film", "story", "and", "acting", "really", "quite", "its"]


def synthetic_rows(n, seed=0):
    """Texts whose label is given by one sentiment word among filler words."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = [rng.choice(FILLER) for _ in range(rng.randint(4, 12))]
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label == "pos" else NEGATIVE))
        rows.append((" ".join(words).capitalize() + ".", label))
    return rows


def write_csv(path, n=600, seed=0):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "sentiment"])
        w.writerows(synthetic_rows(n, seed))
    return path
