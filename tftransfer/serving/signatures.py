"""The exported model's signatures: the contract clients code against, built in the graph.

    serving_default   image_bytes  string [None]                 encoded JPEG/PNG/GIF/BMP/WebP
    predict_images    images       uint8  [None, None, None, 3]  any spatial size
    both return       probabilities float32 [None, num_classes]
                      classes       string  [None, k]  class names, best first
                      scores        float32 [None, k]  their probabilities
    a multi-label model's return
                      probabilities float32 [None, num_labels]  each label's sigmoid
                      labels        string  [None, num_labels]  the labels at or above their
                                    thresholds, best first, padded with ''
                      num_labels    int32   [None]              how many there are

Each image is decoded as training decodes it (data/image_ops.py decode_image: accurate JPEG
IDCT, EXIF orientation, palette BMPs) and goes through exactly the evaluation view of training
(fit_to_storage, then center_crop_resize), so served and validated images are identical.
Bad requests fail as InvalidArgument (HTTP 400 from TF Serving) naming the image: empty bytes,
an unknown format, corrupt data, a variant TensorFlow would decode wrongly, or more pixels
than the run's `data.max_image_pixels` (all frames of an animated GIF), which is checked from
the headers before the image is decoded.

Also here: assets/labels.txt, the source of the graph's label -> class name table.
"""

import keras
import tensorflow as tf

from tftransfer import errors, files
from tftransfer.data import image_headers, image_ops

SERVING_DEFAULT = 'serving_default'
PREDICT_IMAGES = 'predict_images'
IMAGE_BYTES = 'image_bytes'
IMAGES = 'images'
LABELS_FILE = 'labels.txt'


def decode_request(encoded: tf.Tensor, index: tf.Tensor, *, image_size: int,
                   max_image_pixels: int) -> tf.Tensor:
  """Checks and decodes one request image to its evaluation view.

  Args:
    encoded: scalar tf.string, the image file's bytes.
    index: scalar int32, its position in the request (named in error messages).
    image_size: the model's input side.
    max_image_pixels: the run's data.max_image_pixels; 0 = no limit.

  Returns:
    float32 [image_size, image_size, 3] in 0-255.
  """
  name = tf.strings.format('image_bytes[{}]', index)
  checks = [tf.debugging.Assert(tf.strings.length(encoded) > 0, [tf.strings.join([
      name, ' is empty: send the bytes of a JPEG, PNG, GIF, BMP or WebP file.'])])]
  with tf.control_dependencies(checks):  # An empty request is named as such, not as unknown.
    checks.append(tf.debugging.Assert(image_headers.known_format(encoded), [tf.strings.format(
        'image_bytes[{}] is not a JPEG, PNG, GIF, BMP or WebP image ({} bytes).',
        (index, tf.strings.length(encoded)))]))
  # decode_image refuses what it would decode wrongly or what is too large before decoding.
  with tf.control_dependencies(checks):
    image = image_ops.decode_image(encoded, max_pixels=max_image_pixels, name=name)
  return image_ops.evaluation_view(image, image_size)


class Signatures:
  """The signature functions over one model; each returns the OUTPUTS dictionary."""

  def __init__(self, model: keras.Model, class_table: tf.lookup.StaticHashTable, *,
               image_size: int, top_k: int, max_image_pixels: int,
               thresholds=None):
    """`thresholds` (float [num_labels]) makes the signatures a multi-label model's."""
    self.model, self.class_table = model, class_table
    self.image_size, self.top_k, self.max_image_pixels = image_size, top_k, max_image_pixels
    self.thresholds = None if thresholds is None else tf.constant(thresholds, tf.float32)

  def _classify(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
    if self.thresholds is not None:
      return self._labels(tf.sigmoid(self.model(images, training=False)))
    probabilities = tf.nn.softmax(self.model(images, training=False))
    scores, indices = tf.math.top_k(probabilities, k=self.top_k)
    return {'probabilities': probabilities,
            'classes': self.class_table.lookup(tf.cast(indices, tf.int64)),
            'scores': scores}

  def _labels(self, probabilities: tf.Tensor) -> dict[str, tf.Tensor]:
    above = probabilities >= self.thresholds
    # Above-threshold labels first, each group by probability, best first.
    order = tf.argsort(tf.cast(above, tf.float32) * 2.0 + probabilities, axis=-1,
                       direction='DESCENDING', stable=True)
    names = self.class_table.lookup(tf.cast(order, tf.int64))
    keep = tf.gather(above, order, batch_dims=1)
    return {'probabilities': probabilities, 'labels': tf.where(keep, names, ''),
            'num_labels': tf.reduce_sum(tf.cast(above, tf.int32), axis=-1)}

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
    views = tf.map_fn(lambda image: image_ops.evaluation_view(image, self.image_size),
                      images, fn_output_signature=self._view_spec())
    return self._classify(views)


def write_labels(path: str, class_names) -> None:
  """Writes the class names, one per line in label order, as UTF-8 text (files.text_name:
  names of runs trained before class names became text get the same \\xNN escapes)."""
  class_names = [files.text_name(name) for name in class_names]
  bad = [name for name in class_names if '\n' in name or '\r' in name or not name]
  if bad:
    raise errors.InvalidValueError(
        f'Class names {bad!r} cannot be written one per line to {LABELS_FILE}; '
        'rename those class folders.')
  with open(path, 'w', encoding='utf-8') as f:
    f.writelines(f'{name}\n' for name in class_names)


def class_table(labels_path: str, num_classes: int) -> tf.lookup.StaticHashTable:
  """Label index -> class name, read from labels.txt (which the SavedModel keeps as an asset)."""
  return tf.lookup.StaticHashTable(
      tf.lookup.TextFileInitializer(
          labels_path, key_dtype=tf.int64, key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
          value_dtype=tf.string, value_index=tf.lookup.TextFileIndex.WHOLE_LINE,
          vocab_size=num_classes),
      default_value='')
