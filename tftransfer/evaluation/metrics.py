"""Classification metrics from predicted scores, and the confusion-matrix PNG.

metrics.json holds top-1 (also as `accuracy`; top-5 when there are more than 5 classes),
balanced accuracy, macro F1, per-class precision, recall, F1 and support, and the confusion
matrix with its class names.
"""

import os
from typing import Iterable

from matplotlib.figure import Figure
import numpy as np
from sklearn import metrics as sk_metrics

from tftransfer import errors, files, multilabel
from tftransfer.evaluation import mistakes

# The PNG names every cell's count up to this many classes; beyond, the numbers would overlap.
MAX_ANNOTATED_CLASSES = 40
# The PNG draws at most this many classes, those of the most confused pairs beyond: 250
# classes drew a 14,190 px image in 6 GB, 1,184 exceed matplotlib's 65,536 px (issue 27).
# metrics.json keeps every count.
MAX_PLOTTED_CLASSES = 60


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
  """The confusion matrix drawn: class names on both axes, counts in the cells; of more than
  MAX_PLOTTED_CLASSES classes only those of the most confused pairs (mistakes.matrix_classes),
  said in the title, so the figure stays readable and its size bounded."""
  all_names = metrics['confusion_matrix']['class_names']
  all_counts = np.asarray(metrics['confusion_matrix']['counts'])
  shown = mistakes.matrix_classes(all_counts, MAX_PLOTTED_CLASSES)
  names = [all_names[i] for i in shown]
  counts = all_counts[np.ix_(shown, shown)]
  subset = (f'; the {len(shown)} classes of the most confused pairs of {len(all_names)} '
            '(metrics.json: every count)' if len(shown) < len(all_names) else '')
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
                 f'{metrics["num_examples"]} images{subset}', fontsize=9)
  if len(names) <= MAX_ANNOTATED_CLASSES:
    dark = counts.max() / 2
    for (row, column), count in np.ndenumerate(counts):
      axes.text(column, row, str(count), ha='center', va='center', fontsize=8,
                color='white' if count > dark else 'black')
  figure.colorbar(cells, ax=axes, shrink=0.8, label='images')
  return figure


def multilabel_metrics(probabilities: np.ndarray, targets: np.ndarray,
                       class_names: tuple[str, ...], thresholds: np.ndarray) -> dict:
  """Metrics of a multi-label model: probabilities and 0/1 targets [N, num_labels], and the
  labels' decision thresholds [num_labels] (multilabel.py).

  Returns:
    metrics.json's content: mean_average_precision (macro over labels with positives) and
    micro_average_precision; exact_match (every label of an image right, also as accuracy);
    micro and macro precision, recall and F1 at the thresholds; per_label {name: ap,
    support, threshold, precision, recall, f1}.
  """
  class_names = tuple(files.text_name(name) for name in class_names)
  macro, micro, per_label_ap = multilabel.average_precision(probabilities, targets)
  at = multilabel.at_thresholds(probabilities, targets, thresholds)
  support = (np.asarray(targets) > 0.5).sum(axis=0)
  rounded = lambda value: None if not np.isfinite(value) else round(float(value), 5)  # noqa: E731
  return {
      'task': 'multi_label', 'num_examples': int(len(targets)),
      'mean_average_precision': rounded(macro), 'micro_average_precision': rounded(micro),
      'exact_match': rounded(at['exact_match']), 'accuracy': rounded(at['exact_match']),
      **{key: rounded(at[key]) for key in ('micro_precision', 'micro_recall', 'micro_f1',
                                           'macro_precision', 'macro_recall', 'macro_f1')},
      'per_label': {
          name: {'average_precision': rounded(per_label_ap[i]), 'support': int(support[i]),
                 'threshold': rounded(thresholds[i]), 'precision': rounded(at['precision'][i]),
                 'recall': rounded(at['recall'][i]), 'f1': rounded(at['f1'][i])}
          for i, name in enumerate(class_names)},
  }


def precision_recall_figure(probabilities: np.ndarray, targets: np.ndarray,
                            class_names: tuple[str, ...], *, title: str,
                            max_labels: int = 12) -> Figure:
  """Precision against recall of each label (the `max_labels` with the lowest average
  precision when there are more), each with its threshold's point marked."""
  _, _, per_label = multilabel.average_precision(probabilities, targets)
  shown = [int(i) for i in np.argsort(np.nan_to_num(per_label, nan=2.0))[:max_labels]
           if np.isfinite(per_label[i])]
  figure = Figure(figsize=(7, 5), dpi=110, layout='constrained')
  axes = figure.subplots()
  for label in shown:
    precision, recall, _ = sk_metrics.precision_recall_curve(targets[:, label] > 0.5,
                                                             probabilities[:, label])
    axes.plot(recall, precision, label=f'{class_names[label]} (AP {per_label[label]:.2f})')
  axes.set_xlabel('recall')
  axes.set_ylabel('precision')
  axes.set_xlim(0, 1.02)
  axes.set_ylim(0, 1.02)
  axes.set_title(title, fontsize=9)
  axes.legend(fontsize=7, loc='lower left')
  return figure


def write_report(output_dir: str, metrics: dict, *, title: str,
                 scores: tuple[np.ndarray, np.ndarray, tuple] | None = None) -> None:
  """Writes output_dir/metrics.json and a PNG: confusion_matrix.png, or for multi-label
  metrics precision_recall.png from `scores` (probabilities, targets, class names)."""
  os.makedirs(output_dir, exist_ok=True)
  files.write_json(os.path.join(output_dir, 'metrics.json'), metrics)
  if metrics.get('task') == 'multi_label':
    precision_recall_figure(*scores, title=title).savefig(
        os.path.join(output_dir, 'precision_recall.png'))
    return
  plot_confusion_matrix(metrics, os.path.join(output_dir, 'confusion_matrix.png'),
                        title=title)
