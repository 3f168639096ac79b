"""attn-tf: Keras 3 attention layers and models that return and accept their attention."""

__version__ = "0.1.0"
