"""all-MiniLM-L6-v2 in attn-tf's own layers: a BERT backbone and a classifier task model.

    token ids [B, T] ([CLS] pieces [SEP], 0-padded)
      -> BertEmbedding (token + position + segment, LayerNorm, dropout)
      -> L x TransformerEncoder (post-LayerNorm, exact erf GELU, eps 1e-12)
      -> masked mean pooling (what sentence-transformers trained the model with)
      -> dropout -> Dense softmax

keras-hub's split, without keras-hub: `minilm_backbone` is the encoder
(outputs "sequence_output" [B, T, D] and "attention" [B, L, H, T, T]);
`minilm_classifier` is the task model, with the same outputs as the other
attn-tf classifiers ({"probabilities": [B, C], "attention": [B, L, H, T, T]})
and the same layer-name contract as `attn_tf.models.transformer`
("embedding", "encoder_block_<i>", "pooling", "dropout", "classifier"), so the
attention logger, the exporter and the evaluation see a Transformer
classifier. The one preset, `"minilm"`, reads its architecture from the
model's own `config.json` and its weights from `model.safetensors`
(`attn_tf.pretrained.minilm`: pinned, sha256-checked, cached).

Every block's attention is returned and can be replaced (`forward(...,
attention_override=...)`), as for every attn-tf layer.
"""

import numpy as np

import keras
from keras import layers, ops

from attn_tf.layers import TransformerEncoder
from attn_tf.layers.bert_embedding import BertEmbedding
from attn_tf.models.eval_hooks import TransformerHooks
from attn_tf.models.transformer import encode_and_classify, num_blocks

PRESETS = ("minilm",)

# Architecture of the preset as far as our layers need it, read from the
# model's config.json by `preset_config` (the file is the owner of these facts).
_HF_KEYS = {
    "vocab_size": "vocab_size",
    "hidden_dim": "hidden_size",
    "num_layers": "num_hidden_layers",
    "num_heads": "num_attention_heads",
    "intermediate_dim": "intermediate_size",
    "max_sequence_length": "max_position_embeddings",
    "num_segments": "type_vocab_size",
    "layer_norm_epsilon": "layer_norm_eps",
    "activation": "hidden_act",
    "dropout": "hidden_dropout_prob",
}


def preset_config(preset="minilm"):
    """Backbone keyword arguments of a preset, from its config.json."""
    if preset not in PRESETS:
        raise ValueError("unknown preset %r; choose one of: %s" % (preset, ", ".join(PRESETS)))
    from attn_tf.pretrained.minilm import load_minilm_config

    hf = load_minilm_config()
    if hf.get("hidden_act") != "gelu" or hf.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("config.json describes a BERT variant these layers do not implement: %r" % hf)
    if abs(hf.get("attention_probs_dropout_prob", 0.1) - hf.get("hidden_dropout_prob", 0.1)) > 1e-9:
        raise ValueError("TransformerEncoder has one dropout rate; config.json has two different ones")
    return {ours: hf[theirs] for ours, theirs in _HF_KEYS.items()}


def _make_layers(vocab_size, hidden_dim, num_layers, num_heads, intermediate_dim, max_sequence_length,
                 num_segments=2, dropout=0.1, layer_norm_epsilon=1e-12, activation="gelu"):
    if hidden_dim % num_heads:
        raise ValueError("hidden_dim (%d) must be divisible by num_heads (%d)" % (hidden_dim, num_heads))
    embedding = BertEmbedding(vocab_size, hidden_dim, max_sequence_length, num_segments=num_segments,
                              dropout=dropout, layer_norm_epsilon=layer_norm_epsilon, name="embedding")
    init = keras.initializers.TruncatedNormal(stddev=0.02)  # BERT's
    blocks = [
        TransformerEncoder(num_heads, intermediate_dim, dropout=dropout, activation=activation,
                           layer_norm_epsilon=layer_norm_epsilon, normalize_first=False,
                           kernel_initializer=init, name="encoder_block_%d" % i)
        for i in range(num_layers)
    ]
    return embedding, blocks


def _encode(token_ids, embedding, blocks):
    x = embedding(token_ids)
    weights = []
    for block in blocks:
        x, w = block(x, return_attention_scores=True)
        weights.append(w)
    attention = layers.Activation("linear", dtype="float32", name="attention")(ops.stack(weights, axis=1))
    return x, attention


