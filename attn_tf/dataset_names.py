"""The spelling of named datasets: one normaliser for the loaders, the registry and the command line.

Imports nothing, so reading the model registry (and `train.py --help`) stays free of TensorFlow.
"""

# Accepted other names of the built-in datasets (after lower-casing and "-" -> "_").
ALIASES = {
    "mr": "movie_reviews",
    "20ng": "20newsgroups",
    "reuters_r8": "r8",
    "reuters_r52": "r52",
    "deen": "de_en",
}


def canonical_dataset_name(name):
    """The canonical name of a built-in dataset ("MR" -> "movie_reviews", "de-en" -> "de_en").

    Case, surrounding spaces and "-" for "_" do not matter; a name that is no alias comes back
    normalised the same way (the loader then says whether it is known). None stays None.
    """
    if name is None:
        return None
    key = str(name).strip().lower().replace("-", "_")
    return ALIASES.get(key, key)
