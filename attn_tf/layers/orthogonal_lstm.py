"""Orthogonal LSTM (Mohankumar et al., ACL 2020)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="attn_tf")
class OrthogonalLSTMCell(keras.layers.Layer):
    """LSTM cell whose output is orthogonal to the sum of its earlier outputs.

    At step `t` the LSTM update gives `h'_t`; the cell emits
    `h_t = h'_t - (h'_t . m_{t-1} / |m_{t-1}|^2) m_{t-1}` with
    `m_{t-1} = h_1 + ... + h_{t-1}`, and `h_t` (not `h'_t`) is fed back as the
    recurrent state, as in "Towards Transparent and Explainable Attention
    Models" (Mohankumar et al., 2020, github.com/akashkm99/Interpretable-Attention).
    Hidden states that point in different directions keep attention over them
    from being replaceable by any other distribution of similar mass.

    The running sum `m` is a third state; `keras.layers.RNN` carries states
    unchanged over masked (padded) steps, so padding does not enter it.

    Args:
        units: size of the hidden state.
        epsilon: added to `|m|^2` (at `t = 1`, `m = 0` and `h_t = h'_t`).
        **kwargs: `keras.layers.LSTMCell` arguments (`dropout`,
            `recurrent_dropout`, initializers, ...) and base layer arguments.

    Call arguments:
        inputs: `[B, D]` input of one step.
        states: `[h, c, m]`, each `[B, units]`.
        training: Python boolean (dropout of the inner LSTM cell).

    Returns:
        `(h, [h, c, m])`.

    Example:

    >>> rnn = keras.layers.RNN(OrthogonalLSTMCell(8), return_sequences=True)
    >>> rnn(np.random.rand(2, 5, 3)).shape
    TensorShape([2, 5, 8])
    """

    def __init__(self, units, epsilon=1e-6, **kwargs):
        base = {k: kwargs.pop(k) for k in ("name", "dtype", "trainable") if k in kwargs}
        super().__init__(**base)
        self.units = int(units)
        self.epsilon = float(epsilon)
        self._lstm_kwargs = kwargs
        self.lstm_cell = keras.layers.LSTMCell(self.units, dtype=self.dtype_policy, name="lstm_cell", **kwargs)
        self.state_size = [self.units, self.units, self.units]
        self.output_size = self.units

    def build(self, input_shape):
        self.lstm_cell.build(input_shape)

    def call(self, inputs, states, training=False):
        h_prev, c_prev, m = states[0], states[1], states[2]
        h_new, (_, c_new) = self.lstm_cell(inputs, [h_prev, c_prev], training=training)
        coef = ops.sum(h_new * m, axis=-1, keepdims=True) / (
            ops.sum(m * m, axis=-1, keepdims=True) + self.epsilon)
        h = h_new - coef * m
        return h, [h, c_new, m + h]

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "epsilon": self.epsilon})
        config.update(self._lstm_kwargs)
        return config


@keras.saving.register_keras_serializable(package="attn_tf")
class OrthogonalLSTM(keras.layers.RNN):
    """Orthogonal LSTM layer: `keras.layers.RNN` over an `OrthogonalLSTMCell`.

    A drop-in for `keras.layers.LSTM(units, return_sequences=...)` (masks,
    `go_backwards`, `keras.layers.Bidirectional` all work); each direction of
    a `Bidirectional` wrapper orthogonalises its own states.

    Args:
        units: size of the hidden state.
        return_sequences: return all hidden states `[B, T, units]` (default
            `True`) or the last `[B, units]`.
        go_backwards: process the sequence in reverse.
        epsilon: see `OrthogonalLSTMCell`.
        **kwargs: `keras.layers.RNN` arguments (`return_state`, `name`, ...).

    Call arguments:
        sequences: `[B, T, D]`.
        mask: optional boolean `[B, T]` (taken from the Keras mask).
        training: Python boolean.

    Returns:
        `[B, T, units]` (or `[B, units]`).

    Example:

    >>> layer = keras.layers.Bidirectional(OrthogonalLSTM(8))
    >>> layer(np.random.rand(2, 5, 3)).shape
    TensorShape([2, 5, 16])
    """

    def __init__(self, units, return_sequences=True, go_backwards=False, epsilon=1e-6, **kwargs):
        cell = OrthogonalLSTMCell(units, epsilon=epsilon, dtype=kwargs.get("dtype"), name="orthogonal_lstm_cell")
        super().__init__(cell, return_sequences=return_sequences, go_backwards=go_backwards, **kwargs)
        self.units = cell.units
        self.epsilon = cell.epsilon

    def get_config(self):
        config = super().get_config()
        config.pop("cell", None)  # rebuilt from units / epsilon
        config.update({"units": self.units, "epsilon": self.epsilon})
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("cell", None)
        return cls(**config)
