"""What a step computes: the distributed train and eval steps, and the sums both report.

Both steps return `Sums` over their examples (cross-entropy summed, correct top-1
predictions, examples), all-reduced across replicas and workers as one vector, so an epoch's
mean loss and accuracy are exact whatever the number of replicas. When to run them, save or
stop is the loop's business (loop.py); what a step computes is only here.

The loop is `strategy.run` inside a tf.function rather than `model.fit`, which fails under
MultiWorkerMirroredStrategy in Keras 3.15 (keras-team/keras#20585), so one code path serves
one device, mirrored GPUs, several workers and TPUs.
"""

import math
from typing import Callable, Iterable, NamedTuple

import keras
import numpy as np
import tensorflow as tf

SUM = tf.distribute.ReduceOp.SUM


class Sums(NamedTuple):
  """Totals over a set of examples."""
  loss: float  # cross-entropy summed over the examples (nats)
  correct: float  # examples whose top-1 prediction is the label
  count: float  # examples

  @classmethod
  def zero(cls) -> 'Sums':
    return cls(0.0, 0.0, 0.0)

  @classmethod
  def from_vector(cls, vector) -> 'Sums':
    """From the float32 [3] vector a step returns (loss, correct, count)."""
    return cls(*(float(value) for value in np.asarray(vector)))

  def plus(self, other: 'Sums') -> 'Sums':
    """Element-wise sum (`+` would concatenate the tuples)."""
    return Sums(*(a + b for a, b in zip(self, other)))

  @property
  def mean_loss(self) -> float:
    return self.loss / self.count if self.count else math.nan

  @property
  def accuracy(self) -> float:
    return self.correct / self.count if self.count else math.nan


def batch_sums(per_example_loss: tf.Tensor, logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
  """A batch's Sums as the float32 [3] vector steps all-reduce.

  Args:
    per_example_loss: float32 [B].
    logits: float32 [B, num_classes].
    labels: int32 [B].
  """
  correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels)
  return tf.stack([tf.reduce_sum(per_example_loss), tf.reduce_sum(tf.cast(correct, tf.float32)),
                   tf.cast(tf.size(labels), tf.float32)])


def make_train_loop(strategy: tf.distribute.Strategy, forward: keras.Model, variables,
                    optimizer: keras.optimizers.Optimizer, *, global_batch_size: int,
                    num_classes: int, label_smoothing: float, jit_compile: bool
                    ) -> Callable[[Iterable, tf.Tensor], tf.Tensor]:
  """Builds `loop(iterator, num_steps)`: a tf.function running `num_steps` distributed
  training steps of `forward` on batches from `iterator`, returning their Sums as a float32
  [3] vector.

  Several steps per call keep Python out of the way of small models; the per-replica step
  alone is XLA-compiled when `jit_compile`, as Keras does for `model.fit`.

  Args:
    strategy: the run's tf.distribute strategy.
    forward: inputs (images or features) -> float32 logits [B, num_classes].
    variables: what the optimizer updates (forward's trainable variables).
    optimizer: built for `variables`.
    global_batch_size: the loss is a mean over the global batch, so summing the replicas'
      gradients gives the global mean's gradient.
    num_classes: width of the one-hot targets.
    label_smoothing: of the cross-entropy, 0 = none.
    jit_compile: XLA-compile the per-replica step.
  """
  loss_fn = keras.losses.CategoricalCrossentropy(
      from_logits=True, label_smoothing=label_smoothing, reduction=None)

  def step_fn(images, labels):
    with tf.GradientTape() as tape:
      logits = forward(images, training=True)
      per_example = loss_fn(tf.one_hot(labels, num_classes), logits)
      loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
      scaled_loss = optimizer.scale_loss(loss)
    optimizer.apply(tape.gradient(scaled_loss, variables), variables)
    return batch_sums(per_example, logits, labels)

  step_fn = tf.function(step_fn, jit_compile=jit_compile)

  @tf.function
  def loop(iterator, num_steps):
    totals = tf.zeros([3])
    for _ in tf.range(num_steps):
      images, labels = next(iterator)
      totals += strategy.reduce(SUM, strategy.run(step_fn, args=(images, labels)), axis=None)
    return totals

  return loop


def make_eval_step(strategy: tf.distribute.Strategy,
                   forward: keras.Model) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
  """Builds `eval_step(inputs, labels)`: a tf.function returning one distributed batch's Sums
  vector (float32 [3]) of `forward` in inference mode, the loss without label smoothing."""

  def replica_sums(images, labels):
    def sums():
      logits = forward(images, training=False)
      per_example = keras.losses.sparse_categorical_crossentropy(labels, logits,
                                                                 from_logits=True)
      return batch_sums(per_example, logits, labels)
    # When the last batch is split over replicas some get none; convolutions reject an
    # empty batch, so such a replica contributes zeros.
    return tf.cond(tf.size(labels) > 0, sums, lambda: tf.zeros([3]))

  @tf.function(reduce_retracing=True)
  def eval_step(images, labels):
    return strategy.reduce(SUM, strategy.run(replica_sums, args=(images, labels)), axis=None)

  return eval_step


def evaluate(eval_step: Callable[[tf.Tensor, tf.Tensor], tf.Tensor], batches) -> Sums:
  """Sums of `eval_step` over one pass of distributed `batches`, each example counted once."""
  totals = Sums.zero()
  for inputs, labels in batches:
    totals = totals.plus(Sums.from_vector(eval_step(inputs, labels)))
  return totals
