"""The SavedModel that TF Serving loads as it is: signatures, assets, warmup, atomic versions.

    E/<version>/saved_model.pb, variables/       classifier with its preprocessing in the graph
    E/<version>/assets/labels.txt                class names in label order (the graph's source
                                                 for the `classes` output)
    E/<version>/assets.extra/tf_serving_warmup_requests   one PredictionLog per signature
    E/<version>/assets.extra/tftransfer.json     where the export came from: run, step, sizes

Signatures, the contract clients code against (k = min(export.top_k, num_classes)):

    serving_default   image_bytes  string [None]                 encoded JPEG/PNG/GIF/BMP/WebP
    predict_images    images       uint8  [None, None, None, 3]  any spatial size
    both return       probabilities float32 [None, num_classes]
                      classes       string  [None, k]  class names, best first
                      scores        float32 [None, k]  their probabilities

Each image goes through exactly the evaluation view of training, `preprocessing.fit_to_storage`
then `preprocessing.center_crop_resize`, so served and validated images are identical.
Bad requests fail as InvalidArgument (HTTP 400 from TF Serving) naming the image: empty bytes,
an unknown format, corrupt data, or more pixels than `export.max_image_pixels` (all frames of
an animated GIF), which is checked from the headers before the image is decoded.

A version directory appears complete or not at all: it is written and loaded back (running
the warmup requests) in a hidden directory beside it, then renamed into place.
"""

import json
import os
import shutil
import tempfile
import uuid

from absl import logging
import keras
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from tftransfer import image_headers, preprocessing, restore

SERVING_DEFAULT = 'serving_default'
PREDICT_IMAGES = 'predict_images'
IMAGE_BYTES = 'image_bytes'
IMAGES = 'images'
OUTPUTS = ('probabilities', 'classes', 'scores')
LABELS_FILE = 'labels.txt'
WARMUP_FILE = 'tf_serving_warmup_requests'
METADATA_FILE = 'tftransfer.json'


def decode_request(encoded: tf.Tensor, index: tf.Tensor, *, image_size: int,
                   max_image_pixels: int) -> tf.Tensor:
  """Checks and decodes one request image to its evaluation view.

  Args:
    encoded: scalar tf.string, the image file's bytes.
    index: scalar int32, its position in the request (named in error messages).
    image_size: the model's input side.
    max_image_pixels: largest width x height accepted; 0 = no limit.

  Returns:
    float32 [image_size, image_size, 3] in 0-255.
  """
  checks = [tf.debugging.Assert(tf.strings.length(encoded) > 0, [tf.strings.format(
      'image_bytes[{}] is empty: send the bytes of a JPEG, PNG, GIF, BMP or WebP file.',
      index)])]
  with tf.control_dependencies(checks):
    frames, height, width = tf.unstack(image_headers.decoded_shape(encoded))
  checks.append(tf.debugging.Assert(height >= 0, [tf.strings.format(
      'image_bytes[{}] is not a JPEG, PNG, GIF, BMP or WebP image ({} bytes).',
      (index, tf.strings.length(encoded)))]))
  if max_image_pixels:
    # An animated GIF decodes every frame, so all of them count.
    checks.append(tf.debugging.Assert(frames * height * width <= max_image_pixels, [
        tf.strings.format('image_bytes[{}] is {} frame(s) of {} x {} pixels, more than this '
                          'model accepts ({} pixels, export.max_image_pixels); send a '
                          'smaller image.', (index, frames, width, height, max_image_pixels))]))
  # The checks run before decoding, so an oversized image is never allocated.
  with tf.control_dependencies(checks):
    image = preprocessing.decode_image(encoded)
  return preprocessing.evaluation_view(image, image_size)


class _Signatures:
  """The signature functions over one model; each returns the OUTPUTS dictionary."""

  def __init__(self, model: keras.Model, class_table: tf.lookup.StaticHashTable, *,
               image_size: int, top_k: int, max_image_pixels: int):
    self.model, self.class_table = model, class_table
    self.image_size, self.top_k, self.max_image_pixels = image_size, top_k, max_image_pixels

  def _classify(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
    probabilities = tf.nn.softmax(self.model(images, training=False))
    scores, indices = tf.math.top_k(probabilities, k=self.top_k)
    return {'probabilities': probabilities,
            'classes': self.class_table.lookup(tf.cast(indices, tf.int64)),
            'scores': scores}

  def _view_spec(self) -> tf.TensorSpec:
    return tf.TensorSpec([self.image_size, self.image_size, 3], tf.float32)

  def serving_default(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
    indices = tf.range(tf.shape(image_bytes)[0])
    images = tf.map_fn(
        lambda request: decode_request(request[0], request[1], image_size=self.image_size,
                                       max_image_pixels=self.max_image_pixels),
        (image_bytes, indices), fn_output_signature=self._view_spec())
    return self._classify(images)

  def predict_images(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
    views = tf.map_fn(lambda image: preprocessing.evaluation_view(image, self.image_size),
                      images, fn_output_signature=self._view_spec())
    return self._classify(views)


def _write_labels(path: str, class_names) -> None:
  bad = [name for name in class_names if '\n' in name or '\r' in name or not name]
  if bad:
    raise ValueError(f'Class names {bad!r} cannot be written one per line to {LABELS_FILE}; '
                     'rename those class folders.')
  # Folder names that are not valid UTF-8 (os.fsdecode's surrogates) keep their bytes.
  with open(path, 'w', encoding='utf-8', errors='surrogateescape') as f:
    f.writelines(f'{name}\n' for name in class_names)


def _class_table(labels_path: str, num_classes: int) -> tf.lookup.StaticHashTable:
  """Label index -> class name, read from labels.txt (which the SavedModel keeps as an asset)."""
  return tf.lookup.StaticHashTable(
      tf.lookup.TextFileInitializer(
          labels_path, key_dtype=tf.int64, key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
          value_dtype=tf.string, value_index=tf.lookup.TextFileIndex.WHOLE_LINE,
          vocab_size=num_classes),
      default_value='')


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
    labels_path = os.path.join(scratch, LABELS_FILE)
    _write_labels(labels_path, trained.class_names)
    class_table = _class_table(labels_path, num_classes)
    signatures = _Signatures(trained.model, class_table, image_size=trained.image_size,
                             top_k=min(export.top_k, num_classes),
                             max_image_pixels=export.max_image_pixels)
    archive = keras.export.ExportArchive()
    archive.track(trained.model)
    archive.track(class_table)  # Lookup tables are tracked explicitly (Keras docs).
    archive.add_endpoint(SERVING_DEFAULT, signatures.serving_default,
                         input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE_BYTES)])
    archive.add_endpoint(PREDICT_IMAGES, signatures.predict_images, input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.uint8, name=IMAGES)])
    archive.write_out(path, verbose=False)


