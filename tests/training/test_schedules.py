"""Learning-rate schedules named by a model's registry entry (attn_tf.training.schedules)."""

import dataclasses

import keras
import numpy as np
import pytest

from attn_tf.errors import UsageError
from attn_tf.models import registry
from attn_tf.training import schedules


def _rates(schedule, steps):
    return np.array([float(schedule(s)) for s in steps])


def test_linear_warmup_decay_follows_berts_recipe():
    lr = schedules.LinearWarmupDecay(1e-3, total_steps=100, warmup_steps=10)
    rates = _rates(lr, range(0, 101))
    # warm-up: 1/10, 2/10, ... of the peak (the first update is not a zero step), peak at step 9
    np.testing.assert_allclose(rates[:10], 1e-3 * np.arange(1, 11) / 10, rtol=1e-6)
    # then a straight line down to 0 at the last step
    np.testing.assert_allclose(rates[10:], 1e-3 * (100 - np.arange(10, 101)) / 90, rtol=1e-5, atol=1e-12)
    assert rates.max() == pytest.approx(1e-3) and rates[-1] == 0.0
    assert float(lr(500)) == 0.0


def test_linear_schedule_round_trips_through_keras_serialization():
    lr = schedules.LinearWarmupDecay(5e-5, total_steps=269, warmup_steps=26)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(lr))
    assert isinstance(again, schedules.LinearWarmupDecay) and again.get_config() == lr.get_config()
    opt = keras.optimizers.Adam(lr)
    assert keras.optimizers.Adam.from_config(opt.get_config()).learning_rate is not None


@pytest.fixture
def entry():
    """Registers a copy of bilstm_attention with chosen training keys; restores the original."""
    spec = registry.get("bilstm_attention")

    def use(**training):
        registry.register(dataclasses.replace(spec, training={"default": dict(spec.training["default"],
                                                                               **training)}))

    yield use
    registry.register(spec)


def test_registry_names_the_schedule(entry):
    config = {"model": "bilstm_attention", "dataset": "movie_reviews", "learning_rate": 2e-3}
    assert schedules.learning_rate(config, 100) == 2e-3  # classifiers: constant unless the entry says
    assert isinstance(schedules.learning_rate(config, 100, default="cosine"),
                      keras.optimizers.schedules.CosineDecay)
    entry(schedule="linear", warmup=0.1)
    lr = schedules.learning_rate(config, 100)
    assert isinstance(lr, schedules.LinearWarmupDecay) and lr.warmup_steps == 10 and lr.total_steps == 100
    assert schedules.learning_rate(config, None) == 2e-3  # no step count: constant
    entry(schedule="triangle")
    with pytest.raises(UsageError, match="unknown learning-rate schedule 'triangle'.*constant, cosine, linear"):
        schedules.learning_rate(config, 100)


def test_a_classifier_run_trains_on_its_entrys_schedule(entry):
    from attn_tf.training.cli import parse_args
    from attn_tf.training.trainer import build_models

    entry(schedule="linear", warmup=0.25)
    config = vars(parse_args(["--model", "bilstm_attention", "--max-length", "8"]))
    _, train_model = build_models(config, vocab_size=50, num_classes=2, total_steps=8)
    lr = train_model.optimizer._learning_rate  # the schedule object the optimizer evaluates each step
    assert isinstance(lr, schedules.LinearWarmupDecay) and (lr.total_steps, lr.warmup_steps) == (8, 2)
    x, y = np.zeros([4, 8], np.int32), np.zeros([4], np.int32)
    seen = []
    for _ in range(8):
        seen.append(float(np.asarray(train_model.optimizer.learning_rate)))
        train_model.train_on_batch(x, y)
    np.testing.assert_allclose(seen, config["learning_rate"] * np.array([.5, 1, 1, 5 / 6, 4 / 6, .5, 2 / 6, 1 / 6]),
                               rtol=1e-5)

