"""What a step computes: the distributed train and eval steps, and the sums both report.

Both steps return `Sums` over their examples (cross-entropy summed, correct top-1
predictions, examples), all-reduced across replicas and workers as one vector, so an epoch's
mean loss and accuracy are exact whatever the number of replicas. When to run them, save or
stop is the loop's business (loop.py); what a step computes is only here.

Multi-label (several labels an image): the loss is each label's sigmoid cross-entropy,
averaged over the labels; 'correct' is an image whose every label is right at 0.5; and
evaluation gathers every example's logits (`make_scores_step`, `Scores`), because average
precision, which selects the epoch, is no sum.

The loop is `strategy.run` inside a tf.function rather than `model.fit`, which fails under
MultiWorkerMirroredStrategy in Keras 3.15 (keras-team/keras#20585), so one code path serves
one device, mirrored GPUs, several workers and TPUs.
"""

import dataclasses
import math
from typing import Callable, Iterable

import keras
import numpy as np
import tensorflow as tf

from tftransfer import multilabel

SUM = tf.distribute.ReduceOp.SUM


@dataclasses.dataclass(frozen=True)
class Sums:
  """Totals over a set of examples; evaluation also counts them per true class."""
  loss: float  # cross-entropy summed over the examples (nats)
  correct: float  # examples whose top-1 prediction is the label
  count: float  # examples
  class_correct: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
  class_count: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))

  @classmethod
  def zero(cls, num_classes: int = 0) -> 'Sums':
    return cls(0.0, 0.0, 0.0, np.zeros(num_classes), np.zeros(num_classes))

  @classmethod
  def from_vector(cls, vector, num_classes: int = 0) -> 'Sums':
    """From the float32 [3 + 2 * num_classes] vector a step returns: loss, correct, count,
    then correct and count per class (num_classes = 0 for training steps)."""
    values = np.asarray(vector, np.float64)
    return cls(*(float(value) for value in values[:3]), values[3:3 + num_classes],
               values[3 + num_classes:])

  def plus(self, other: 'Sums') -> 'Sums':
    return Sums(self.loss + other.loss, self.correct + other.correct, self.count + other.count,
                self.class_correct + other.class_correct, self.class_count + other.class_count)

  @property
  def mean_loss(self) -> float:
    return self.loss / self.count if self.count else math.nan

  @property
  def accuracy(self) -> float:
    return self.correct / self.count if self.count else math.nan

  @property
  def recall(self) -> np.ndarray:
    """float64 [num_classes]: the fraction of each class's examples predicted right (NaN for
    a class without examples)."""
    with np.errstate(invalid='ignore', divide='ignore'):
      return self.class_correct / self.class_count

  @property
  def balanced_accuracy(self) -> float:
    """The mean recall over the classes that have examples (as sklearn's
    balanced_accuracy_score); NaN without per-class counts."""
    present = self.class_count > 0
    return float(np.mean(self.recall[present])) if present.any() else math.nan


def batch_sums(per_example_loss: tf.Tensor, logits: tf.Tensor, labels: tf.Tensor,
               num_classes: int = 0, *, multi_label: bool = False) -> tf.Tensor:
  """A batch's Sums as the float32 vector steps all-reduce (see Sums.from_vector).

  Args:
    per_example_loss: float32 [B].
    logits: float32 [B, C].
    labels: int32 [B], or float32 [B, C] soft targets (mixup, cutmix), whose argmax counts;
      multi-label: float32 [B, C] targets, each label counting at 0.5.
    num_classes: C to also count per class (evaluation), or 0.
    multi_label: an example is correct when every label is, at 0.5.
  """
  if multi_label:
    right = tf.equal(logits >= 0.0, labels >= 0.5)  # sigmoid(logit) >= 0.5 <=> logit >= 0
    correct = tf.cast(tf.reduce_all(right, axis=-1), tf.float32)
    return tf.stack([tf.reduce_sum(per_example_loss), tf.reduce_sum(correct),
                     tf.cast(tf.shape(labels)[0], tf.float32)])
  if labels.shape.rank == 2:
    labels = tf.argmax(labels, axis=-1, output_type=tf.int32)
  correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels),
                    tf.float32)
  sums = [tf.stack([tf.reduce_sum(per_example_loss), tf.reduce_sum(correct),
                    tf.cast(tf.size(labels), tf.float32)])]
  if num_classes:
    one_hot = tf.one_hot(labels, num_classes)
    sums += [tf.reduce_sum(one_hot * correct[:, None], axis=0), tf.reduce_sum(one_hot, axis=0)]
  return tf.concat(sums, axis=0)


