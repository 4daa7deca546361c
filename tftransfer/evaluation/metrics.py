"""Classification metrics from predicted scores, and the confusion-matrix PNG.

metrics.json holds top-1 (also as `accuracy`; top-5 when there are more than 5 classes),
balanced accuracy, macro F1, per-class precision, recall, F1 and support, and the confusion
matrix with its class names.
"""

import os
from typing import Iterable

from matplotlib.figure import Figure
import numpy as np

from tftransfer import errors, files

# The PNG names every cell's count up to this many classes; beyond, the numbers would overlap.
MAX_ANNOTATED_CLASSES = 40


def classification_metrics(batches: Iterable[tuple[np.ndarray, np.ndarray]],
                           class_names: tuple[str, ...]) -> dict:
  """Metrics of batches of (scores [B, num_classes], int labels [B]).

  Scores may be logits or probabilities: only their order matters. As in tf.math.in_top_k,
  classes tied with the true class do not push it out of the top 5. A class that is never
  predicted has precision 0 (and likewise recall for a class without examples).

  Class names are written as text the one way labels.txt holds them (files.text_name).

  Raises:
    ValueError: no examples.
  """
  class_names = tuple(files.text_name(name) for name in class_names)
  num_classes = len(class_names)
  confusion = np.zeros((num_classes, num_classes), np.int64)
  top5_correct = 0
  for scores, labels in batches:
    np.add.at(confusion, (labels, scores.argmax(axis=-1)), 1)
    true_scores = scores[np.arange(len(labels)), labels]
    top5_correct += int(np.sum((scores > true_scores[:, None]).sum(axis=-1) < 5))
  total = int(confusion.sum())
  if not total:
    raise errors.InvalidValueError('The validation split is empty: nothing to evaluate.')
  true_positives = np.diag(confusion).astype(np.float64)
  predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)
  precision = np.divide(true_positives, predicted, out=np.zeros(num_classes),
                        where=predicted > 0)
  recall = np.divide(true_positives, support, out=np.zeros(num_classes), where=support > 0)
  f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(num_classes),
                 where=precision + recall > 0)
  metrics = {
      'num_examples': total,
      'top1_accuracy': round(float(true_positives.sum() / total), 5),
      'accuracy': round(float(true_positives.sum() / total), 5),  # the same, by its usual name
      # Mean recall over the classes with examples (sklearn's balanced_accuracy_score).
      'balanced_accuracy': round(float(recall[support > 0].mean()), 5),
      'macro_f1': round(float(f1.mean()), 5),
      'per_class': {
          name: {'precision': round(float(precision[i]), 5),
                 'recall': round(float(recall[i]), 5), 'f1': round(float(f1[i]), 5),
                 'support': int(support[i])}
          for i, name in enumerate(class_names)},
      'confusion_matrix': {'rows': 'true class', 'columns': 'predicted class',
                           'class_names': list(class_names), 'counts': confusion.tolist()},
  }
  if num_classes > 5:
    metrics['top5_accuracy'] = round(top5_correct / total, 5)
  return metrics


def plot_confusion_matrix(metrics: dict, path: str, *, title: str) -> None:
  """Writes the confusion matrix as a PNG: class names on both axes, counts in the cells."""
  confusion_matrix_figure(metrics, title=title).savefig(path)


def confusion_matrix_figure(metrics: dict, *, title: str) -> Figure:
  """The confusion matrix drawn: class names on both axes, counts in the cells."""
  names = metrics['confusion_matrix']['class_names']
  counts = np.asarray(metrics['confusion_matrix']['counts'])
  side = max(4.0, 0.5 * len(names) + 2.5)
  figure = Figure(figsize=(side + 1.5, side), dpi=110, layout='constrained')
  axes = figure.subplots()
  cells = axes.imshow(counts, cmap='Blues')
  # Class names as they are: a '$' in one must not start matplotlib's math mode.
  axes.set_xticks(range(len(names)), names, rotation=45, ha='right', parse_math=False)
  axes.set_yticks(range(len(names)), names, parse_math=False)
  axes.set_xlabel('predicted class')
  axes.set_ylabel('true class')
  axes.set_title(f'{title}\ntop-1 accuracy {metrics["top1_accuracy"]:.3f} on '
                 f'{metrics["num_examples"]} images', fontsize=9)
  if len(names) <= MAX_ANNOTATED_CLASSES:
    dark = counts.max() / 2
    for (row, column), count in np.ndenumerate(counts):
      axes.text(column, row, str(count), ha='center', va='center', fontsize=8,
                color='white' if count > dark else 'black')
  figure.colorbar(cells, ax=axes, shrink=0.8, label='images')
  return figure


def write_report(output_dir: str, metrics: dict, *, title: str) -> None:
  """Writes output_dir/metrics.json and output_dir/confusion_matrix.png."""
  os.makedirs(output_dir, exist_ok=True)
  files.write_json(os.path.join(output_dir, 'metrics.json'), metrics)
  plot_confusion_matrix(metrics, os.path.join(output_dir, 'confusion_matrix.png'),
                        title=title)
