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

from tftransfer import config as config_lib, restore, workdir as workdir_lib
from tftransfer.data import dataset, manifest_source, pipeline, sources
from tftransfer.evaluation import metrics as metrics_lib, predictions
from tftransfer.evaluation import report as report_lib
from tftransfer.serving import prediction, signatures


def evaluate_workdir(workdir: str, *, checkpoint: str | int = 'best', data_dir: str | None = None,
                     output_dir: str | None = None, allow_unfinished: bool = False,
                     report: bool = True, command: str | None = None,
                     columns: dict | None = None, setting: str = '--data') -> dict:
  """Evaluates a run's restored model on its own validation split, or on every image of
  `data_dir` (a held-out test folder of the model's classes); writes metrics.json, the
  confusion matrix PNG and, with `report`, the HTML report from the same predictions.

  Args:
    workdir: the training run.
    checkpoint: 'best' (the run's selected epoch), 'last' or a step (restore.restore).
    data_dir: a folder root/<class>/**/<image>, or a manifest (.csv, .tsv, .jsonl), to
      judge on instead of the validation split.
    output_dir: where the files go; default workdir/eval/ (validation) or
      workdir/eval/<folder name>/.
    allow_unfinished: evaluate a run that has not finished.
    report: also write the HTML report (report.py) from the same predictions, in
      workdir/report/ (or workdir/report/<folder name>/).
    command: the command line, for the report's header.
    columns: a manifest's columns (manifests.read's keywords); None = the run's.
    setting: what errors call `data_dir`: the command's flag, or the Python argument.

  Returns:
    The metrics written to metrics.json.

  Raises:
    errors.InvalidValueError: the run's data changed since training (validation), or the
      folder has a class the model does not.
    errors.NotFoundError: no run, no checkpoint, or no such folder.
  """
  result = predictions.predict_workdir(
      workdir, data=data_dir or predictions.VALIDATION, checkpoint=checkpoint,
      allow_unfinished=allow_unfinished, columns=columns, setting=setting)
  trained = result.trained
  metrics = result.metrics()
  metrics['model'] = {'workdir': os.path.abspath(workdir), 'checkpoint': trained.checkpoint,
                      'step': trained.step}
  metrics['data'] = result.description
  subdirectory = workdir_lib.judged_subdirectory(data_dir)
  metrics_lib.write_report(output_dir or os.path.join(workdir, workdir_lib.EVAL, subdirectory),
                           metrics, title=f'{os.path.basename(os.path.abspath(workdir))} (step '
                           f'{trained.step}) on {result.description}',
                           scores=(result.probabilities, result.labels, trained.class_names))
  if report:
    report_lib.write_report(result, workdir,
                            os.path.join(workdir, workdir_lib.REPORT, subdirectory),
                            command=command)
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


def _saved_model_scores(export: prediction.LoadedExport, split: dataset.Split,
                        batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """(probabilities, labels) batches of the export's predict_images signature."""
  predict = export.signature(signatures.PREDICT_IMAGES)
  # Images shrunk as training stored them: the signature's own fit_to_storage then leaves them
  # as they are, so it sees exactly what it would see from the full-size image.
  examples = pipeline.stored_examples(split, image_size=export.metadata['image_size'],
                                      cache=False)
  for images, labels in _same_shape_batches(examples, batch_size):
    yield predict(**{signatures.IMAGES: tf.constant(images)})['probabilities'].numpy(), labels


def _litert_scores(model: prediction.LoadedLiteRT, split: dataset.Split,
                   batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """(probabilities, labels) batches of a .tflite, sent the evaluation view's uint8 pixels."""
  batches = pipeline.pixel_batches(split, image_size=model.classifier.image_size,
                                   batch_size=batch_size)
  for images, labels in batches.as_numpy_iterator():
    yield model.classifier.probabilities(images), labels


def evaluate_export(model_path: str, config: ml_collections.ConfigDict | None, output_dir: str,
                    *, data_dir: str | None = None) -> dict:
  """Evaluates an export on every image of `data_dir`, or on `config`'s validation split: a
  SavedModel version through its predict_images signature, or a .tflite through the LiteRT
  interpreter. The data's classes are matched to the model's by name
  (data/dataset.py class_labels).

  Args:
    model_path: an `export_dir/<version>` directory, or a .tflite file in one.
    config: a training config whose data section, seed and train.batch_size choose the
      validation split; None with `data_dir`.
    output_dir: where metrics.json and confusion_matrix.png go.
    data_dir: a folder root/<class>/**/<image> to judge instead (all of it).

  Returns:
    The metrics written to output_dir/metrics.json.

  Raises:
    errors.InvalidValueError: data with a class the model lacks, or neither data source.
  """
  model = prediction.load_model(model_path)
  thresholds = prediction.label_thresholds(model)
  task = 'single_label' if thresholds is None else 'multi_label'
  batch_size = 32 if config is None else config.train.batch_size
  if data_dir:
    split, report = restore.judged_data(
        data_dir, model.class_names, max_pixels=model.metadata['max_image_pixels'],
        columns=None if config is None else manifest_source.columns(config.data),
        multi_label=task == 'multi_label')
    description = f'{report["description"]} ({split.num_examples} images)'
  else:
    config_lib.validate(config)
    data = dataset.for_task(sources.load(config.data, seed=config.seed), task)
    split = dataset.judged_split(data.val, data.class_names, model.class_names,
                                 what=data.description)
    description = f'{data.description}, validation split'
  scores = (_litert_scores if isinstance(model, prediction.LoadedLiteRT)
            else _saved_model_scores)(model, split, batch_size)
  if task == 'multi_label':
    probabilities, targets = (np.concatenate(parts) for parts in zip(*scores))
    metrics = metrics_lib.multilabel_metrics(probabilities, targets, model.class_names,
                                             thresholds)
  else:
    metrics = metrics_lib.classification_metrics(scores, model.class_names)
  metrics['model'] = {'export': os.path.abspath(model_path), **{
      key: model.metadata.get(key) for key in ('workdir', 'checkpoint', 'step')}}
  metrics['data'] = description
  metrics_lib.write_report(
      output_dir, metrics, title=os.path.abspath(model_path),
      scores=None if task == 'single_label' else (probabilities, targets, model.class_names))
  return metrics
