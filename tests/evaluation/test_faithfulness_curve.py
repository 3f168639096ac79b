"""The faithfulness training curve: faithfulness/* scalars in TensorBoard at every epoch's end."""

import glob

import keras
import numpy as np

from eval_models import sentences


def _scalars(logdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = glob.glob(logdir + "/events.out.tfevents.*")
    assert files, "no event file in %s" % logdir
    acc = EventAccumulator(logdir, size_guidance={"tensors": 0})
    acc.Reload()
    return {tag: [(e.step, float(np.asarray(keras.ops.convert_to_numpy(e.tensor_proto.float_val)).ravel()[0]
                                 if e.tensor_proto.float_val else
                                 np.frombuffer(e.tensor_proto.tensor_content, np.float32)[0]))
                  for e in acc.Tensors(tag)]
            for tag in acc.Tags()["tensors"]}


def test_logger_writes_every_scalar_each_epoch_and_they_read_the_model(key_model, vectorizer, tmp_path):
    from attn_tf.data import vectorize_numpy
    from attn_tf.metrics.attention_faithfulness import SCALARS
    from attn_tf.models.adapter import ClassifierAdapter
    from attn_tf.training.faithfulness import AdapterFunctions, FaithfulnessLogger

    texts = sentences(24, seed=3)
    ids = vectorize_numpy(texts, vectorizer)
    logger = FaithfulnessLogger(str(tmp_path / "faithfulness"),
                                AdapterFunctions(ClassifierAdapter(key_model, kind="bilstm_attention")), ids[:12])
    train = keras.Model(key_model.input, key_model.output["probabilities"])
    # lr 0: the hand-built model (output and attention on the key word only) stays as it is.
    train.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
    train.fit(ids, np.ones(len(ids), np.int32), batch_size=8, epochs=2, verbose=0, callbacks=[logger])
    got = _scalars(str(tmp_path / "faithfulness"))
    for name in SCALARS:
        assert "faithfulness/" + name in got, name
        assert [s for s, _ in got["faithfulness/" + name]] == [3, 6]  # optimizer steps of the epoch ends
    assert "faithfulness/seconds" in got
    h = logger.history[-1]
    # The attention sits on the one word that decides: it agrees with the gradient, and deleting it hurts
    # far more than deleting random words.
    assert h["tau_attention_gradient"] > 0.5
    assert h["aopc_comprehensiveness_attention"] > h["aopc_comprehensiveness_random"] + 0.1
    assert h["entropy_ratio"] < 0.2


def test_factory_respects_cadence_and_chief(key_model, vectorizer, tmp_path):
    from types import SimpleNamespace

    from attn_tf.training.faithfulness import faithfulness_callbacks

    data = SimpleNamespace(val_texts=sentences(30, seed=4))
    base = dict(model="bilstm_attention", seed=0, faithfulness_every=2, faithfulness_samples=7)
    ctx = SimpleNamespace(config=base, model=key_model, data=data, tokenizer=vectorizer, run_dir=str(tmp_path),
                          chief=True)
    (cb,) = faithfulness_callbacks(ctx)
    assert cb.every == 2 and cb.ids.shape[0] == 7
    assert faithfulness_callbacks(SimpleNamespace(**dict(vars(ctx), chief=False))) == []
    off = SimpleNamespace(**dict(vars(ctx), config=dict(base, faithfulness_every=0)))
    assert faithfulness_callbacks(off) == []
