"""Predictions through an exported model: what users test is what they serve.

A SavedModel export is loaded with `tf.saved_model.load` alone (no Keras model is rebuilt) and
image files go to its `serving_default` signature as raw bytes, batched, as TF Serving
receives them. A .tflite export runs in the LiteRT interpreter (litert_runtime.py); its images
are checked and decoded on the host by the same function the SavedModel graph runs
(signatures.decode_request), brought to the evaluation view, rounded to uint8 pixels, and
sent one at a time, as an app would.
"""

import dataclasses
import json
import os
import tempfile
import types
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import tensorflow as tf

from tftransfer import config as config_lib, errors, files, tf_noise, workdir as workdir_lib
from tftransfer.data import image_ops, walk
from tftransfer.serving import (export as export_lib, export_report, litert_runtime,
                                signatures)


@dataclasses.dataclass(frozen=True)
class LoadedExport:
  """An exported version directory, loaded."""
  path: str
  saved_model: Any  # Holding it keeps the signatures' variables and tables alive.
  class_names: tuple[str, ...]  # assets/labels.txt
  metadata: dict  # assets.extra/tftransfer.json: the run, step and sizes it came from

  def signature(self, name: str):
    return self.saved_model.signatures[name]


def load_export(path: str) -> LoadedExport:
  """Loads `path`, an `export_dir/<version>` directory written by tftransfer-export.

  Raises:
    FileNotFoundError: `path` is not a SavedModel directory.
    ValueError: the SavedModel lacks the tftransfer signatures.
  """
  if not os.path.isfile(os.path.join(path, 'saved_model.pb')):
    newest = export_lib.next_version(path) - 1
    hint = f' It holds versions: pass a version directory, e.g. {path}/{newest}.' if newest else ''
    if os.path.isfile(os.path.join(path, workdir_lib.CONFIG)):  # a training run, not an export
      hint = (f' It is a training run: export it first, `tftransfer-export --workdir={path} '
              '--export_dir=MODELS`, and pass --model=MODELS/1 (or `tftransfer-explain '
              f'--workdir={path}` classifies with the run itself).')
    raise errors.NotFoundError(f'--model={path!r} is not an exported model version (no '
                               f'saved_model.pb).{hint}')
  saved_model = tf.saved_model.load(path)
  missing = [name for name in (signatures.SERVING_DEFAULT, signatures.PREDICT_IMAGES)
             if name not in saved_model.signatures]
  if missing:
    raise errors.InvalidValueError(
        f'{path} lacks the signatures {missing} of a tftransfer export; write '
        'one with `tftransfer-export --workdir=W --export_dir=E`.')
  # Exports written before class names became text may hold other bytes than UTF-8.
  with open(os.path.join(path, 'assets', signatures.LABELS_FILE), 'rb') as f:
    class_names = tuple(files.text_name(line.rstrip(b'\n')) for line in f)
  with open(os.path.join(path, 'assets.extra', export_lib.METADATA_FILE)) as f:
    metadata = json.load(f)
  return LoadedExport(path, saved_model, class_names, metadata)


@dataclasses.dataclass(frozen=True)
class LoadedLiteRT:
  """A .tflite file written by tftransfer-export, loaded in the LiteRT interpreter."""
  path: str
  classifier: litert_runtime.LiteRTClassifier
  class_names: tuple[str, ...]  # labels.txt beside it
  metadata: dict  # the 'source' of export_report.json beside it: the run, step and sizes


def load_litert(path: str) -> LoadedLiteRT:
  """Loads a .tflite export with the labels.txt (and export_report.json) beside it.

  Raises:
    FileNotFoundError: `path` or its labels.txt does not exist.
    ValueError: the model is not a tftransfer classifier for those labels.
  """
  if not os.path.isfile(path):
    raise errors.NotFoundError(f'--model={path!r} does not exist.')
  classifier = litert_runtime.LiteRTClassifier(path)
  class_names = litert_runtime.labels_beside(path)
  if len(class_names) != classifier.num_classes:
    raise errors.InvalidValueError(
        f'{path} scores {classifier.num_classes} classes but the labels.txt beside it names '
        f'{len(class_names)}; keep the .tflite with the labels.txt exported with it.')
  report = os.path.join(os.path.dirname(os.path.abspath(path)), export_report.REPORT_FILE)
  metadata = {}
  if os.path.isfile(report):
    with open(report) as f:
      metadata = json.load(f)['source']
  defaults = config_lib.default_config()
  metadata = {'image_size': classifier.image_size,
              'top_k': min(defaults.export.top_k, len(class_names)),
              'max_image_pixels': defaults.data.max_image_pixels, **metadata}
  return LoadedLiteRT(path, classifier, class_names, metadata)


def load_model(path: str) -> LoadedExport | LoadedLiteRT:
  """A .tflite file (load_litert) or an export version directory (load_export)."""
  return load_litert(path) if path.endswith('.tflite') else load_export(path)