def minilm_backbone(max_length=None, preset="minilm", name="minilm_backbone", **config):
    """The BERT encoder: int ids [B, T] -> {"sequence_output", "attention"}.

    Args:
      max_length: fixed T of the input, or None (any length up to the
        number of positions).
      preset: "minilm" (architecture from config.json, pretrained weights
        loaded) or None (random weights; `config` gives the architecture:
        vocab_size, hidden_dim, num_layers, num_heads, intermediate_dim,
        max_sequence_length, ...).
    """
    if preset is not None:
        config = dict(preset_config(preset), **config)
    embedding, blocks = _make_layers(**config)
    token_ids = keras.Input(shape=(max_length,), dtype="int32", name="token_ids")
    x, attention = _encode(token_ids, embedding, blocks)
    model = keras.Model(token_ids, {"sequence_output": x, "attention": attention}, name=name)
    if preset is not None:
        load_pretrained(model)
    return model


def minilm_classifier(num_classes, max_length=128, preset="minilm", classifier_dropout=0.1,
                      vocab_size=None, name="minilm", **config):
    """The fine-tuning task model: int ids [B, T] -> {"probabilities", "attention"}.

    Args:
      num_classes: number of output classes.
      max_length: the longest input T ([CLS] and [SEP] included; at most the
        model's positions). The model takes any T up to it.
      preset: "minilm" (pretrained backbone) or None (random; `config` and
        `vocab_size` give the architecture, for tests).
      classifier_dropout: dropout before the classifier.
      vocab_size: with a preset, must be None or equal to the preset's.
    Returns:
      A functional `keras.Model` from int ids [B, T] (T unfixed) to a dict
      with "probabilities" [B, C] and "attention" [B, L, H, T, T].
    """
    if preset is not None:
        base = preset_config(preset)
        if vocab_size is not None and vocab_size != base["vocab_size"]:
            raise ValueError("preset %r has a vocabulary of %d pieces, got vocab_size=%d"
                             % (preset, base["vocab_size"], vocab_size))
        config = dict(base, **config)
    elif vocab_size is not None:
        config["vocab_size"] = vocab_size
    if max_length > config["max_sequence_length"]:
        raise ValueError("max_length %d exceeds the model's %d positions" % (max_length, config["max_sequence_length"]))
    embedding, blocks = _make_layers(**config)
    # Any length up to max_length: training batches of short texts are cut to their longest text
    # (registry "length_window"), which halves the cost of an epoch of movie_reviews.
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x, attention = _encode(token_ids, embedding, blocks)
    pooled = layers.GlobalAveragePooling1D(name="pooling")(x)  # masked mean (the padding mask rides on x)
    pooled = layers.Dropout(classifier_dropout, name="dropout")(pooled)
    probs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="classifier",
                         kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02))(pooled)
    model = keras.Model(token_ids, {"probabilities": probs, "attention": attention}, name=name)
    if preset is not None:
        load_pretrained(model)
    return model


def _assign(variable, value, what):
    value = np.asarray(value, dtype=np.float32)
    if tuple(variable.shape) != value.shape:
        raise ValueError("%s: checkpoint shape %s does not fit the layer's %s"
                         % (what, value.shape, tuple(variable.shape)))
    variable.assign(value)


def load_bert_tensors(model, tensors):
    """Assigns Hugging Face BERT tensors (``{name: array}``) to a model of this module.

    Dense weights are stored [out, in] (PyTorch): transposed, and for the
    attention projections reshaped to the EinsumDense layouts ([D, H, dk],
    [H, dk], [H, dk, D]). Every tensor but ``embeddings.position_ids`` (an
    int buffer) and ``pooler.*`` (unused by sentence-transformers) must be
    used; a missing or misshaped one raises ValueError naming it.
    """
    used = set()

    def take(key):
        if key not in tensors:
            raise ValueError("the checkpoint has no tensor %r" % key)
        used.add(key)
        return tensors[key]

    emb = model.get_layer("embedding")
    _assign(emb.token_embedding.embeddings, take("embeddings.word_embeddings.weight"), "token embedding")
    _assign(emb.position_embedding.embeddings, take("embeddings.position_embeddings.weight"), "position embedding")
    _assign(emb.segment_embedding.embeddings, take("embeddings.token_type_embeddings.weight"), "segment embedding")
    _assign(emb.embeddings_layer_norm.gamma, take("embeddings.LayerNorm.weight"), "embedding LayerNorm")
    _assign(emb.embeddings_layer_norm.beta, take("embeddings.LayerNorm.bias"), "embedding LayerNorm")
    for i in range(num_blocks(model)):
        block = model.get_layer("encoder_block_%d" % i)
        att = block.self_attention
        h, dk = att.num_heads, att.key_dim
        p = "encoder.layer.%d." % i
        for ours, theirs in ((att.query_dense, "query"), (att.key_dense, "key"), (att.value_dense, "value")):
            w = take(p + "attention.self.%s.weight" % theirs)
            _assign(ours.kernel, w.T.reshape(w.shape[1], h, dk), "block %d %s" % (i, theirs))
            _assign(ours.bias, take(p + "attention.self.%s.bias" % theirs).reshape(h, dk), "block %d %s" % (i, theirs))
        w = take(p + "attention.output.dense.weight")
        _assign(att.output_dense.kernel, w.T.reshape(h, dk, w.shape[0]), "block %d attention output" % i)
        _assign(att.output_dense.bias, take(p + "attention.output.dense.bias"), "block %d attention output" % i)
        _assign(block.self_attention_layer_norm.gamma, take(p + "attention.output.LayerNorm.weight"), "LN")
        _assign(block.self_attention_layer_norm.beta, take(p + "attention.output.LayerNorm.bias"), "LN")
        _assign(block.feedforward_intermediate_dense.kernel, take(p + "intermediate.dense.weight").T, "FFN in")
        _assign(block.feedforward_intermediate_dense.bias, take(p + "intermediate.dense.bias"), "FFN in")
        _assign(block.feedforward_output_dense.kernel, take(p + "output.dense.weight").T, "FFN out")
        _assign(block.feedforward_output_dense.bias, take(p + "output.dense.bias"), "FFN out")
        _assign(block.feedforward_layer_norm.gamma, take(p + "output.LayerNorm.weight"), "LN")
        _assign(block.feedforward_layer_norm.beta, take(p + "output.LayerNorm.bias"), "LN")
    left = sorted(k for k in tensors if k not in used and k != "embeddings.position_ids"
                  and not k.startswith("pooler."))
    if left:
        raise ValueError("checkpoint tensors not used (the model has fewer blocks?): %s" % ", ".join(left[:8]))


