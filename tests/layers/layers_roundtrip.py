"""Serialization helpers shared by the layer tests."""

import os

import keras
import numpy as np


def assert_config_roundtrip(layer):
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config
    return clone


def assert_saved_model_identical(model, inputs, tmp_path, name="model.keras"):
    """`.keras` save/load gives the same outputs (and the same classes)."""
    path = os.path.join(str(tmp_path), name)
    expected = model(inputs, training=False)
    keras.saving.save_model(model, path)
    loaded = keras.saving.load_model(path)
    got = loaded(inputs, training=False)
    flat_e = keras.tree.flatten(expected)
    flat_g = keras.tree.flatten(got)
    assert len(flat_e) == len(flat_g)
    for e, g in zip(flat_e, flat_g):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(e))
    assert [type(l).__name__ for l in loaded.layers] == [
        type(l).__name__ for l in model.layers
    ]
    return loaded
