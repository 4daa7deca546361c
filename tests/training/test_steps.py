"""The train and eval steps: class weights raise a rare class's recall, soft targets train,
and the per-class sums give recall and balanced accuracy."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tftransfer import runtime
from tftransfer.runtime import Precision
from tftransfer.training import optimization, steps


def _gaussians(counts, seed):
  """Two overlapping 2-D Gaussian classes: (float32 features [N, 2], int32 labels [N])."""
  rng = np.random.default_rng(seed)
  features = np.concatenate([rng.normal(mean, 1.0, (count, 2))
                             for mean, count in zip((0.0, 1.5), counts)]).astype(np.float32)
  labels = np.repeat(np.arange(2), counts).astype(np.int32)
  return features, labels


def _train(class_weights, *, soft=False):
  """A linear classifier trained by the real train loop on 400 + 20 examples."""
  strategy = tf.distribute.get_strategy()
  with runtime.seeded(0):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
  optimizer = optimization.build_optimizer(
      name='sgd', learning_rate=0.1, weight_decay=0.0, momentum=0.9,
      precision=Precision.FLOAT32, variables=model.trainable_variables)
  loop = steps.make_train_loop(strategy, model, model.trainable_variables, optimizer,
                               global_batch_size=32, num_classes=2, label_smoothing=0.0,
                               jit_compile=False, class_weights=class_weights)
  features, labels = _gaussians((400, 20), seed=1)
  targets = np.eye(2, dtype=np.float32)[labels] if soft else labels
  batches = tf.data.Dataset.from_tensor_slices((features, targets)).shuffle(
      420, seed=0).repeat().batch(32, drop_remainder=True)
  totals = steps.Sums.from_vector(loop(iter(batches), tf.constant(400)))
  return model, totals


def _recall(model):
  features, labels = _gaussians((2000, 2000), seed=2)
  predicted = np.argmax(model(features).numpy(), axis=-1)
  return [float(np.mean(predicted[labels == c] == c)) for c in (0, 1)]


def test_balanced_class_weights_raise_the_rare_class_recall():
  plain, _ = _train(None)
  weighted, _ = _train(np.array([420 / 800, 420 / 40]))  # 'balanced' for 400 and 20
  plain_recall, weighted_recall = _recall(plain), _recall(weighted)
  # Measured: rare-class recall 0.536 unweighted, 0.868 weighted (common 0.983 and 0.865):
  # balanced accuracy 0.760 -> 0.867.
  assert weighted_recall[1] > plain_recall[1] + 0.2, (plain_recall, weighted_recall)
  assert np.mean(weighted_recall) > np.mean(plain_recall) + 0.05


def test_unit_weights_and_one_hot_targets_change_nothing():
  reference, reference_sums = _train(None)
  for model, sums in (_train(np.ones(2)), _train(None, soft=True)):
    for a, b in zip(model.weights, reference.weights):
      np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    assert sums.count == reference_sums.count == 400 * 32
    assert sums.loss == pytest.approx(reference_sums.loss, rel=1e-5)


def test_eval_sums_count_per_class():
  logits = tf.constant([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 2.0, 0.0], [2.0, 0.0, 0.0]])
  labels = tf.constant([0, 1, 0, 0])
  vector = steps.batch_sums(tf.ones([4]), logits, labels, num_classes=3)
  sums = steps.Sums.from_vector(vector, num_classes=3)
  assert (sums.loss, sums.correct, sums.count) == (4.0, 3.0, 4.0)
  assert sums.class_count.tolist() == [3, 1, 0]
  np.testing.assert_allclose(sums.recall[:2], [2 / 3, 1.0])
  assert np.isnan(sums.recall[2])
  assert sums.balanced_accuracy == pytest.approx((2 / 3 + 1.0) / 2)  # class 2 has no examples
  total = sums.plus(sums)
  assert total.class_correct.tolist() == [4, 2, 0] and total.accuracy == 0.75
