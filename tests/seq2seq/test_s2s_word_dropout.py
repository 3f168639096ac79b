"""seq2seq_gru word dropout (Sennrich & Zhang 2019): whole token embeddings dropped while training."""

import numpy as np


def test_word_dropout_drops_whole_token_embeddings_in_training_only():
    from attn_tf.models.seq2seq_gru import Seq2SeqGRU

    model = Seq2SeqGRU(20, 20, embedding_dim=8, units=4, dropout=0.0, word_dropout=0.5)
    model.build_dummy()
    x = np.ones((4, 50, 8), "float32")
    dropped = np.asarray(model._drop_words(x, training=True))
    per_token = dropped.reshape(-1, 8)
    assert set(np.unique(per_token.sum(axis=1))) == {0.0, 16.0}  # a token is dropped whole or scaled 1/(1-p)
    assert 0.3 < np.mean(per_token.sum(axis=1) == 0) < 0.7
    assert np.array_equal(np.asarray(model._drop_words(x, training=False)), x)
    assert Seq2SeqGRU.from_config(model.get_config()).word_dropout_rate == 0.5
