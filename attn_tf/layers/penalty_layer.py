"""Base of attn-tf's penalty layers (ConicityPenalty, WordTyingPenalty)."""

import keras


class PenaltyLayer(keras.layers.Layer):
    """A layer that adds `weight * penalty` to the model loss while training.

    The subclasses are identities on their (first) input that call
    `self.add_loss(self.weight * ...)` in training calls only, so the same
    model serves training and inference. This base owns the weight: its
    check and its place in `get_config`.

    Args:
        weight: penalty weight (> 0).
        **kwargs: base layer arguments.
    """

    def __init__(self, weight=1.0, **kwargs):
        super().__init__(**kwargs)
        weight = float(weight)
        if not weight > 0:
            raise ValueError("`weight` must be positive. Received: weight=%r" % weight)
        self.weight = weight
        self.supports_masking = True

    def get_config(self):
        config = super().get_config()
        config["weight"] = self.weight
        return config
