"""Evaluation on a validation split: accuracy, per-class metrics and a readable confusion matrix.

    evaluate_workdir(W)            the run's restored model on exactly the validation batches
                                   training used (same split, same evaluation view) -> W/eval/
    evaluate_export(E/1, config, OUT)  an export's predict_images signature on the validation
                                   split of a data config -> OUT/

Both write metrics.json (top-1; top-5 when there are more than 5 classes; per-class precision,
recall, F1 and support; the confusion matrix with its class names) and confusion_matrix.png.
"""

import os
from typing import Iterable, Iterator

from matplotlib.figure import Figure
import ml_collections
import numpy as np
import tensorflow as tf

from tftransfer import config as config_lib, datasets, pipeline, prediction, restore, serving
from tftransfer.workdir import Workdir

# The PNG names every cell's count up to this many classes; beyond, the numbers would overlap.
MAX_ANNOTATED_CLASSES = 40


def classification_metrics(batches: Iterable[tuple[np.ndarray, np.ndarray]],
                           class_names: tuple[str, ...]) -> dict:
  """Metrics of batches of (scores [B, num_classes], int labels [B]).

  Scores may be logits or probabilities: only their order matters. As in tf.math.in_top_k,
  classes tied with the true class do not push it out of the top 5. A class that is never
  predicted has precision 0 (and likewise recall for a class without examples).

  Raises:
    ValueError: no examples.
  """
  num_classes = len(class_names)
  confusion = np.zeros((num_classes, num_classes), np.int64)
  top5_correct = 0
  for scores, labels in batches:
    np.add.at(confusion, (labels, scores.argmax(axis=-1)), 1)
    true_scores = scores[np.arange(len(labels)), labels]
    top5_correct += int(np.sum((scores > true_scores[:, None]).sum(axis=-1) < 5))
  total = int(confusion.sum())
  if not total:
    raise ValueError('The validation split is empty: nothing to evaluate.')
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
  names = metrics['confusion_matrix']['class_names']
  counts = np.asarray(metrics['confusion_matrix']['counts'])
  side = max(4.0, 0.5 * len(names) + 2.5)
  figure = Figure(figsize=(side + 1.5, side), dpi=110, layout='constrained')
  axes = figure.subplots()
  cells = axes.imshow(counts, cmap='Blues')
  axes.set_xticks(range(len(names)), names, rotation=45, ha='right')
  axes.set_yticks(range(len(names)), names)
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
  figure.savefig(path)


def write_report(output_dir: str, metrics: dict, *, title: str) -> None:
  """Writes output_dir/metrics.json and output_dir/confusion_matrix.png."""
  Workdir(output_dir).write_json('metrics.json', metrics)
  plot_confusion_matrix(metrics, os.path.join(output_dir, 'confusion_matrix.png'),
                        title=title)


def _validation_data(config: ml_collections.ConfigDict,
                     class_names: tuple[str, ...]) -> datasets.Data:
  data = datasets.load(config.data, seed=config.seed)
  if tuple(data.class_names) != tuple(class_names):
    raise ValueError(f'The data ({data.description}) has classes {list(data.class_names)}, '
                     f'the model {list(class_names)}; evaluate on the data it was trained for.')
  return data


def evaluate_workdir(workdir: str, *, allow_unfinished: bool = False) -> dict:
  """Evaluates a run's restored model on its own validation split; writes workdir/eval/.

  Returns:
    The metrics written to workdir/eval/metrics.json.
  """
  trained = restore.restore(workdir, allow_unfinished=allow_unfinished)
  config = trained.config
  run = Workdir(workdir)
  # The run's scan cache: an unchanged folder is not decoded again.
  data = datasets.load(config.data, seed=config.seed, scan_cache=run.file('folder_scan.json'))
  changes = run.data_changes(data.summary())
  if changes:
    raise ValueError(
        f'The data changed since {workdir} was trained ({"; ".join(changes)}), so its '
        'validation split would no longer be the images it held out (some may be training '
        'images). Evaluate on the data as it was, or on a separate test set with --model '
        'and a data config.')
  batches = pipeline.eval_batches(data.val, image_size=trained.image_size,
                                  batch_size=config.train.batch_size, cache=False)
  logits = tf.function(lambda images: trained.model(images, training=False),
                       reduce_retracing=True)
  metrics = classification_metrics(
      ((logits(images).numpy(), labels.numpy()) for images, labels in batches),
      trained.class_names)
  metrics['model'] = {'workdir': os.path.abspath(workdir), 'checkpoint': trained.checkpoint,
                      'step': trained.step}
  metrics['data'] = f'{data.description}, validation split'
  write_report(os.path.join(workdir, 'eval'), metrics,
               title=f'{os.path.basename(os.path.abspath(workdir))} (step {trained.step})')
  return metrics


def _same_shape_batches(examples: tf.data.Dataset,
                        batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """Batches consecutive (image, label) examples of equal shape (a signature call takes one
  shape); a batch ends early where the image shape changes."""
  images, labels = [], []
  for image, label in examples.as_numpy_iterator():
    if images and (len(images) == batch_size or image.shape != images[0].shape):
      yield np.stack(images), np.asarray(labels)
      images, labels = [], []
    images.append(image)
    labels.append(label)
  if images:
    yield np.stack(images), np.asarray(labels)


def evaluate_export(model_dir: str, config: ml_collections.ConfigDict,
                    output_dir: str) -> dict:
  """Evaluates an export's predict_images signature on `config`'s validation split.

  Args:
    model_dir: an `export_dir/<version>` directory.
    config: a training config; its data section, seed and train.batch_size are used.
    output_dir: where metrics.json and confusion_matrix.png go.

  Returns:
    The metrics written to output_dir/metrics.json.
  """
  config_lib.validate(config)
  export = prediction.load_export(model_dir)
  data = _validation_data(config, export.class_names)
  predict = export.signature(serving.PREDICT_IMAGES)
  # Images shrunk as training stored them: the signature's own fit_to_storage then leaves them
  # as they are, so it sees exactly what it would see from the full-size image.
  examples = pipeline.stored_examples(data.val, image_size=export.metadata['image_size'],
                                      cache=False)
  metrics = classification_metrics(
      ((predict(**{serving.IMAGES: tf.constant(images)})['probabilities'].numpy(), labels)
       for images, labels in _same_shape_batches(examples, config.train.batch_size)),
      export.class_names)
  metrics['model'] = {'export': os.path.abspath(model_dir), **{
      key: export.metadata[key] for key in ('workdir', 'checkpoint', 'step')}}
  metrics['data'] = f'{data.description}, validation split'
  write_report(output_dir, metrics, title=os.path.abspath(model_dir))
  return metrics