def make_train_loop(strategy: tf.distribute.Strategy, forward: keras.Model, variables,
                    optimizer: keras.optimizers.Optimizer, *, global_batch_size: int,
                    num_classes: int, label_smoothing: float, jit_compile: bool,
                    class_weights: np.ndarray | None = None, multi_label: bool = False
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
    global_batch_size: the loss is a sum over the replica's examples divided by the global
      batch size, so summing the replicas' gradients gives the global mean's gradient, with
      or without class weights.
    num_classes: width of the one-hot targets.
    label_smoothing: of the cross-entropy, 0 = none; applied to soft targets too.
    jit_compile: XLA-compile the per-replica step.
    class_weights: float [num_classes] multiplying each example's loss by its class's weight
      (for soft targets, the targets' mix of weights); multi-label: each label's weight of
      its positives (rules.positive_weights); None = all 1.
    multi_label: sigmoid cross-entropy per label, averaged over the labels, instead of the
      softmax's.

  Batches are (inputs, labels) with int32 labels [B] or float32 soft targets [B, num_classes]
  (mixup and cutmix).
  """
  loss_fn = keras.losses.CategoricalCrossentropy(
      from_logits=True, label_smoothing=label_smoothing, reduction=None)
  weights = None if class_weights is None else tf.constant(class_weights, tf.float32)

  def losses(targets, logits):
    """(the loss of each example as it trains, and as it is reported)."""
    if not multi_label:
      per_example = loss_fn(targets, logits)
      return (per_example if weights is None else
              per_example * tf.linalg.matvec(targets, weights)), per_example
    smoothed = targets * (1 - label_smoothing) + 0.5 * label_smoothing
    plain = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(smoothed, logits), -1)
    if weights is None:
      return plain, plain
    weighted = tf.nn.weighted_cross_entropy_with_logits(smoothed, logits, weights)
    return tf.reduce_mean(weighted, axis=-1), plain

  def step_fn(images, labels):
    targets = labels if labels.shape.rank == 2 else tf.one_hot(labels, num_classes)
    with tf.GradientTape() as tape:
      logits = forward(images, training=True)
      weighted, per_example = losses(targets, logits)
      loss = tf.nn.compute_average_loss(weighted, global_batch_size=global_batch_size)
      scaled_loss = optimizer.scale_loss(loss)
    optimizer.apply(tape.gradient(scaled_loss, variables), variables)
    return batch_sums(per_example, logits, labels, multi_label=multi_label)

  step_fn = tf.function(step_fn, jit_compile=jit_compile)

  @tf.function
  def loop(iterator, num_steps):
    totals = tf.zeros([3])
    for _ in tf.range(num_steps):
      images, labels = next(iterator)
      totals += strategy.reduce(SUM, strategy.run(step_fn, args=(images, labels)), axis=None)
    return totals

  return loop


def make_eval_step(strategy: tf.distribute.Strategy, forward: keras.Model,
                   num_classes: int) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
  """Builds `eval_step(inputs, labels)`: a tf.function returning one distributed batch's Sums
  vector (float32 [3 + 2 * num_classes], per-class counts included) of `forward` in inference
  mode, the loss without label smoothing or class weights."""
  size = 3 + 2 * num_classes

  def replica_sums(images, labels):
    def sums():
      logits = forward(images, training=False)
      per_example = keras.losses.sparse_categorical_crossentropy(labels, logits,
                                                                 from_logits=True)
      return batch_sums(per_example, logits, labels, num_classes)
    # When the last batch is split over replicas some get none; convolutions reject an
    # empty batch, so such a replica contributes zeros.
    return tf.cond(tf.size(labels) > 0, sums, lambda: tf.zeros([size]))

  @tf.function(reduce_retracing=True)
  def eval_step(images, labels):
    return strategy.reduce(SUM, strategy.run(replica_sums, args=(images, labels)), axis=None)

  return eval_step


def evaluate(eval_step: Callable[[tf.Tensor, tf.Tensor], tf.Tensor], batches,
             num_classes: int) -> Sums:
  """Sums of `eval_step` (built for `num_classes`) over one pass of distributed `batches`,
  each example counted once."""
  totals = Sums.zero(num_classes)
  for inputs, labels in batches:
    totals = totals.plus(Sums.from_vector(eval_step(inputs, labels), num_classes))
  return totals


@dataclasses.dataclass(frozen=True)
class Scores:
  """A multi-label evaluation: every example's probabilities and targets, and what the
  metrics rows report of them (the attributes Sums has, plus mean average precision)."""
  probabilities: np.ndarray  # float32 [N, num_labels], sigmoid of the logits
  targets: np.ndarray  # float32 [N, num_labels], 0/1
  loss: float  # sigmoid cross-entropy, averaged over labels, summed over examples

  @property
  def count(self) -> float:
    return float(len(self.targets))

  @property
  def mean_loss(self) -> float:
    return self.loss / self.count if self.count else math.nan

  @property
  def accuracy(self) -> float:
    """Exact match: images whose every label is right at 0.5."""
    right = (self.probabilities >= 0.5) == (self.targets >= 0.5)
    return float(np.mean(np.all(right, axis=1))) if self.count else math.nan

  @property
  def recall(self) -> np.ndarray:
    """float64 [num_labels]: each label's positives found at 0.5 (NaN without positives)."""
    positive = self.targets >= 0.5
    with np.errstate(invalid='ignore', divide='ignore'):
      return ((self.probabilities >= 0.5) & positive).sum(0) / positive.sum(0)

  @property
  def balanced_accuracy(self) -> float:
    recall = self.recall
    return float(np.nanmean(recall)) if np.isfinite(recall).any() else math.nan

  @property
  def mean_average_precision(self) -> float:
    return multilabel.average_precision(self.probabilities, self.targets)[0]


def make_scores_step(strategy: tf.distribute.Strategy, forward: keras.Model,
                     num_classes: int) -> Callable[[tf.Tensor, tf.Tensor], tuple]:
  """Builds `scores_step(inputs, targets)`: a tf.function returning one distributed batch's
  logits and targets (float32 [B, num_classes] each), gathered from every replica and worker,
  for multi-label evaluation."""

  def replica_logits(images):
    return tf.cond(tf.shape(images)[0] > 0, lambda: forward(images, training=False),
                   lambda: tf.zeros([0, num_classes]))

  @tf.function(reduce_retracing=True)
  def scores_step(images, targets):
    logits = strategy.run(replica_logits, args=(images,))
    return strategy.gather(logits, axis=0), strategy.gather(targets, axis=0)

  return scores_step


def evaluate_scores(scores_step: Callable, batches) -> Scores:
  """Scores of `scores_step` over one pass of distributed `batches`."""
  logits, targets = [], []
  for inputs, batch_targets in batches:
    batch_logits, gathered = scores_step(inputs, batch_targets)
    logits.append(batch_logits.numpy())
    targets.append(gathered.numpy())
  logits, targets = np.concatenate(logits), np.concatenate(targets).astype(np.float32)
  loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(targets, logits), -1)
  return Scores(tf.sigmoid(logits).numpy(), targets, float(tf.reduce_sum(loss)))
