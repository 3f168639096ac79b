"""python -m attn_tf.data fetch NAME [NAME ...]: download, check and cache datasets."""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from attn_tf.data import DataError, KNOWN_DATASETS, cache_dir, load_dataset
from attn_tf.data.seq2seq_datasets import SEQ2SEQ_DATASETS, load_seq2seq_dataset
from attn_tf.dataset_names import canonical_dataset_name


def _load(name):
    if canonical_dataset_name(name) in SEQ2SEQ_DATASETS:
        return load_seq2seq_dataset(name)
    return load_dataset(name)


def main(argv=None):
    known = tuple(KNOWN_DATASETS) + SEQ2SEQ_DATASETS
    p = argparse.ArgumentParser(prog="python -m attn_tf.data", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="fetch and cache datasets")
    fetch.add_argument("names", nargs="+", metavar="NAME", help="one of: %s" % ", ".join(known))
    args = p.parse_args(argv)
    for name in args.names:
        try:
            data = _load(name)
        except DataError as e:
            print("error: %s" % e, file=sys.stderr)
            return 2
        print("%s: %s (cache: %s)" % (name, data.description, cache_dir()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
