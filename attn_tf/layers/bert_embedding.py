import keras
from keras import initializers
from keras import layers
from keras import ops


@keras.saving.register_keras_serializable(package="attn_tf")
class BertEmbedding(layers.Layer):
    """BERT input embedding: token + position + segment, then LayerNorm and dropout.

    The embedding of [Devlin et al., 2019](https://arxiv.org/abs/1810.04805)
    (Hugging Face `BertEmbeddings`, keras-hub `BertBackbone`'s embedding
    stack): `dropout(LayerNorm(E_tok[ids] + E_pos[0..T-1] + E_seg[segments]))`.
    Position ids start at 0 for the first token (`[CLS]`).

    Token id `pad_id` (0 in BERT vocabularies, `[PAD]`) is padding: the layer
    emits a padding mask, so the attention layers downstream give padded keys
    exactly zero weight.

    Sublayers: `token_embedding` (`[vocab_size, D]`), `position_embedding`
    (`[max_sequence_length, D]`), `segment_embedding` (`[num_segments, D]`),
    `embeddings_layer_norm`, `embeddings_dropout`.

    Args:
        vocab_size: number of token ids.
        hidden_dim: embedding width `D`.
        max_sequence_length: number of learned positions (longest input).
        num_segments: number of segment (token type) ids. Defaults to `2`.
        dropout: dropout rate after the LayerNorm. Defaults to `0.1`.
        layer_norm_epsilon: LayerNorm epsilon. Defaults to `1e-12` (BERT).
        pad_id: the padding token id. Defaults to `0`.
        embeddings_initializer: initializer of the three tables. Defaults to
            `TruncatedNormal(stddev=0.02)` (BERT's).
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        token_ids: int tensor `[B, T]`, `T <= max_sequence_length`.
        segment_ids: optional int tensor `[B, T]`; all zeros when not given
            (one text per row).
        token_embeddings: optional float tensor `[B, T, D]` used instead of
            the token-table lookup (for gradients and integrated gradients
            with respect to the token embeddings); `token_ids` still give the
            padding mask.
        training: Python boolean, whether dropout is active.

    Returns:
        float tensor `[B, T, D]`, carrying the `[B, T]` padding mask
        (`token_ids != pad_id`) as its Keras mask.

    Example:

    >>> emb = BertEmbedding(vocab_size=100, hidden_dim=16, max_sequence_length=8)
    >>> emb(np.array([[101, 7, 102, 0]])).shape
    (1, 4, 16)
    """

    def __init__(
        self,
        vocab_size,
        hidden_dim,
        max_sequence_length,
        num_segments=2,
        dropout=0.1,
        layer_norm_epsilon=1e-12,
        pad_id=0,
        embeddings_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, val in (
            ("vocab_size", vocab_size),
            ("hidden_dim", hidden_dim),
            ("max_sequence_length", max_sequence_length),
            ("num_segments", num_segments),
        ):
            if isinstance(val, bool) or not isinstance(val, int) or val <= 0:
                raise ValueError(
                    f"`{name}` must be a positive integer. Received: {name}={val}"
                )
        dropout = float(dropout)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        self.vocab_size = vocab_size
        self.hidden_dim = hidden_dim
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.dropout = dropout
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.pad_id = int(pad_id)
        if embeddings_initializer is None:
            embeddings_initializer = initializers.TruncatedNormal(stddev=0.02)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.supports_masking = True

        def table(rows, name):
            return layers.Embedding(
                rows,
                hidden_dim,
                embeddings_initializer=self.embeddings_initializer.__class__.from_config(
                    self.embeddings_initializer.get_config()
                ),
                dtype=self.dtype_policy,
                name=name,
            )

        self.token_embedding = table(vocab_size, "token_embedding")
        self.position_embedding = table(max_sequence_length, "position_embedding")
        self.segment_embedding = table(num_segments, "segment_embedding")
        self.embeddings_layer_norm = layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="embeddings_layer_norm",
        )
        self.embeddings_dropout = layers.Dropout(
            dropout, dtype=self.dtype_policy, name="embeddings_dropout"
        )

    def build(self, token_ids_shape, segment_ids_shape=None, token_embeddings_shape=None):
        self.token_embedding.build((None,))
        self.position_embedding.build((None,))
        self.segment_embedding.build((None,))
        self.embeddings_layer_norm.build((None, None, self.hidden_dim))
        self.built = True

    def call(self, token_ids, segment_ids=None, token_embeddings=None, training=None):
        if token_embeddings is None:
            token_embeddings = self.token_embedding(token_ids)
        length = ops.shape(token_ids)[-1]
        positions = self.position_embedding(ops.arange(0, length, dtype="int32"))
        if segment_ids is None:
            # One text per row: segment 0 everywhere (its row broadcast).
            segments = self.segment_embedding(ops.zeros((1,), dtype="int32"))
        else:
            segments = self.segment_embedding(segment_ids)
        x = token_embeddings + ops.expand_dims(positions, 0) + segments
        x = self.embeddings_layer_norm(x)
        return self.embeddings_dropout(x, training=training)

    def compute_mask(self, token_ids, mask=None):
        return ops.not_equal(token_ids, self.pad_id)

    def compute_output_shape(self, token_ids_shape, segment_ids_shape=None, token_embeddings_shape=None):
        return tuple(token_ids_shape) + (self.hidden_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "hidden_dim": self.hidden_dim,
                "max_sequence_length": self.max_sequence_length,
                "num_segments": self.num_segments,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "pad_id": self.pad_id,
                "embeddings_initializer": initializers.serialize(
                    self.embeddings_initializer
                ),
            }
        )
        return config
