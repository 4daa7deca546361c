"""The formats written beside the SavedModel: LiteRT models for phones and microcontrollers and
a .keras file, each measured against the SavedModel before the version is published.

    labels.txt                       class names, one per line in label order (also inside
                                     each .tflite, with its TFLite metadata)
    thresholds.txt                   a multi-label model's threshold of each label, one per
                                     line in labels.txt's order
    model.tflite, model_<q>.tflite   litert.py, one per --quantize value, each with TFLite
                                     Model Metadata (litert_metadata.py)
    model.keras                      keras_file.py
    export_report.json               export_report.py: accuracy, agreement, size, latency

An int8 model is calibrated on `calibration_images` training images in the evaluation view
(litert.calibration_images); every format is measured on the validation split's pixels.
"""

import os

from absl import logging
import tensorflow as tf

from tftransfer import files, restore
from tftransfer.data import pipeline
from tftransfer.serving import (export_report, keras_file, litert, litert_metadata,
                                litert_runtime, signatures)

THRESHOLDS_FILE = 'thresholds.txt'


def _saved_model_artifact(path: str, exported: bool) -> export_report.Artifact:
  loaded = tf.saved_model.load(path)
  predict = loaded.signatures[signatures.PREDICT_IMAGES]

  def classify(images):
    return predict(**{signatures.IMAGES: tf.constant(images)})['probabilities'].numpy()

  names = ('saved_model.pb', 'fingerprint.pb', 'variables', 'assets')
  return export_report.Artifact(
      export_report.REFERENCE, tuple(os.path.join(path, name) for name in names), classify,
      details={'format': 'saved_model', 'exported': exported,
               'signature': signatures.PREDICT_IMAGES})


def _keras_artifact(trained: restore.TrainedModel, directory: str) -> export_report.Artifact:
  path = os.path.join(directory, keras_file.FILE)
  reloaded = keras_file.write(trained, path)
  call = tf.function(lambda images: reloaded(images, training=False), reduce_retracing=True)
  return export_report.Artifact(
      'keras', (path,), lambda images: call(tf.cast(images, tf.float32)).numpy(),
      details={'format': 'keras', 'file': keras_file.FILE})


def _metadata(trained: restore.TrainedModel, quantize: str) -> bytes:
  """The TFLite Model Metadata of one .tflite of the run (litert_metadata.py)."""
  model = trained.config.model
  kind = 'multi-label' if trained.multi_label else 'single-label'
  return litert_metadata.metadata_flatbuffer(
      name=f'tftransfer {model.backbone} image classifier',
      description=(f'A {kind} classifier of {len(trained.class_names)} classes, fine-tuned by '
                   f'tftransfer from {model.backbone} (width {model.width:g}); LiteRT '
                   f'quantization {quantize}; checkpoint {trained.checkpoint}.'),
      version=f'step {trained.step}', image_size=trained.image_size,
      num_classes=len(trained.class_names), labels_file=signatures.LABELS_FILE,
      thresholds_file=THRESHOLDS_FILE if trained.multi_label else None)


def _tflite_artifacts(trained: restore.TrainedModel, data, directory: str, *, quantize,
                      max_accuracy_drop: float | None, calibration_images: int,
                      num_threads: int) -> list[export_report.Artifact]:
  calibration, calibration_report = None, None
  if 'int8' in quantize:
    calibration, per_class = litert.calibration_images(
        data.train, image_size=trained.image_size, num_images=calibration_images)
    calibration_report = {'split': 'train', 'num_images': len(calibration),
                          'per_class': dict(zip(trained.class_names, per_class))}
  artifacts = []
  associated = {}  # the files write() put beside the models go inside each one as they are
  for name in (signatures.LABELS_FILE, THRESHOLDS_FILE):
    if os.path.exists(os.path.join(directory, name)):
      with open(os.path.join(directory, name), 'rb') as f:
        associated[name] = f.read()
  for value in quantize:
    flatbuffer = litert.convert(trained, value, calibration if value == 'int8' else None)
    flatbuffer = litert_metadata.embed(flatbuffer, _metadata(trained, value), associated)
    path = os.path.join(directory, litert.file_name(value))
    with open(path, 'wb') as f:
      f.write(flatbuffer)
    summary = litert.graph_summary(flatbuffer)
    details = {'format': 'tflite', 'file': litert.file_name(value), 'quantize': value,
               'input': summary['input'], 'output': summary['output'],
               'ops': summary['ops'], 'tensor_dtypes': summary['tensor_dtypes']}
    if value == 'int8':
      details['calibration'] = calibration_report
    written = litert_metadata.read(flatbuffer)
    details['metadata'] = {key: written[key] for key in ('name', 'version',
                                                          'min_parser_version')}
    details['metadata']['associated_files'] = sorted(written['files'])
    classifier = litert_runtime.LiteRTClassifier(path, num_threads=num_threads)
    artifacts.append(export_report.Artifact(
        'tflite' if value == 'none' else f'tflite_{value}', (path,), classifier.probabilities,
        max_accuracy_drop=(litert.DEFAULT_MAX_ACCURACY_DROP[value]
                           if max_accuracy_drop is None else max_accuracy_drop),
        details=details))
  return artifacts


