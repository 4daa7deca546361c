"""Optimizers and learning-rate schedules of the training phases."""

import keras

from tftransfer import errors


def warmup_cosine(*, peak_lr: float, total_steps: int,
                  warmup_fraction: float) -> keras.optimizers.schedules.LearningRateSchedule:
  """Linear warm-up from 0 to `peak_lr` over a fraction of the steps, then cosine to 0."""
  warmup_steps = int(total_steps * warmup_fraction)
  if not warmup_steps:
    return keras.optimizers.schedules.CosineDecay(peak_lr, decay_steps=max(total_steps, 1))
  return keras.optimizers.schedules.CosineDecay(
      0.0, decay_steps=max(total_steps - warmup_steps, 1), warmup_target=peak_lr,
      warmup_steps=warmup_steps)


def build_optimizer(*, name: str, learning_rate, weight_decay: float, momentum: float,
                    precision: str, variables) -> keras.optimizers.Optimizer:
  """Builds the optimizer for `variables` (so its state exists before a checkpoint restore).

  Weight decay skips biases and normalisation scales/offsets (all variables of rank <= 1),
  the usual practice for fine-tuning. Under float16 the optimizer scales the loss
  dynamically; bfloat16 has float32's range and needs no scaling.
  """
  if name == 'adamw':
    optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
  elif name == 'sgd':
    optimizer = keras.optimizers.SGD(learning_rate, momentum=momentum, nesterov=True,
                                     weight_decay=weight_decay or None)
  else:
    raise errors.InvalidValueError(
        f"Unknown config.train.optimizer={name!r}; valid: 'adamw', 'sgd'.")
  if weight_decay:
    optimizer.exclude_from_weight_decay(var_list=[v for v in variables if len(v.shape) <= 1])
  if precision == 'float16':
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  optimizer.build(variables)
  return optimizer
