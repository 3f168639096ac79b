import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="attn_tf")
class TokenAndPositionEmbedding(layers.Layer):
    """Sum of a token embedding and a learned position embedding.

    Id 0 is padding: the layer emits a padding mask (`mask_zero` semantics),
    so attention layers downstream give padded keys exactly zero weight.

    Args:
      vocab_size: number of token ids.
      sequence_length: largest supported sequence length.
      embedding_dim: output width.
      embeddings_initializer: initializer of both tables.

    Call arguments:
      inputs: int tensor [B, T], T <= sequence_length.

    Returns:
      float tensor [B, T, embedding_dim], with a [B, T] Keras mask.

    Example:

    >>> emb = TokenAndPositionEmbedding(100, 8, 16)
    >>> emb(np.array([[5, 7, 0]])).shape
    (1, 3, 16)
    """

    def __init__(self, vocab_size, sequence_length, embedding_dim,
                 embeddings_initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = int(vocab_size)
        self.sequence_length = int(sequence_length)
        self.embedding_dim = int(embedding_dim)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.token_embedding = layers.Embedding(
            self.vocab_size, self.embedding_dim, mask_zero=True,
            embeddings_initializer=self.embeddings_initializer,
            dtype=self.dtype_policy, name="token_embedding",
        )
        self.position_embedding = layers.Embedding(
            self.sequence_length, self.embedding_dim,
            embeddings_initializer=self.embeddings_initializer,
            dtype=self.dtype_policy, name="position_embedding",
        )
        self.supports_masking = True

    def build(self, inputs_shape):
        self.token_embedding.build(inputs_shape)
        self.position_embedding.build((self.sequence_length,))
        self.built = True

    def call(self, inputs):
        length = ops.shape(inputs)[-1]
        positions = ops.arange(0, length, dtype="int32")
        return self.token_embedding(inputs) + ops.expand_dims(self.position_embedding(positions), 0)

    def compute_mask(self, inputs, mask=None):
        return ops.not_equal(inputs, 0)

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape) + (self.embedding_dim,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocab_size": self.vocab_size,
            "sequence_length": self.sequence_length,
            "embedding_dim": self.embedding_dim,
            "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
        })
        return config
