"""BatchNorm statistics re-estimated on training data before a model is evaluated.

Keras BatchNormalization keeps moving averages of batch statistics with momentum 0.99: after
a few hundred steps from random initialisation they still hold mostly their initial values
(mean 0, variance 1), and in inference mode the network then predicts one class for every
image, however well it trains. When BatchNorm layers train (weights='none', or
train.freeze_batchnorm=false), the statistics are recomputed before every evaluation as the
plain average of the batch statistics of `num_batches` training batches ("precise BN":
Wu & Johnson, 2021, "Rethinking 'Batch' in BatchNorm"; pycls). Training itself uses batch
statistics and is not affected; evaluation, the selected checkpoint and exports are.
"""

from typing import Iterator

import keras
import tensorflow as tf

from tftransfer import workdir


def trainable_batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
  """The BatchNormalization layers of `model` (nested models included) that train, and so
  update their moving statistics in training mode."""
  found, stack = [], [model]
  while stack:
    layer = stack.pop()
    if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable:
      found.append(layer)
    stack.extend(getattr(layer, 'layers', ()))
  return found


def reestimate(model: keras.Model, batches: Iterator, num_batches: int) -> int:
  """Sets every trainable BatchNormalization layer's moving mean and variance of `model` to
  the average of its batch statistics over `num_batches` batches of `batches`.

  Each forward pass in training mode updates moving = moving * m + batch * (1 - m); with
  m = i / (i + 1) at the i-th batch (0-based) the result is the mean over the batches.

  Args:
    model: images -> logits, as trained.
    batches: an iterator of (float32 images [B, S, S, 3], labels).
    num_batches: how many batches to average over.

  Returns:
    The number of layers re-estimated (0: nothing to do, nothing run).
  """
  layers = trainable_batchnorm_layers(model)
  if not layers or num_batches < 1:
    return 0
  saved = [layer.momentum for layer in layers]
  # Training-mode passes draw dropout masks: they must not move the run's random stream.
  random_states = [(state, state.numpy()) for state in workdir.random_states(model)]

  @tf.function(reduce_retracing=True)
  def forward(images, momentum):
    # A tensor, so the traced pass reads each call's momentum (and nothing is tracked).
    for layer in layers:
      layer.momentum = momentum
    try:
      model(images, training=True)
    finally:
      for layer, value in zip(layers, saved):
        layer.momentum = value

  for index in range(num_batches):
    images, _ = next(batches)
    forward(images, tf.constant(index / (index + 1), tf.float32))
  for state, value in random_states:
    state.assign(value)
  return len(layers)
