import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tests must never touch the user's real cache unless they ask for it.
