"""Optimizers and learning-rate schedules of the training phases."""

import math

import keras
import tensorflow as tf


class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
  """Linear warm-up from 0 to `peak_lr` over `warmup_fraction` of the steps, then either a
  half cosine down to 0 at `total_steps` (Loshchilov & Hutter, 2017; with warm-up, Goyal et
  al., 2017) or, with decay='constant', `peak_lr` to the end.

  The length can change while training (`set_total_steps`), as a time-budgeted run does once
  it has measured its steps; it is a variable the train step reads, not a traced constant,
  and not part of checkpoints (the length is the run's plan's: phases.follow).
  """

  def __init__(self, *, peak_lr: float, total_steps: int, warmup_fraction: float,
               decay: str = 'cosine'):
    self.peak_lr = float(peak_lr)
    self.warmup_fraction = float(warmup_fraction)
    self.decay = decay
    self._total_steps = tf.Variable(float(max(total_steps, 1)), trainable=False,
                                    dtype=tf.float32, name='schedule_total_steps')

  def set_total_steps(self, total_steps: int) -> None:
    self._total_steps.assign(float(max(total_steps, 1)))

  @property
  def total_steps(self) -> int:
    return int(self._total_steps.numpy())

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    total = self._total_steps
    warmup = tf.floor(total * self.warmup_fraction)
    rising = self.peak_lr * step / tf.maximum(warmup, 1.0)
    if self.decay == 'constant':
      after = tf.constant(self.peak_lr, tf.float32)
    else:
      progress = tf.clip_by_value((step - warmup) / tf.maximum(total - warmup, 1.0), 0.0, 1.0)
      after = 0.5 * self.peak_lr * (1.0 + tf.cos(math.pi * progress))
    return tf.where(step < warmup, rising, after)

  def get_config(self):
    return {'peak_lr': self.peak_lr, 'total_steps': self.total_steps,
            'warmup_fraction': self.warmup_fraction, 'decay': self.decay}


def warmup_cosine(*, peak_lr: float, total_steps: int, warmup_fraction: float) -> WarmupSchedule:
  """Linear warm-up from 0 to `peak_lr` over a fraction of the steps, then cosine to 0."""
  return WarmupSchedule(peak_lr=peak_lr, total_steps=total_steps,
                        warmup_fraction=warmup_fraction)


def build_optimizer(*, name: str, learning_rate, weight_decay: float, momentum: float,
                    precision: str, variables, nesterov: bool = True
                    ) -> keras.optimizers.Optimizer:
  """Builds the optimizer for `variables` (so its state exists before a checkpoint restore).

  Weight decay skips biases and normalisation scales/offsets (all variables of rank <= 1),
  the usual practice for fine-tuning. Under float16 the optimizer scales the loss
  dynamically; bfloat16 has float32's range and needs no scaling.
  """
  if name == 'adamw':
    optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
  else:  # 'sgd' (config.OPTIMIZERS; the config is validated)
    optimizer = keras.optimizers.SGD(learning_rate, momentum=momentum, nesterov=nesterov,
                                     weight_decay=weight_decay or None)
  if weight_decay:
    optimizer.exclude_from_weight_decay(var_list=[v for v in variables if len(v.shape) <= 1])
  if precision == 'float16':
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  optimizer.build(variables)
  return optimizer
