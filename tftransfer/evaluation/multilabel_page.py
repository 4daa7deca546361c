"""The sections of a multi-label run's report (report.py renders them with
templates/report_multilabel.html.j2): the per-label table, worst average precision first;
precision-recall curves; and the costliest wrong (image, label) decisions with Grad-CAM of
that label (multilabel.worst_label_errors).
"""

from typing import Callable

import numpy as np

from tftransfer import multilabel
from tftransfer.evaluation import gradcam, metrics as metrics_lib
from tftransfer.evaluation import predictions as predictions_lib

# Precision-recall curves drawn at most (those of the labels with the lowest AP).
MAX_CURVES = 12


def per_label_rows(metrics: dict) -> list[dict]:
  """metrics.json's per_label as rows, worst average precision first (labels without
  positives last), then by name."""
  rows = [{'name': name, **values} for name, values in metrics['per_label'].items()]
  return sorted(rows, key=lambda row: (row['average_precision'] is None,
                                       row['average_precision'] or 0.0, row['name']))


def sections(result: predictions_lib.Predictions, metrics: dict, *, num_mistakes: int,
             image_uri: Callable, figure_uri: Callable, path_text: Callable) -> dict:
  """The template's values for these predictions (probabilities and 0/1 targets
  [N, num_labels]) and their metrics.json (metrics.multilabel_metrics)."""
  names = result.trained.class_names
  probabilities, targets = result.probabilities, np.asarray(result.labels) > 0.5
  thresholds = result.trained.label_thresholds()
  errors = multilabel.worst_label_errors(probabilities, targets, thresholds, num_mistakes)
  indices = np.asarray(sorted({image for image, *_ in errors}), np.int64)
  images = dict(zip(indices.tolist(), predictions_lib.evaluation_images(
      result.split, indices, result.trained.image_size)))
  heatmaps = _heatmaps(result, images, errors)
  predicted = probabilities >= thresholds[None, :]
  cards = [{
      'index': image, 'label': names[label], 'kind': kind, 'loss': loss,
      'probability': float(probabilities[image, label]),
      'threshold': float(thresholds[label]),
      'given': [names[k] for k in np.flatnonzero(targets[image])],
      'predicted': [names[k] for k in np.flatnonzero(predicted[image])],
      'path': path_text(result.split, image), 'image': image_uri(images[image]),
      'gradcam': image_uri(gradcam.overlay(images[image], heatmap))}
      for (image, label, kind, loss), heatmap in zip(errors, heatmaps)]
  return {
      'per_label': per_label_rows(metrics),
      'precision_recall': figure_uri(metrics_lib.precision_recall_figure(
          probabilities, targets, names, title=result.description, max_labels=MAX_CURVES)),
      'num_labels': len(names), 'max_curves': MAX_CURVES,
      'min_positives': multilabel.MIN_POSITIVES,
      'default_threshold': multilabel.DEFAULT_THRESHOLD,
      'mistakes': cards, 'num_errors': int(np.sum(predicted != targets)),
  }


def _heatmaps(result: predictions_lib.Predictions, images: dict,
              errors: list[tuple[int, int, str, float]]) -> list[np.ndarray]:
  """Grad-CAM of each error's label over its image, upsampled to the image's size."""
  if not errors:
    return []
  explain = gradcam.GradCam(result.trained.model)
  batch_size = result.trained.config.train.batch_size
  heatmaps = []
  for start in range(0, len(errors), batch_size):
    batch = errors[start:start + batch_size]
    stacked = np.stack([images[image] for image, *_ in batch])
    labels = np.asarray([label for _, label, *_ in batch], np.int32)
    heatmaps.extend(gradcam.upsample(explain(stacked, labels)[0], result.trained.image_size))
  return heatmaps
