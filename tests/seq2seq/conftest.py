import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def copy_model():
    """A small GRU (additive attention) trained on the copy task, shared by several tests."""
    from s2s_train import train_small

    return train_small("seq2seq_gru", "copy", attention="additive")
