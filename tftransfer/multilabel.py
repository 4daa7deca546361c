"""Scoring several labels an image: average precision, per-label thresholds, and the metrics
at those thresholds. Training selects epochs by it, chooses the thresholds with it at its
end, and evaluation, the report and the export's guard report it.

    average_precision(probabilities, targets)   macro and micro mean AP, per-label AP
                                                (scikit-learn's average_precision_score)
    choose_thresholds(probabilities, targets)   each label's F1-maximising threshold on the
                                                validation split, DEFAULT_THRESHOLD for labels
                                                with fewer than MIN_POSITIVES positives there
    at_thresholds(probabilities, targets, t)    precision, recall and F1 per label, micro and
                                                macro, and exact-match (subset) accuracy
    worst_label_errors(probabilities, targets, t, n)  the n costliest false positives and
                                                false negatives (the report shows them)

Arrays are float probabilities [N, num_labels] in [0, 1] and 0/1 targets of the same shape.
"""

import numpy as np
from sklearn import metrics as sk_metrics

# A label with fewer positives than this in the validation split keeps DEFAULT_THRESHOLD:
# the F1-maximising threshold of two or three examples is noise.
MIN_POSITIVES = 5
DEFAULT_THRESHOLD = 0.5
# No threshold goes below this: a label is not predicted for an image it scores under 5 %.
THRESHOLD_FLOOR = 0.05


def average_precision(probabilities: np.ndarray, targets: np.ndarray
                      ) -> tuple[float, float, np.ndarray]:
  """(macro mean AP over labels with positives, micro AP over every (image, label) pair,
  float64 [num_labels] AP per label, NaN for a label without positives)."""
  targets = np.asarray(targets) > 0.5
  per_label = np.full(targets.shape[1], np.nan)
  for label in range(targets.shape[1]):
    if targets[:, label].any():
      per_label[label] = sk_metrics.average_precision_score(targets[:, label],
                                                            probabilities[:, label])
  macro = float(np.nanmean(per_label)) if np.isfinite(per_label).any() else float('nan')
  micro = (float(sk_metrics.average_precision_score(targets.ravel(), probabilities.ravel()))
           if targets.any() else float('nan'))
  return macro, micro, per_label


def _best_threshold(scores: np.ndarray, positive: np.ndarray) -> float:
  """The threshold on `scores` maximising F1 of `positive` (midway between two scores)."""
  precision, recall, thresholds = sk_metrics.precision_recall_curve(positive, scores)
  f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
  best = int(np.argmax(f1))
  below = scores[scores < thresholds[best]]
  return float((thresholds[best] + below.max()) / 2 if below.size else thresholds[best])


def choose_thresholds(probabilities: np.ndarray, targets: np.ndarray) -> np.ndarray:
  """float64 [num_labels]: each label's F1-maximising threshold on these (validation)
  scores, at least THRESHOLD_FLOOR; DEFAULT_THRESHOLD for a label with fewer than
  MIN_POSITIVES positives (or no negatives)."""
  targets = np.asarray(targets) > 0.5
  thresholds = np.full(targets.shape[1], DEFAULT_THRESHOLD)
  for label in range(targets.shape[1]):
    positive = targets[:, label]
    if positive.sum() >= MIN_POSITIVES and not positive.all():
      thresholds[label] = max(_best_threshold(probabilities[:, label], positive),
                              THRESHOLD_FLOOR)
  return thresholds


def at_thresholds(probabilities: np.ndarray, targets: np.ndarray,
                  thresholds: np.ndarray) -> dict:
  """Precision, recall and F1 per label, micro (over every pair) and macro (the mean over
  labels with positives), and exact-match accuracy (every label of an image right), of
  predicting the labels at or above `thresholds`."""
  targets = np.asarray(targets) > 0.5
  predicted = probabilities >= np.asarray(thresholds)[None, :]
  true_positives = (predicted & targets).sum(axis=0).astype(np.float64)
  with np.errstate(invalid='ignore', divide='ignore'):
    precision = np.nan_to_num(true_positives / predicted.sum(axis=0))
    recall = true_positives / targets.sum(axis=0)
    f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
  present = targets.sum(axis=0) > 0
  tp, fp, fn = true_positives.sum(), (predicted & ~targets).sum(), (~predicted & targets).sum()
  micro_precision = float(tp / max(tp + fp, 1))
  micro_recall = float(tp / max(tp + fn, 1))
  return {
      'precision': precision, 'recall': np.nan_to_num(recall), 'f1': f1,
      'macro_precision': float(precision[present].mean()) if present.any() else 0.0,
      'macro_recall': float(recall[present].mean()) if present.any() else 0.0,
      'macro_f1': float(f1[present].mean()) if present.any() else 0.0,
      'micro_precision': micro_precision, 'micro_recall': micro_recall,
      'micro_f1': float(2 * micro_precision * micro_recall
                        / max(micro_precision + micro_recall, 1e-12)),
      'exact_match': float(np.mean(np.all(predicted == targets, axis=1))),
  }


def worst_label_errors(probabilities: np.ndarray, targets: np.ndarray,
                       thresholds: np.ndarray, count: int) -> list[tuple[int, int, str, float]]:
  """Up to `count` wrong (image, label) decisions at `thresholds`, highest loss first: a
  false positive (label predicted, not given) costs -log(1 - p), a false negative (given,
  not predicted) -log(p), the binary cross-entropy of that pair. Ties keep the lower image
  index, then label index.

  Returns:
    [(image index, label index, 'false positive' | 'false negative', loss)].
  """
  targets = np.asarray(targets) > 0.5
  probabilities = np.asarray(probabilities, np.float64)
  predicted = probabilities >= np.asarray(thresholds)[None, :]
  tiny = np.finfo(np.float64).tiny
  loss = np.where(targets, -np.log(np.maximum(probabilities, tiny)),
                  -np.log(np.maximum(1 - probabilities, tiny)))
  images, labels = np.nonzero(predicted != targets)  # row-major: image, then label order
  order = np.argsort(-loss[images, labels], kind='stable')[:count]
  return [(int(images[i]), int(labels[i]),
           'false negative' if targets[images[i], labels[i]] else 'false positive',
           float(loss[images[i], labels[i]])) for i in order]
