"""An export version: the SavedModel that TF Serving loads as it is, and the formats for
phones and plain Keras, all written, checked and published together.

    E/<version>/saved_model.pb, variables/       classifier with its preprocessing in the graph
    E/<version>/assets/labels.txt                class names in label order (the graph's source
                                                 for the `classes` output)
    E/<version>/assets.extra/tf_serving_warmup_requests   one PredictionLog per signature
    E/<version>/assets.extra/tftransfer.json     where the export came from: run, step, sizes
  with --format=tflite and/or keras, beside it:
    E/<version>/model.tflite, model_<quantize>.tflite   LiteRT models (litert.py)
    E/<version>/model.keras                      the classifier for Keras alone (keras_file.py)
    E/<version>/labels.txt                       class names for those, one per line
    E/<version>/export_report.json               every format measured on the validation split

The signatures and their contract are signatures.py.

A version directory appears complete or not at all: it is written and loaded back (running
the warmup requests; measuring every other format against the SavedModel on the run's
validation split, export_report.py) in a hidden directory beside it, then renamed into place.
"""

import dataclasses
import json
import os
import tempfile
from typing import Sequence

from absl import logging
import keras
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from tftransfer import config as config_lib, errors, files
from tftransfer.serving import edge_export, export_report, litert, signatures
from tftransfer.serving.signatures import IMAGE_BYTES, IMAGES, PREDICT_IMAGES, SERVING_DEFAULT
from tftransfer import restore

WARMUP_FILE = 'tf_serving_warmup_requests'
METADATA_FILE = 'tftransfer.json'
FORMATS = ('saved_model', 'tflite', 'keras')


def warmup_inputs(image_size: int) -> dict[str, dict[str, np.ndarray]]:
  """One small, deterministic request per signature: a JPEG larger than the model's input and
  non-square (so resizing and cropping run), and the same picture as uint8 pixels."""
  height, width = image_size + image_size // 2, image_size * 2
  rows, columns = np.mgrid[0:height, 0:width]
  image = np.stack([rows * 255 // height, columns * 255 // width,
                    (rows + columns) % 256], axis=-1).astype(np.uint8)
  return {SERVING_DEFAULT: {IMAGE_BYTES: np.array([tf.io.encode_jpeg(image).numpy()],
                                                  dtype=object)},
          PREDICT_IMAGES: {IMAGES: image[np.newaxis]}}


def write_warmup(path: str, inputs: dict[str, dict[str, np.ndarray]]) -> None:
  """Writes TF Serving's warmup file: a TFRecord of PredictionLog protos, one per request."""
  with tf.io.TFRecordWriter(path) as writer:
    for signature_name, tensors in inputs.items():
      request = predict_pb2.PredictRequest()
      request.model_spec.signature_name = signature_name
      for key, value in tensors.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
      log = prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(request=request))
      writer.write(log.SerializeToString())


def write_saved_model(trained: restore.TrainedModel, path: str) -> None:
  """Writes the SavedModel with both signatures and assets/labels.txt to `path`."""
  export = trained.config.export
  num_classes = len(trained.class_names)
  with tempfile.TemporaryDirectory() as scratch:
    # The SavedModel copies this file into its assets/ and reads it back when loaded.
    labels_path = os.path.join(scratch, signatures.LABELS_FILE)
    signatures.write_labels(labels_path, trained.class_names)
    class_table = signatures.class_table(labels_path, num_classes)
    functions = signatures.Signatures(
        trained.model, class_table, image_size=trained.image_size,
        top_k=min(export.top_k, num_classes),
        max_image_pixels=trained.config.data.max_image_pixels,
        thresholds=trained.label_thresholds() if trained.multi_label else None)
    archive = keras.export.ExportArchive()
    archive.track(trained.model)
    archive.track(class_table)  # Lookup tables are tracked explicitly (Keras docs).
    archive.add_endpoint(SERVING_DEFAULT, functions.serving_default,
                         input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE_BYTES)])
    archive.add_endpoint(PREDICT_IMAGES, functions.predict_images, input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.uint8, name=IMAGES)])
    archive.write_out(path, verbose=False)


