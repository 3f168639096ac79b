"""Moved to `attn_tf.run_dir` (the one reader and writer of run files, below training, evaluation and export)."""

from attn_tf.run_dir import (  # noqa: F401
    CONFIG, RunConfig, RunDir, find_run, load_config, new_run, new_run_dir, save_config, write_json,
)
