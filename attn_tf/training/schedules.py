"""Learning-rate schedules of the training loop, chosen by a model's registry training defaults.

Registry training keys (attn_tf/models/registry.py, `ModelSpec.training`):
  schedule: "constant" (the classifiers' default: Adam at --learning-rate),
            "cosine" (the seq2seq default: cosine decay to 5% of the rate over the run),
            "linear" (BERT's fine-tuning recipe: warm-up, then linear decay to 0 at the last step).
  warmup:   fraction of the run's steps spent warming up linearly from ~0 to --learning-rate
            (at most 1,000 steps); none when absent.

The schedule is a function of the optimizer's iteration count only, so a resumed run (which restores
that count) continues on the same curve.
"""

import keras

SCHEDULES = ("constant", "cosine", "linear")
MAX_WARMUP_STEPS = 1000
COSINE_FLOOR = 0.05  # cosine decay ends at 5% of the peak rate


@keras.saving.register_keras_serializable(package="attn_tf")
class LinearWarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then linear decay to 0 at `total_steps`.

    The schedule of BERT fine-tuning (Devlin et al. 2019; Hugging Face's `get_linear_schedule_with_warmup`).
    Step `s` (0-based optimizer iteration) gets `peak * (s + 1) / warmup_steps` during warm-up, so the first
    update is not a zero step.

    Args:
      peak: the learning rate at the end of the warm-up.
      total_steps: steps of the whole run; the rate is 0 from here on.
      warmup_steps: steps of the warm-up (0: start at `peak`).
    """

    def __init__(self, peak, total_steps, warmup_steps=0):
        self.peak, self.total_steps, self.warmup_steps = float(peak), int(total_steps), int(warmup_steps)

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        warm = self.peak * (step + 1.0) / max(self.warmup_steps, 1)
        decay_span = max(self.total_steps - self.warmup_steps, 1)
        decay = self.peak * ops.maximum(0.0, (self.total_steps - step) / decay_span)
        return ops.where(step < self.warmup_steps, warm, ops.minimum(decay, self.peak))

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


def learning_rate(config, total_steps, default="constant"):
    """The learning rate (a float or a schedule) of a run.

    Args:
      config: the run's config (`model`, `learning_rate`, the dataset keys the registry reads).
      total_steps: epochs x batches per epoch (or --max-steps if smaller); a schedule needs it, and
        without it (None or 0) the rate is constant.
      default: the schedule when the model's registry entry names none (the task's default).

    Returns:
      `config["learning_rate"]` as a float, or a `keras.optimizers.schedules.LearningRateSchedule`.
    """
    from attn_tf.errors import UsageError
    from attn_tf.models import registry

    lr = float(config["learning_rate"])
    defaults = registry.get(config["model"]).training_defaults(config)
    schedule = defaults.get("schedule", default)
    if schedule not in SCHEDULES:
        raise UsageError("unknown learning-rate schedule %r in the registry entry of %r; use one of %s"
                         % (schedule, config["model"], ", ".join(SCHEDULES)))
    if schedule == "constant" or not total_steps:
        return lr
    fraction = defaults.get("warmup")
    warmup = max(1, min(MAX_WARMUP_STEPS, int(total_steps * fraction))) if fraction else 0
    if schedule == "linear":
        return LinearWarmupDecay(lr, total_steps, warmup)
    if warmup:
        return keras.optimizers.schedules.CosineDecay(
            lr * 0.01, decay_steps=max(total_steps - warmup, 1), alpha=COSINE_FLOOR, warmup_target=lr,
            warmup_steps=warmup)
    return keras.optimizers.schedules.CosineDecay(lr, decay_steps=total_steps, alpha=COSINE_FLOOR)
