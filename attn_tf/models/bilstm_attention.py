"""BiLSTM + attention pooling text classifier.

    token ids [B, T] -> Embedding(mask_zero) -> BiLSTM -> AttentionPooling -> Dense

The model returns a dict:
  "probabilities": [B, C] softmax over classes,
  "attention":     [B, T] pooling weights (exactly 0 on padding).

Layer names ("embedding", "encoder", "attention_pooling", "classifier") are a
contract: `forward` below and the evaluation code reach into them to run the
model with an attention distribution supplied from outside. The optional
training penalties ("conicity_penalty", "word_tying") sit between the encoder
and the pooling; they are identities at inference, so `forward` skips them.

Options that aim at attention that explains (issue 13): the encoder `lstm`
("vanilla", "diversity" = LSTM + conicity penalty, "orthogonal" = Orthogonal
LSTM; Mohankumar et al. 2020), the attention `normalizer` ("softmax",
"sparsemax", "entmax15") and a word-level tying penalty (Tutek & Snajder 2020).
"""

import keras
from keras import layers

from attn_tf.layers import AttentionPooling
from attn_tf.layers.conicity import ConicityPenalty
from attn_tf.layers.masking import check_normalizer
from attn_tf.layers.orthogonal_lstm import OrthogonalLSTM
from attn_tf.layers.word_tying import WordTyingPenalty

LSTM_VARIANTS = ("vanilla", "diversity", "orthogonal")
DEFAULT_CONICITY_WEIGHT = 1.0


def bilstm_attention(
    vocab_size,
    num_classes,
    max_length=64,
    embedding_dim=100,
    lstm_units=64,
    attention_units=64,
    dropout=0.5,
    embedding_dropout=0.5,
    lstm="vanilla",
    conicity_weight=None,
    tying_weight=0.0,
    attention_normalizer="softmax",
    name="bilstm_attention",
):
    """Builds the BiLSTM + attention classifier.

    Args:
      vocab_size: size of the token vocabulary (id 0 is padding).
      num_classes: number of output classes.
      max_length: padded sequence length T.
      embedding_dim, lstm_units, attention_units: sizes.
      dropout: dropout before the classifier.
      embedding_dropout: dropout on the embeddings.
      lstm: "vanilla" (default), "diversity" (adds `conicity_weight *
        conicity` of the BiLSTM states to the loss) or "orthogonal" (each
        direction's state orthogonal to the sum of its earlier states).
      conicity_weight: conicity penalty weight; defaults to
        DEFAULT_CONICITY_WEIGHT for "diversity" and to none otherwise (a
        positive value adds the penalty to any encoder).
      tying_weight: weight of the word-level tying penalty (0 = off).
      attention_normalizer: "softmax" (default), "sparsemax" or "entmax15".
    Returns:
      A functional `keras.Model` from int ids [B, T] to a dict with
      "probabilities" [B, C] and "attention" [B, T].
    """
    token_ids = keras.Input(shape=(max_length,), dtype="int32", name="token_ids")
    x = layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")(token_ids)
    if lstm not in LSTM_VARIANTS:
        raise ValueError("lstm must be one of %s, got %r" % (", ".join(LSTM_VARIANTS), lstm))
    check_normalizer(attention_normalizer)
    if conicity_weight is None:
        conicity_weight = DEFAULT_CONICITY_WEIGHT if lstm == "diversity" else 0.0
    if conicity_weight < 0 or tying_weight < 0:
        raise ValueError("conicity_weight and tying_weight must be >= 0")
    emb = layers.Dropout(embedding_dropout, name="embedding_dropout")(x)
    if lstm == "orthogonal":
        rnn = OrthogonalLSTM(lstm_units, return_sequences=True)
    else:
        rnn = layers.LSTM(lstm_units, return_sequences=True)
    x = layers.Bidirectional(rnn, name="encoder")(emb)
    if conicity_weight > 0:
        x = ConicityPenalty(conicity_weight, name="conicity_penalty")(x)
    if tying_weight > 0:
        x = WordTyingPenalty(tying_weight, name="word_tying")([x, emb])
    pooled, weights = AttentionPooling(attention_units, normalizer=attention_normalizer, name="attention_pooling")(
        x, return_attention_scores=True
    )
    pooled = layers.Dropout(dropout, name="dropout")(pooled)
    probs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="classifier")(pooled)
    weights = layers.Activation("linear", dtype="float32", name="attention")(weights)
    return keras.Model(token_ids, {"probabilities": probs, "attention": weights}, name=name)


def encode(model, token_ids, training=False):
    """Runs the layers below the attention: returns (hidden states, mask)."""
    emb_layer = model.get_layer("embedding")
    x = emb_layer(token_ids)
    mask = emb_layer.compute_mask(token_ids)
    x = model.get_layer("embedding_dropout")(x, training=training)
    h = model.get_layer("encoder")(x, mask=mask, training=training)
    return h, mask


def forward(model, token_ids, attention_override=None, hidden=None, training=False,
            return_attention=True):
    """The model's forward pass, optionally with the attention replaced.

    Args:
      model: a model from `bilstm_attention`.
      token_ids: int [B, T].
      attention_override: optional [B, T] distribution used instead of the
        computed pooling weights (masked positions are still zeroed).
      hidden: optional (hidden states, mask) from `encode`, to reuse them
        while only the attention changes.
      return_attention: False: return only "probabilities" (the pooling
        weights are still computed: the pooled vector needs them).
    Returns:
      dict with "probabilities" and "attention", as the model.
    """
    h, mask = hidden if hidden is not None else encode(model, token_ids, training)
    pooled, weights = model.get_layer("attention_pooling")(
        h, mask=mask, return_attention_scores=True, attention_override=attention_override,
        training=training,
    )
    pooled = model.get_layer("dropout")(pooled, training=training)
    probs = model.get_layer("classifier")(pooled)
    if not return_attention:
        return {"probabilities": probs}
    return {"probabilities": probs, "attention": weights}
