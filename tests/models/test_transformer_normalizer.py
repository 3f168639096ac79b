"""`train.py --model transformer --attention-normalizer X` reaches every encoder block of the classifier."""

import numpy as np
import pytest

from attn_tf.models import registry
from attn_tf.training import cli


def _build(**config):
    spec = registry.get("transformer")
    return spec.build(dict({"max_length": 12, "dataset": "movie_reviews"}, **config), vocab_size=40, num_classes=2)


def _ids():
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 40, size=(3, 12)).astype("int32")
    ids[0, 7:] = 0  # padding
    return ids


def test_the_flag_is_accepted_for_the_transformer_and_recorded():
    args = cli.parse_args(["--model", "transformer", "--attention-normalizer", "sparsemax"])
    assert args.attention_normalizer == "sparsemax"
    # not given: the builder's softmax applies (the option is not passed)
    assert registry.get("transformer").options_from(vars(cli.parse_args(["--model", "transformer"]))) == {}


@pytest.mark.parametrize("normalizer", ["sparsemax", "entmax15"])
def test_sparse_normalizer_gives_exact_zeros_on_real_keys(normalizer):
    from attn_tf.models import transformer as tr

    model = _build(attention_normalizer=normalizer)
    blocks = [model.get_layer("encoder_block_%d" % i) for i in range(tr.num_blocks(model))]
    assert [b.normalizer for b in blocks] == [normalizer] * len(blocks)
    ids = _ids()
    out = model(ids)
    att = np.asarray(out["attention"])  # [B, L, H, T, T]
    real = ids != 0
    # every real query row is a distribution over the real keys
    np.testing.assert_allclose(att.sum(-1)[np.broadcast_to(real[:, None, None, :], att.shape[:4])], 1.0,
                               atol=1e-5)
    both_real = np.broadcast_to(real[:, None, None, :, None] & real[:, None, None, None, :], att.shape)
    assert (att[both_real] == 0).any(), "a sparse normaliser leaves some real keys at exactly 0"
    key_pad = np.broadcast_to(~real[:, None, None, None, :], att.shape)
    assert (att[key_pad] == 0).all()
    # the serving path (no attention computed) gives the same probabilities as the model
    probs = np.asarray(tr.forward(model, ids, return_attention=False)["probabilities"])
    np.testing.assert_allclose(probs, np.asarray(out["probabilities"]), atol=1e-5)


def test_default_stays_softmax_and_a_bad_name_is_refused():
    model = _build()
    assert model.get_layer("encoder_block_0").normalizer == "softmax"
    ids = _ids()
    att = np.asarray(model(ids)["attention"])
    real = ids != 0
    both_real = np.broadcast_to(real[:, None, None, :, None] & real[:, None, None, None, :], att.shape)
    assert (att[both_real] > 0).all()
    with pytest.raises(ValueError, match="normalizer"):
        _build(attention_normalizer="argmax")
