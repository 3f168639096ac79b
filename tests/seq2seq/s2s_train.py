"""Trains small seq2seq models on the synthetic tasks (seconds on a 2-core CPU)."""

import time

import numpy as np

from s2s_synthetic import LETTERS, id_arrays


def train_small(model_name, task, attention="additive", epochs=4, n=2000, seed=0):
    import keras

    from attn_tf.metrics.masked import MaskedAccuracy, MaskedLoss

    keras.utils.set_random_seed(seed)
    vocab = 4 + len(LETTERS)
    if model_name == "seq2seq_gru":
        from attn_tf.models.seq2seq_gru import Seq2SeqGRU

        model = Seq2SeqGRU(vocab, vocab, embedding_dim=32, units=32, attention=attention, dropout=0.0)
        lr = 1e-2
    else:
        from attn_tf.models.seq2seq_transformer import Seq2SeqTransformer

        model = Seq2SeqTransformer(vocab, vocab, max_source_length=8, max_target_length=10, hidden_dim=32,
                                   num_layers=1, num_heads=2, intermediate_dim=64, dropout=0.0)
        lr = 3e-3
    model.build_dummy()
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=MaskedLoss(), metrics=[MaskedAccuracy()])
    src, tin, tout = id_arrays(task, n, seed=seed)
    start = time.time()
    model.fit((src, tin), tout, batch_size=64, epochs=epochs, verbose=0, shuffle=True)
    model.train_seconds = time.time() - start
    return model


def held_out(task, n=300):
    return id_arrays(task, n, seed=12345)
