"""Which predictions went worst: the misclassified images by loss, the most confused class
pairs and examples of each (as fastai's `ClassificationInterpretation.top_losses` and
`most_confused` do).

The loss is the cross-entropy of the true class, -log p(true class), without the label
smoothing training may use: how surprised the model is by the right answer.
"""

import numpy as np


def losses(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """float64 [N]: -log of each example's true-class probability (probabilities [N, K])."""
  true = np.asarray(probabilities, np.float64)[np.arange(len(labels)), labels]
  return -np.log(np.maximum(true, np.finfo(np.float64).tiny))


def worst_mistakes(probabilities: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
  """Indices of up to `count` misclassified examples, highest loss first (ties: lower index).

  Args:
    probabilities: float [N, num_classes].
    labels: int [N].
    count: how many to return at most.

  Returns:
    int64 [min(count, number misclassified)].
  """
  wrong = np.flatnonzero(np.argmax(probabilities, axis=-1) != labels)
  order = np.argsort(-losses(probabilities, labels)[wrong], kind='stable')
  return wrong[order[:count]]


def confused_pairs(confusion: np.ndarray, count: int) -> list[tuple[int, int, int]]:
  """The `count` most frequent (true class, predicted class, images) with true != predicted
  and at least one image, most images first (ties: lower true, then predicted class)."""
  off_diagonal = np.asarray(confusion).copy()
  np.fill_diagonal(off_diagonal, 0)
  flat = np.argsort(-off_diagonal, axis=None, kind='stable')[:count]
  pairs = [(int(true), int(predicted), int(off_diagonal[true, predicted]))
           for true, predicted in zip(*np.unravel_index(flat, off_diagonal.shape))]
  return [pair for pair in pairs if pair[2] > 0]


def pair_examples(probabilities: np.ndarray, labels: np.ndarray, true: int, predicted: int,
                  count: int) -> np.ndarray:
  """Indices of up to `count` examples of class `true` predicted as `predicted`, highest
  loss first."""
  predictions = np.argmax(probabilities, axis=-1)
  chosen = np.flatnonzero((labels == true) & (predictions == predicted))
  order = np.argsort(-losses(probabilities[chosen], labels[chosen]), kind='stable')
  return chosen[order[:count]]


def matrix_classes(confusion: np.ndarray, max_classes: int) -> np.ndarray:
  """The classes a readable confusion matrix shows: all when there are at most
  `max_classes`, else those of the most confused pairs (in class order), up to max_classes."""
  num_classes = len(confusion)
  if num_classes <= max_classes:
    return np.arange(num_classes)
  chosen: list[int] = []
  for true, predicted, _ in confused_pairs(confusion, num_classes * num_classes):
    for label in (true, predicted):
      if label not in chosen and len(chosen) < max_classes:
        chosen.append(label)
    if len(chosen) >= max_classes:
      break
  return np.sort(np.asarray(chosen, np.int64))
