"""Checks shared by the seq2seq model tests."""

import numpy as np


def assert_step_decoding_equals_teacher_forcing(model, source, target_in, steps=None, atol=1e-5):
    """decode_step, one token at a time from initial_state, gives the teacher-forced logits."""
    full = model((source, target_in)).numpy()
    enc = model.encode(source)
    state = model.initial_state(enc)
    for t in range(target_in.shape[1] if steps is None else steps):
        logits, state, _ = model.decode_step(target_in[:, t], state, enc, t)
        np.testing.assert_allclose(logits.numpy(), full[:, t], atol=atol)
