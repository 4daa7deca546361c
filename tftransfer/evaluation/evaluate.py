"""Evaluation of a trained model on a validation split: metrics.json and its PNG.

    evaluate_workdir(W)            the run's restored model on exactly the validation batches
                                   training used (same split, same evaluation view) -> W/eval/
                                   and the HTML report W/report/index.html
    evaluate_export(E/1, config, OUT)  an export's predict_images signature on the validation
                                   split of a data config -> OUT/
"""

import os
from typing import Iterator

import ml_collections
import numpy as np
import tensorflow as tf

from tftransfer import config as config_lib, errors
from tftransfer.data import pipeline, sources
from tftransfer.evaluation import metrics as metrics_lib, predictions
from tftransfer.evaluation import report as report_lib
from tftransfer.serving import prediction, signatures


def _validation_data(config: ml_collections.ConfigDict,
                     class_names: tuple[str, ...]) -> sources.Data:
  data = sources.load(config.data, seed=config.seed)
  if tuple(data.class_names) != tuple(class_names):
    raise errors.InvalidValueError(
        f'The data ({data.description}) has classes {list(data.class_names)}, '
        f'the model {list(class_names)}; evaluate on the data it was trained for.')
  return data


def evaluate_workdir(workdir: str, *, allow_unfinished: bool = False,
                     report: bool = True, command: str | None = None) -> dict:
  """Evaluates a run's restored model on its own validation split; writes workdir/eval/ and,
  with `report`, the HTML report workdir/report/index.html (report.py) from the same
  predictions.

  Args:
    workdir: the training run's directory.
    allow_unfinished: use the newest checkpoint of a run without final_metrics.json.
    report: also write the HTML report.
    command: the command line, for the report's header.

  Returns:
    The metrics written to workdir/eval/metrics.json.
  """
  result = predictions.predict_workdir(workdir, allow_unfinished=allow_unfinished)
  trained = result.trained
  metrics = metrics_lib.classification_metrics([(result.logits, result.labels)],
                                               trained.class_names)
  metrics['model'] = {'workdir': os.path.abspath(workdir), 'checkpoint': trained.checkpoint,
                      'step': trained.step}
  metrics['data'] = result.description
  metrics_lib.write_report(os.path.join(workdir, 'eval'), metrics,
               title=f'{os.path.basename(os.path.abspath(workdir))} (step {trained.step})')
  if report:
    report_lib.write_report(result, workdir, os.path.join(workdir, 'report'), command=command)
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
  predict = export.signature(signatures.PREDICT_IMAGES)
  # Images shrunk as training stored them: the signature's own fit_to_storage then leaves them
  # as they are, so it sees exactly what it would see from the full-size image.
  examples = pipeline.stored_examples(data.val, image_size=export.metadata['image_size'],
                                      cache=False)
  metrics = metrics_lib.classification_metrics(
      ((predict(**{signatures.IMAGES: tf.constant(images)})['probabilities'].numpy(), labels)
       for images, labels in _same_shape_batches(examples, config.train.batch_size)),
      export.class_names)
  metrics['model'] = {'export': os.path.abspath(model_dir), **{
      key: export.metadata[key] for key in ('workdir', 'checkpoint', 'step')}}
  metrics['data'] = f'{data.description}, validation split'
  metrics_lib.write_report(output_dir, metrics, title=os.path.abspath(model_dir))
  return metrics