def image_files(paths: list[str]) -> list[str]:
  """The files named in `paths`, folders replaced by the images below them (sorted).

  Raises:
    FileNotFoundError: a path does not exist.
    ValueError: no image was found.
  """
  found = []
  for path in paths:
    if os.path.isdir(path):
      found += walk.walk_images(path).images  # linked folders followed, as training does
    elif os.path.isfile(path):
      found.append(path)
    else:
      raise errors.NotFoundError(f'{path!r} is neither an image file nor a folder.')
  if not found:
    raise errors.InvalidValueError(
        f'No images ({", ".join(walk.IMAGE_EXTENSIONS)}) in {paths}.')
  return found


def _labels_result(path: str | None, probabilities: np.ndarray, class_names,
                   thresholds: dict, k: int) -> dict:
  """A multi-label prediction: {'path', 'labels': the labels at or above their thresholds,
  best first, [{'class', 'score'}], 'top_k': the k most probable}."""
  top_k = _top_k(probabilities, class_names, k)
  labels = [entry for entry in _top_k(probabilities, class_names, len(class_names))
            if entry['score'] >= thresholds[entry['class']]]
  return {**({} if path is None else {'path': path}), 'labels': labels, 'top_k': top_k}


def _multi_label(export) -> dict | None:
  """A multi-label export's thresholds by label name; None for a single-label one."""
  return export.metadata.get('thresholds') if export.metadata.get('task') == 'multi_label' \
      else None


def label_thresholds(model: LoadedExport | LoadedLiteRT) -> np.ndarray | None:
  """float32 [num_labels]: a multi-label model's decision thresholds (probabilities) in its
  labels' order, from its metadata (a .tflite's: the export_report.json beside it); None for
  a single-label model."""
  thresholds = _multi_label(model)
  if thresholds is None:
    return None
  return np.asarray([thresholds[name] for name in model.class_names], np.float32)


def _outputs_results(export, paths: list, outputs: dict) -> Iterator[dict]:
  """The results of one signature call's outputs, one per image."""
  thresholds = _multi_label(export)
  if thresholds is not None:
    for path, probabilities in zip(paths, outputs['probabilities'].numpy()):
      yield _labels_result(path, probabilities, export.class_names, thresholds,
                           export.metadata['top_k'])
    return
  classes, scores = outputs['classes'].numpy(), outputs['scores'].numpy()
  for path, names, values in zip(paths, classes, scores):
    # Class names as text the one way labels.txt and data.json hold them (files.text_name).
    yield _result(path, top_k=[{'class': files.text_name(name), 'score': float(value)}
                               for name, value in zip(names, values)])


def _predict_batch(export, serve, paths: list, contents: list[bytes]) -> Iterator[dict]:
  try:
    # A rejected image is reported in its result line; TF's own echo of the failure is not.
    with tf_noise.filtered(tf_noise.expected_failure_dropper()):
      outputs = serve(**{signatures.IMAGE_BYTES: tf.constant(contents, tf.string)})
  except tf.errors.InvalidArgumentError as error:
    if len(paths) == 1:
      yield _result(paths[0], error=image_ops.error_reason(error))
      return
    # One bad file fails its whole batch: send the files one by one to keep the others.
    for path, content in zip(paths, contents):
      yield from _predict_batch(export, serve, [path], [content])
    return
  yield from _outputs_results(export, paths, outputs)


def _result(path: str | None, *, top_k: list[dict] | None = None,
            error: str | None = None) -> dict:
  """One prediction: {'path' (for files), 'class', 'score', 'top_k'} or {'path', 'error'}."""
  named = {} if path is None else {'path': path}
  if error is not None:
    return {**named, 'error': error}
  return {**named, 'class': top_k[0]['class'], 'score': top_k[0]['score'], 'top_k': top_k}


def _top_k(probabilities: np.ndarray, class_names, k: int) -> list[dict]:
  best = np.argsort(-probabilities, kind='stable')[:k]
  return [{'class': class_names[index], 'score': float(probabilities[index])} for index in best]


def _predict_litert(model: LoadedLiteRT, items: Iterable) -> Iterator[dict]:
  image_size, max_image_pixels = model.metadata['image_size'], model.metadata['max_image_pixels']
  for path, content in items:
    try:
      # Eagerly: a failure inside a tf.function defined here leaves TensorFlow a rendezvous
      # to abort, with a warning, when the process ends.
      with tf_noise.filtered(tf_noise.expected_failure_dropper()):
        image = image_ops.to_pixels(signatures.decode_request(
            tf.constant(content()), tf.constant(0), image_size=image_size,
            max_image_pixels=max_image_pixels)).numpy()
    except tf.errors.InvalidArgumentError as error:
      yield _result(path, error=image_ops.error_reason(error))
      continue
    yield _litert_result(model, path, image)