def _metadata(trained: restore.TrainedModel, workdir: str) -> dict:
  model = trained.config.model
  return {
      'workdir': os.path.abspath(workdir), 'checkpoint': trained.checkpoint,
      'step': trained.step, 'final_metrics': trained.final_metrics,
      'backbone': model.backbone, 'width': model.width, 'image_size': model.image_size,
      'num_classes': len(trained.class_names),
      'top_k': min(trained.config.export.top_k, len(trained.class_names)),
      'max_image_pixels': trained.config.export.max_image_pixels,
      'signatures': [SERVING_DEFAULT, PREDICT_IMAGES],
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
    classes = {name.decode() for name in outputs['classes'].numpy().ravel()}
    if not classes <= set(class_names) or outputs['probabilities'].shape[-1] != len(
        class_names):
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


def _publish(staging: str, target: str, overwrite: bool) -> None:
  """Renames the finished `staging` directory to `target`, replacing it only if `overwrite`."""
  if not os.path.exists(target):
    os.rename(staging, target)
    return
  if not overwrite:
    raise FileExistsError(f'{target} already exists; export to another --version or pass '
                          '--overwrite to replace it.')
  retired = tempfile.mkdtemp(prefix=f'.{os.path.basename(target)}.replaced-',
                             dir=os.path.dirname(target))
  os.rename(target, os.path.join(retired, 'old'))
  os.rename(staging, target)
  shutil.rmtree(retired)


def export(workdir: str, export_dir: str, *, version: int = 0, overwrite: bool = False,
           allow_unfinished: bool = False) -> str:
  """Exports a training run as `export_dir/<version>/` for TF Serving.

  Args:
    workdir: the finished training run.
    export_dir: the model's base directory, the one TF Serving watches.
    version: the version number; 0 = the next after the largest existing one (1 if none).
    overwrite: replace an existing version directory (TF Serving may keep serving the old
      one it loaded; prefer a new version for a served model).
    allow_unfinished: export the newest checkpoint of a run without final_metrics.json.

  Returns:
    The version directory written.

  Raises:
    FileExistsError: the version exists and `overwrite` is False.
    ValueError: a negative version, or an unfinished run without `allow_unfinished`.
    FileNotFoundError: `workdir` holds no training run.
  """
  if version < 0:
    raise ValueError(f'--version={version} must be a positive integer, or 0 for the next '
                     'free version.')
  if not version:
    version = next_version(export_dir)
    logging.info('Exporting as version %d, the next after those in %s.', version, export_dir)
  target = os.path.join(os.path.abspath(export_dir), str(version))
  if os.path.exists(target) and not overwrite:
    raise FileExistsError(f'{target} already exists; export to another --version (the next '
                          f'free one is {next_version(export_dir)}) or pass --overwrite.')
  trained = restore.restore(workdir, allow_unfinished=allow_unfinished)
  os.makedirs(export_dir, exist_ok=True)
  # Hidden and non-numeric, so TF Serving never mistakes a half-written export for a version.
  # Not tempfile.mkdtemp: its directories are private (0700), and this one becomes the
  # version, which a TF Serving running as another user (non-root containers) must read.
  staging = os.path.join(export_dir, f'.{version}.incomplete-{uuid.uuid4().hex}')
  os.mkdir(staging)
  try:
    write_saved_model(trained, staging)
    extra = os.path.join(staging, 'assets.extra')
    os.makedirs(extra)
    inputs = warmup_inputs(trained.image_size)
    write_warmup(os.path.join(extra, WARMUP_FILE), inputs)
    with open(os.path.join(extra, METADATA_FILE), 'w') as f:
      json.dump(_metadata(trained, workdir), f, indent=2)
    _check_loads(staging, inputs, trained.class_names)
    _publish(staging, target, overwrite)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  logging.info('Exported %s (step %d of %s) to %s.', trained.checkpoint, trained.step,
               workdir, target)
  return target
