"""What the audit knows of each image besides its backbone features: hashes and a thumbnail.

One tf.data pass decodes every image (with `image_ops.decode_image`, as training does) and
computes
  - a 64-bit fingerprint of the file's bytes (file sources only; 0 otherwise),
  - a 64-bit fingerprint of the decoded pixels and their shape (same picture, any encoding
    that decodes to it: a PNG saved twice with different compression),
  - a thumbnail descriptor: the central square shrunk to 8x8 by area averaging, grey,
    added to its mirror image (so a mirrored copy has the same descriptor), minus its mean,
    L2-normalised. Cosine similarity of these finds re-encoded, resized and mirrored copies
    that pooled backbone features, trained to ignore the exact picture, score lower than
    some distinct photos of one class (scripts/audit_cifar10.py measures both).

Fingerprints are TensorFlow's farmhash64 (`tf.fingerprint`): a collision between two of
50,000 different images has a probability of about 1e-10.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from tftransfer.data import image_ops
from tftransfer.data.sources import Split

THUMBNAIL_SIDE = 8  # pixels of the thumbnail descriptor's side


@dataclasses.dataclass(frozen=True)
class Descriptors:
  """Per-image hashes and thumbnail descriptors, in the split's order."""
  byte_hashes: np.ndarray  # uint64 [N]; 0 when the source has no files
  pixel_hashes: np.ndarray  # uint64 [N]
  thumbnails: np.ndarray  # float32 [N, THUMBNAIL_SIDE**2], unit norm (0 for a flat image)

  @staticmethod
  def concatenate(parts: list['Descriptors']) -> 'Descriptors':
    return Descriptors(*(np.concatenate([getattr(part, field.name) for part in parts])
                         for field in dataclasses.fields(Descriptors)))


def _fingerprint(value: tf.Tensor) -> tf.Tensor:
  """farmhash64 of a string scalar, as int64 (bit-cast)."""
  digest = tf.fingerprint(tf.expand_dims(value, 0))[0]  # uint8 [8]
  return tf.bitcast(digest, tf.int64)


def thumbnail(image: tf.Tensor) -> tf.Tensor:
  """uint8 [H, W, 3] -> float32 [THUMBNAIL_SIDE**2]: the mirror-symmetric grey descriptor."""
  shape = tf.shape(image)
  side = tf.minimum(shape[0], shape[1])
  top, left = (shape[0] - side) // 2, (shape[1] - side) // 2
  square = tf.cast(image[top:top + side, left:left + side], tf.float32)
  small = tf.image.resize(square, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), method='area')
  grey = tf.reduce_mean(small, axis=-1)
  symmetric = grey + tf.reverse(grey, axis=[1])
  centred = tf.reshape(symmetric - tf.reduce_mean(symmetric), [-1])
  return tf.math.divide_no_nan(centred, tf.norm(centred))


def _describe(byte_hash, image):
  # The serialised tensor holds its shape too: same pixels in another shape differ.
  return byte_hash, _fingerprint(tf.io.serialize_tensor(image)), thumbnail(image)


def compute(split: Split) -> Descriptors:
  """Decodes every image of `split` once and describes it (see the module docstring)."""
  if split.paths is not None:
    files = tf.data.Dataset.from_tensor_slices(
        tf.constant([os.fsencode(path) for path in split.paths], tf.string))
    examples = files.map(lambda path: _read(tf.io.read_file(path)),
                         num_parallel_calls=tf.data.AUTOTUNE)
  else:
    examples = split.dataset().map(lambda image, label: (tf.constant(0, tf.int64), image),
                                   num_parallel_calls=tf.data.AUTOTUNE)
  described = examples.map(_describe, num_parallel_calls=tf.data.AUTOTUNE).batch(1024)
  parts = [Descriptors(byte_hashes.numpy().view(np.uint64), pixel_hashes.numpy().view(np.uint64),
                       thumbnails.numpy())
           for byte_hashes, pixel_hashes, thumbnails in described]
  if not parts:
    return Descriptors(np.zeros([0], np.uint64), np.zeros([0], np.uint64),
                       np.zeros([0, THUMBNAIL_SIDE**2], np.float32))
  return Descriptors.concatenate(parts)


def _read(encoded):
  return _fingerprint(encoded), image_ops.decode_image(encoded)
