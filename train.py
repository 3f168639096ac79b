#!/usr/bin/env python
"""Train an attention text classifier and log its attention for TensorBoard.

    python train.py                      # BiLSTM + attention on movie_reviews
    python train.py --model transformer --dataset r8
    python train.py --help               # every flag (also in the README)

The logic lives in attn_tf.training (the loop) and attn_tf.cli (train, then export, then
results.json; errors to exit codes); `attn-tf train` is the same command.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    from attn_tf.cli import train_command

    return train_command(argv)


if __name__ == "__main__":
    sys.exit(main())