def load_pretrained(model, preset="minilm"):
    """Loads the preset's safetensors into `model` (a backbone or classifier of this module)."""
    if preset not in PRESETS:
        raise ValueError("unknown preset %r; choose one of: %s" % (preset, ", ".join(PRESETS)))
    from attn_tf.pretrained.minilm import load_minilm_tensors

    load_bert_tensors(model, load_minilm_tensors())
    return model


def forward(model, token_ids, attention_override=None, training=False, token_embeddings=None,
            hold_attention=False, return_attention=True):
    """The classifier's forward pass, optionally with attention replaced.

    Args:
      model: a model from `minilm_classifier`.
      token_ids: int [B, T].
      attention_override: None, or a list with one entry per block, each None
        or a [B, H, T, T] distribution used instead of that block's weights.
      token_embeddings: optional [B, T, D] used instead of the token-table
        lookup (gradients with respect to the input embeddings).
      hold_attention: compute each block's attention, then use it through
        `stop_gradient` (Jain & Wallace's gradient "with attention held").
      return_attention: False: no attention is computed or returned (the
        blocks take the fused `keras.ops.dot_product_attention` path; the
        `predict` serving signature uses this). Same probabilities.
    Returns:
      dict with "probabilities" [B, C] and "attention" [B, L, H, T, T]; only
      "probabilities" when return_attention is False.
    """
    emb = model.get_layer("embedding")
    mask = emb.compute_mask(token_ids)
    x = emb(token_ids, token_embeddings=token_embeddings, training=training)
    return encode_and_classify(model, x, mask, attention_override=attention_override, training=training,
                               return_attention=return_attention, hold_attention=hold_attention)


# ----------------------------------------------------------------------------- registry hooks

def make_tokenizer(config, data=None):
    """The run's tokenizer: the model's own WordPiece vocabulary (not adapted on the data)."""
    from attn_tf.data.wordpiece import WordPieceVectorizer
    from attn_tf.pretrained.minilm import minilm_vocabulary

    return WordPieceVectorizer(minilm_vocabulary(), max_length=config["max_length"])


def load_tokenizer(run_dir, config=None):
    """The tokenizer a minilm run saved (vectorizer.json, vocabulary included)."""
    import os

    from attn_tf.data.wordpiece import WordPieceVectorizer

    return WordPieceVectorizer.load(os.path.join(run_dir, "vectorizer.json"))


class MiniLMHooks(TransformerHooks):
    """Evaluation hooks (attn_tf.models.eval_hooks): BertEmbedding -> encoder_block_<i> -> pooling -> classifier.

    The token embeddings are the input the gradients are taken against; the
    position and segment embeddings, the embedding LayerNorm and dropout are
    applied to them inside `from_embeddings` (BertEmbedding's
    `token_embeddings=` argument), so gradients and integrated gradients see
    the whole model.
    """

    # The rest (attention kind, embedding matrix and lookup, number of blocks)
    # is the Transformer classifier's: the same layer names.

    @staticmethod
    def from_embeddings(model, emb, ids, hold_attention=False, attention_override=None):
        out = forward(model, ids, attention_override=attention_override, training=False, token_embeddings=emb,
                      hold_attention=hold_attention)
        return out["probabilities"], out["attention"]


EVAL_HOOKS = MiniLMHooks()