def write(trained: restore.TrainedModel, workdir: str, directory: str, *, reference: str,
          reference_exported: bool, formats, quantize, max_accuracy_drop: float | None,
          calibration_images: int, latency_runs: int, num_threads: int,
          source: dict) -> dict:
  """Writes the formats other than the SavedModel into `directory`, measures them against
  the SavedModel at `reference`, and writes export_report.json.

  Args:
    trained: the restored run.
    workdir: its directory (its data is read: training split for calibration, validation
      split for the measurements).
    directory: the export's staging version directory.
    reference: a SavedModel of the same run (the exported one, or a scratch copy).
    reference_exported: whether `reference` is part of the export.
    formats, quantize, max_accuracy_drop, calibration_images, latency_runs, num_threads:
      as in export.export.
    source: where the export came from, recorded in the report.

  Returns:
    The report written. A format the accuracy guard failed (export_report.accuracy_guard) is
    in it with guard 'failed' and exported false, and its file is removed from `directory`;
    export.export decides what that means for the version.
  """
  data = restore.run_data(workdir, trained.config)
  signatures.write_labels(os.path.join(directory, signatures.LABELS_FILE), trained.class_names)
  thresholds = trained.label_thresholds() if trained.multi_label else None
  if thresholds is not None:  # beside labels.txt, in the same order: one threshold a line
    files.write_text(os.path.join(directory, THRESHOLDS_FILE),
                     ''.join(f'{value:.6f}\n' for value in thresholds))
  artifacts = [_saved_model_artifact(reference, reference_exported)]
  if 'keras' in formats:
    artifacts.append(_keras_artifact(trained, directory))
  if 'tflite' in formats:
    artifacts += _tflite_artifacts(trained, data, directory, quantize=quantize,
                                   max_accuracy_drop=max_accuracy_drop,
                                   calibration_images=calibration_images,
                                   num_threads=num_threads)
  batches = pipeline.pixel_batches(data.val, image_size=trained.image_size,
                                   batch_size=trained.config.train.batch_size)
  results = export_report.measure(artifacts, batches.as_numpy_iterator(),
                                  latency_runs=latency_runs, thresholds=thresholds)
  for artifact, result in zip(artifacts, results):
    logging.info('%-14s %s %.4f, %s bytes, %.2f ms per image%s', result['name'],
                 result['metric'], result[result['metric']], f'{result["bytes"]:,}',
                 result['latency_ms'], ': FAILED the accuracy guard'
                 if result.get('guard') == 'failed' else '')
    if result.get('guard') == 'failed':
      result['exported'] = False
      for path in artifact.files:
        os.remove(path)
  warning = export_report.imprecise(results)
  if warning:
    logging.warning('%s', warning)
  report = {'source': source, 'validation': {
      'data': f'{data.description}, validation split',
      'input': 'the evaluation view rounded to uint8 pixels, the same for every format'},
      'latency': {'runs': latency_runs, 'images_per_call': 1,
                  'litert_threads': num_threads, **export_report.machine()},
      'artifacts': results}
  files.write_json(os.path.join(directory, export_report.REPORT_FILE), report)
  return report
