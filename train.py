#!/usr/bin/env python
"""Train an attention text classifier and log its attention for TensorBoard.

    python train.py                      # BiLSTM + attention on movie_reviews
    python train.py --model transformer --dataset r8
    python train.py --help               # every flag (also in the README)

The logic lives in attn_tf.training; this file only maps errors to exit codes.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    from attn_tf.training.cli import build_parser, parse_args, explicit_flags

    args = parse_args(argv)
    config = vars(args)
    config["_explicit"] = explicit_flags(argv)

    from attn_tf.data import DataError
    from attn_tf.errors import UsageError
    from attn_tf.training.trainer import train

    try:
        train(config)
    except DataError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    except UsageError as e:
        # Bad flag values or run directories; a traceback would hide the message.
        print("error: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: checkpoints and logs written so far are kept; continue with --resume",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
