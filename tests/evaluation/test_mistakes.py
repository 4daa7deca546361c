"""Worst mistakes, confused pairs and the classes a large confusion matrix keeps."""

import numpy as np

from tftransfer.evaluation import mistakes


def test_worst_mistakes_are_the_misclassified_by_true_class_loss():
  probabilities = np.asarray([
      [0.9, 0.05, 0.05],  # label 0: right
      [0.6, 0.3, 0.1],    # label 1: wrong, p(true) 0.3
      [0.1, 0.1, 0.8],    # label 0: wrong, p(true) 0.1
      [0.2, 0.7, 0.1],    # label 1: right, loss above example 1's but right
      [0.45, 0.1, 0.45],  # label 1: wrong, p(true) 0.1, ties example 2: lower index first
  ])
  labels = np.asarray([0, 1, 0, 1, 1])
  np.testing.assert_allclose(mistakes.losses(probabilities, labels),
                             -np.log([0.9, 0.3, 0.1, 0.7, 0.1]))
  assert mistakes.worst_mistakes(probabilities, labels, 10).tolist() == [2, 4, 1]
  assert mistakes.worst_mistakes(probabilities, labels, 2).tolist() == [2, 4]
  assert mistakes.worst_mistakes(probabilities, labels, 0).tolist() == []


def test_confused_pairs_and_their_examples():
  confusion = np.asarray([[5, 3, 0], [1, 4, 0], [3, 0, 9]])
  assert mistakes.confused_pairs(confusion, 10) == [(0, 1, 3), (2, 0, 3), (1, 0, 1)]
  assert mistakes.confused_pairs(confusion, 1) == [(0, 1, 3)]
  probabilities = np.asarray([[0.2, 0.8], [0.4, 0.6], [0.9, 0.1], [0.05, 0.95]])
  labels = np.asarray([0, 0, 0, 0])
  assert mistakes.pair_examples(probabilities, labels, 0, 1, 2).tolist() == [3, 0]


def test_a_large_confusion_matrix_keeps_the_classes_of_the_most_confused_pairs():
  confusion = np.eye(120, dtype=np.int64) * 10
  confusion[7, 99] = 6
  confusion[50, 3] = 5
  confusion[3, 7] = 4
  assert mistakes.matrix_classes(confusion, 4).tolist() == [3, 7, 50, 99]
  assert mistakes.matrix_classes(confusion[:10, :10], 30).tolist() == list(range(10))