def _metadata(trained: restore.TrainedModel, workdir: str) -> dict:
  model = trained.config.model
  return {
      'workdir': os.path.abspath(workdir), 'checkpoint': trained.checkpoint,
      'step': trained.step, 'final_metrics': trained.final_metrics,
      'backbone': model.backbone, 'width': model.width, 'image_size': model.image_size,
      **({'preset': model.preset} if model.get('preset') else {}),
      'num_classes': len(trained.class_names),
      'top_k': min(trained.config.export.top_k, len(trained.class_names)),
      'max_image_pixels': trained.config.data.max_image_pixels, 'task': trained.plan.task,
      **({'thresholds': dict(zip(trained.class_names, map(float, trained.label_thresholds())))}
         if trained.multi_label else {}),
      'tensorflow': tf.__version__, 'keras': keras.__version__,
  }


def _check_loads(path: str, inputs: dict[str, dict[str, np.ndarray]],
                 class_names) -> None:
  """Loads the written SavedModel and runs the warmup requests through it.

  Raises:
    RuntimeError: a signature is missing or answers with the wrong classes.
  """
  loaded = tf.saved_model.load(path)
  for signature_name, tensors in inputs.items():
    if signature_name not in loaded.signatures:
      raise RuntimeError(f'The SavedModel in {path} lacks signature {signature_name!r}.')
    outputs = loaded.signatures[signature_name](**tensors)
    answered = outputs['labels'] if 'labels' in outputs else outputs['classes']
    classes = {files.text_name(name) for name in answered.numpy().ravel() if name}
    names = {files.text_name(name) for name in class_names}
    if not classes <= names or outputs['probabilities'].shape[-1] != len(class_names):
      raise RuntimeError(f'Signature {signature_name!r} of {path} answered {classes} for a '
                         f'model of classes {list(class_names)}.')


def next_version(export_dir: str) -> int:
  """1 + the largest integer version directory in `export_dir` (1 when there is none)."""
  if not os.path.isdir(export_dir):
    return 1
  versions = [int(name) for name in os.listdir(export_dir)  # Not '²', which isdigit() is.
              if name.isascii() and name.isdigit()
              and os.path.isdir(os.path.join(export_dir, name))]
  return max(versions, default=0) + 1


def _check_request(formats: Sequence[str], quantize: Sequence[str] | None,
                   export_dir: str, version: int) -> None:
  """Refuses an export request that cannot be met, before anything is read or written."""
  if not export_dir:
    raise errors.InvalidValueError(
        "The export directory is '': name the model's base directory, the one TF Serving "
        'watches, e.g. --export_dir=/models/flowers (versions go into it as 1/, 2/, ...).')
  if version < 0:
    raise errors.InvalidValueError(
        f'--version={version} must be a positive integer, or 0 for the next '
        'free version.')
  unknown = [name for name in formats if name not in FORMATS]
  if unknown or not formats or len(set(formats)) != len(formats):
    raise errors.InvalidValueError(
        f'--format={",".join(formats)} is not valid: give one or more of '
        f'{", ".join(FORMATS)}, each once (e.g. --format=saved_model,tflite).')
  if quantize is not None:
    if 'tflite' not in formats:
      raise errors.InvalidValueError(f'--quantize={",".join(quantize)} applies to LiteRT '
                                     'models: add --format=tflite.')
    litert.check_quantizations(quantize)


def _write_serving(trained: restore.TrainedModel, workdir: str, path: str) -> None:
  """The TF Serving SavedModel in `path`: written, with warmup and metadata, and checked."""
  write_saved_model(trained, path)
  extra = os.path.join(path, 'assets.extra')
  os.makedirs(extra)
  inputs = warmup_inputs(trained.image_size)
  write_warmup(os.path.join(extra, WARMUP_FILE), inputs)
  with open(os.path.join(extra, METADATA_FILE), 'w') as f:
    json.dump({**_metadata(trained, workdir),
               'signatures': [SERVING_DEFAULT, PREDICT_IMAGES]}, f, indent=2)
  _check_loads(path, inputs, trained.class_names)