def _litert_result(model: LoadedLiteRT, path: str | None, pixels: np.ndarray) -> dict:
  probabilities = model.classifier.probabilities(pixels[np.newaxis])[0]
  thresholds = _multi_label(model)
  if thresholds is not None:
    return _labels_result(path, probabilities, model.class_names, thresholds,
                          model.metadata['top_k'])
  return _result(path, top_k=_top_k(probabilities, model.class_names, model.metadata['top_k']))


def _read(path: str) -> Callable[[], bytes]:
  def read():
    with open(path, 'rb') as f:
      return f.read()
  return read


def predict_encoded(export: 'LoadedExport | LoadedLiteRT', items: Iterable, *,
                    batch_size: int = 32) -> Iterator[dict]:
  """Classifies encoded images (the bytes of JPEG, PNG, GIF, BMP or WebP files) through an
  export's serving_default signature, in batches (a .tflite: one at a time, decoded on the
  host by the signature's own function).

  Args:
    export: a loaded export (load_model, or in_memory for a run not exported).
    items: (path or None, a function returning the bytes) per image, in order.
    batch_size: images per signature call.

  Yields:
    Per image, in order: {'path' (when given), 'class', 'score', 'top_k': [{'class',
    'score'}, ...]}, or {'path', 'error'} for an image the export rejects (undecodable, too
    large, empty).
  """
  if batch_size < 1:
    raise errors.InvalidValueError(f'--batch_size={batch_size} must be >= 1.')
  if isinstance(export, LoadedLiteRT):
    yield from _predict_litert(export, items)
    return
  serve = export.signature(signatures.SERVING_DEFAULT)
  batch = []
  for item in items:
    batch.append(item)
    if len(batch) == batch_size:
      yield from _predict_batch(export, serve, [path for path, _ in batch],
                                [read() for _, read in batch])
      batch = []
  if batch:
    yield from _predict_batch(export, serve, [path for path, _ in batch],
                              [read() for _, read in batch])


def predict_files(export: 'LoadedExport | LoadedLiteRT', paths: list[str], *,
                  batch_size: int = 32) -> Iterator[dict]:
  """Classifies image files through an export (predict_encoded, each file's path kept)."""
  yield from predict_encoded(export, ((path, _read(path)) for path in paths),
                             batch_size=batch_size)


def predict_pixels(export: 'LoadedExport | LoadedLiteRT', images: Iterable[np.ndarray]
                   ) -> Iterator[dict]:
  """Classifies decoded images, uint8 [H, W, 3] each of any size, through an export's
  predict_images signature (a .tflite: the same evaluation view on the host), one call per
  image. Yields {'class', 'score', 'top_k'} per image, in order."""
  if isinstance(export, LoadedLiteRT):
    size = export.metadata['image_size']
    for image in images:
      pixels = image_ops.to_pixels(image_ops.evaluation_view(tf.constant(image), size)).numpy()
      yield _litert_result(export, None, pixels)
    return
  predict = export.signature(signatures.PREDICT_IMAGES)
  for image in images:
    outputs = predict(**{signatures.IMAGES: tf.constant(image[np.newaxis], tf.uint8)})
    yield from _outputs_results(export, [None], outputs)


def in_memory(model, class_names, *, image_size: int, top_k: int, max_image_pixels: int,
              metadata: dict, thresholds=None) -> LoadedExport:
  """The export's signatures over a model in memory, without writing it: the functions
  tftransfer-export saves (signatures.py), for predicting with a run not yet exported.

  Args:
    model: images 0-255 [B, S, S, 3] -> logits, float32 (a restored run's model).
    class_names: in label order.
    image_size: S.
    top_k: best classes returned (at most the number of classes).
    max_image_pixels: the run's data.max_image_pixels.
    metadata: what the export's tftransfer.json would say (workdir, step, ...).
    thresholds: a multi-label model's threshold of each label (float [num_labels]).
  """
  with tempfile.TemporaryDirectory(prefix='tftransfer_labels_') as directory:
    # The table reads the file when it is made (eagerly), so the file need not outlive it.
    labels_path = os.path.join(directory, signatures.LABELS_FILE)
    signatures.write_labels(labels_path, class_names)
    table = signatures.class_table(labels_path, len(class_names))
  functions = signatures.Signatures(model, table, image_size=image_size,
                                    top_k=min(top_k, len(class_names)),
                                    max_image_pixels=max_image_pixels, thresholds=thresholds)
  saved = types.SimpleNamespace(signatures={
      signatures.SERVING_DEFAULT: tf.function(functions.serving_default, input_signature=[
          tf.TensorSpec([None], tf.string)]),
      signatures.PREDICT_IMAGES: tf.function(functions.predict_images, input_signature=[
          tf.TensorSpec([None, None, None, 3], tf.uint8)])})
  labelled = {} if thresholds is None else {
      'task': 'multi_label', 'thresholds': dict(zip(class_names, map(float, thresholds)))}
  return LoadedExport(metadata.get('workdir', '<in memory>'), saved, tuple(class_names),
                      {**metadata, 'image_size': image_size, 'top_k': min(top_k, len(class_names)),
                       'max_image_pixels': max_image_pixels, **labelled})