def _add_formats(trained: restore.TrainedModel, workdir: str, target: str, *, formats,
                 quantize, max_accuracy_drop, calibration_images: int, latency_runs: int,
                 num_threads: int) -> str:
  """Writes `formats` (tflite, keras) beside the SavedModel of the existing version `target`,
  measured against it, without a new version for TF Serving to load: the files are made in a
  scratch directory and moved in only when measured, each file new (never one replaced).

  Raises:
    errors.InvalidValueError: the version holds another run's or checkpoint's SavedModel.
    errors.AlreadyExistsError: a file of the requested formats is already in the version.
    export_report.AccuracyDropError: a format the guard failed (the others are added).
  """
  with open(os.path.join(target, 'assets.extra', METADATA_FILE)) as f:
    published = json.load(f)
  ours = _metadata(trained, workdir)
  if (published.get('workdir'), published.get('step')) != (ours['workdir'], ours['step']):
    raise errors.InvalidValueError(
        f'{target} holds step {published.get("step")} of {published.get("workdir")!r}, not '
        f'step {ours["step"]} of {ours["workdir"]!r}: formats added beside a SavedModel must '
        'come from the same checkpoint. Export to a new --version instead.')
  with tempfile.TemporaryDirectory(dir=os.path.dirname(target),
                                   prefix=f'.{os.path.basename(target)}.adding-') as scratch:
    report = edge_export.write(
        trained, workdir, scratch, reference=target, reference_exported=True, formats=formats,
        quantize=tuple(quantize or ('none',)), max_accuracy_drop=max_accuracy_drop,
        calibration_images=calibration_images, latency_runs=latency_runs,
        num_threads=num_threads, source=ours)
    results = report['artifacts']
    report_path = os.path.join(target, export_report.REPORT_FILE)
    new = [name for name in os.listdir(scratch) if name not in (
        signatures.LABELS_FILE, edge_export.THRESHOLDS_FILE, export_report.REPORT_FILE)]
    clashing = [name for name in new if os.path.exists(os.path.join(target, name))]
    if clashing:
      raise errors.AlreadyExistsError(
          f'{", ".join(clashing)} already in {target}; a published version\'s files are '
          'never replaced: export to a new --version, or pass --overwrite to rewrite it.')
    if os.path.isfile(report_path):  # keep what an earlier export measured of other formats
      with open(report_path) as f:
        earlier = json.load(f)['artifacts']
      measured = {result['name'] for result in results}
      results[1:1] = [result for result in earlier if result['name'] not in measured]
    files.write_json(os.path.join(scratch, export_report.REPORT_FILE), report)
    for name in new + [name for name in (signatures.LABELS_FILE, edge_export.THRESHOLDS_FILE)
                       if os.path.exists(os.path.join(scratch, name))
                       and not os.path.exists(os.path.join(target, name))]:
      os.replace(os.path.join(scratch, name), os.path.join(target, name))
    os.replace(os.path.join(scratch, export_report.REPORT_FILE), report_path)
  export_report.check_accuracy(results, exported_to=target)
  logging.info('Added %s beside the SavedModel of %s (no new serving version).',
               ', '.join(sorted(new)), target)
  return target


# Long mostly in its docstring: ten options, each documented; the body is the export's steps.
def as_names(names: str | Sequence[str]) -> tuple[str, ...]:
  """'tflite,keras' (as the command's flags spell it) or ['tflite', 'keras'] -> a tuple."""
  if isinstance(names, str):
    return tuple(name.strip() for name in names.split(',') if name.strip())
  return tuple(names)


def export(workdir: str, export_dir: str, *, version: int = 0, overwrite: bool = False,
           allow_unfinished: bool = False, checkpoint: str | int = 'best',
           formats: Sequence[str] = ('saved_model',),
           quantize: Sequence[str] | None = None, max_accuracy_drop: float | None = None,
           calibration_images: int = 300, latency_runs: int = 50,
           num_threads: int = 1, top_k: int = 0) -> str:
  """Exports a training run as `export_dir/<version>/`: for TF Serving, phones, or Keras.

  Args:
    workdir: the finished training run.
    export_dir: the model's base directory, the one TF Serving watches.
    version: the version number; 0 = the next after the largest existing one (1 if none).
      An existing version with `formats` lacking 'saved_model' gets those files added
      beside its SavedModel (same run and step only; _add_formats), not a new version.
    overwrite: replace an existing version directory (TF Serving may keep serving the old
      one it loaded; prefer a new version for a served model).
    allow_unfinished: export the newest checkpoint of a run without final_metrics.json.
    checkpoint: which of the run's checkpoints: 'best' (its selected epoch), 'last' or a
      step number (restore.restore).
    formats: any of FORMATS (a sequence, or one string 'saved_model,tflite'). Other than
      'saved_model' alone, the run's data must be readable: every format is then measured
      on its validation split (export_report.json).
    quantize: with 'tflite', which LiteRT models to write (litert.QUANTIZATIONS); None =
      ('none',), float32.
    max_accuracy_drop: the largest top-1 loss of a .tflite from the SavedModel, in points;
      None = litert.DEFAULT_MAX_ACCURACY_DROP of its quantization.
    calibration_images: training images that calibrate an int8 model's activations.
    latency_runs: timed single-image calls per format in export_report.json.
    num_threads: LiteRT interpreter threads for verification and latency.
    top_k: how many best classes the signatures return; 0 = the run's export.top_k.

  Returns:
    The version directory written.

  Raises:
    FileExistsError: the version exists and `overwrite` is False.
    ValueError: a negative version, an unknown format or quantization, an unfinished run
      without `allow_unfinished`.
    export_report.AccuracyDropError (a ValueError): a .tflite the accuracy guard failed
      (export_report.accuracy_guard): the version is published with the formats that
      passed, its `exported_to`, or not at all when none did (None).
    FileNotFoundError: `workdir` holds no training run.
  """
  formats = as_names(formats)
  quantize = None if quantize is None else as_names(quantize)
  _check_request(formats, quantize, export_dir, version)
  automatic = not version
  version = version or next_version(export_dir)
  target = os.path.join(os.path.abspath(export_dir), str(version))
  adding = (not automatic and not overwrite and 'saved_model' not in formats
            and os.path.isfile(os.path.join(target, 'saved_model.pb')))
  if os.path.exists(target) and not overwrite and not adding:
    raise errors.AlreadyExistsError(
        f'{target} already exists; export to another --version (the next '
        f'free one is {next_version(export_dir)}) or pass --overwrite. To add tflite or keras '
        f'files beside its SavedModel without publishing a new serving version: '
        f'--version={version} --format=tflite (without saved_model).')
  if formats != ('saved_model',):
    restore.require_validation(workdir, uses=(
        f'to measure {", ".join(name for name in formats if name != "saved_model")} against '
        'the SavedModel on'), fix=('Export the SavedModel alone (--format=saved_model), or '
                                   'train with a validation split.'))
  trained = restore.restore(workdir, checkpoint=checkpoint, allow_unfinished=allow_unfinished)
  if top_k:
    config = config_lib.copy_config(trained.config)
    config.export.top_k = top_k
    trained = dataclasses.replace(trained, config=config)
  if adding:
    return _add_formats(trained, workdir, target, formats=formats, quantize=quantize,
                        max_accuracy_drop=max_accuracy_drop,
                        calibration_images=calibration_images, latency_runs=latency_runs,
                        num_threads=num_threads)
  if automatic:
    logging.info('Exporting as version %d, the next after those in %s.', version, export_dir)
  results = []  # the other formats' measurements; none for a SavedModel alone
  with files.staged_directory(target, overwrite=overwrite) as staging:
    if 'saved_model' in formats:
      _write_serving(trained, workdir, staging)
    if formats != ('saved_model',):
      with tempfile.TemporaryDirectory() as scratch:
        # The other formats are measured against the SavedModel, exported or not.
        reference = staging if 'saved_model' in formats else os.path.join(scratch, 'reference')
        if reference != staging:
          write_saved_model(trained, reference)
        results = edge_export.write(
            trained, workdir, staging, reference=reference,
            reference_exported=reference == staging, formats=formats,
            quantize=tuple(quantize or ('none',)), max_accuracy_drop=max_accuracy_drop,
            calibration_images=calibration_images, latency_runs=latency_runs,
            num_threads=num_threads, source=_metadata(trained, workdir))['artifacts']
        if not export_report.kept(results):  # every format failed: publish nothing
          export_report.check_accuracy(results)
  # Formats that passed are published; those that failed are named after (exit 2).
  export_report.check_accuracy(results, exported_to=target)
  logging.info('Exported %s (step %d of %s) as %s to %s.', trained.checkpoint, trained.step,
               workdir, ', '.join(formats), target)
  return target
