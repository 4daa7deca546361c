"""EXIF orientation of JPEGs, read and applied in the graph, so photos are used as displayed.

Cameras and phones store a portrait photo's pixels as the sensor read them (sideways) and
record how to turn them in the EXIF Orientation tag; every viewer applies it. tftransfer
applies it wherever a JPEG is decoded (training, the folder scan, the exported serving graph),
with TensorFlow ops only, so the SavedModel does it without Python.

Where the tag is (Exif 2.32, CIPA DC-008, section 4.7.2; TIFF 6.0, section 2):

    JPEG   SOI, then segments FF xx <length: uint16 BE, counting itself> <data>; the APP1
           segment (FF E1) whose data starts 'Exif\\0\\0' holds a TIFF structure
    TIFF   'II' (little-endian) or 'MM' (big-endian), 42, offset of IFD0 (uint32)
    IFD0   entry count (uint16), then 12-byte entries: tag, type, count, value; Orientation
           is tag 0x0112, a SHORT in the value field's first two bytes

The eight values and what they ask for, as Pillow's ImageOps.exif_transpose applies them:
1 as stored, 2 mirrored left-right, 3 turned 180 degrees, 4 mirrored top-bottom, 5 transposed
(mirrored along the main diagonal), 6 turned 90 degrees clockwise, 7 transversed (mirrored
along the other diagonal), 8 turned 90 degrees counter-clockwise.

PNG (eXIf) and WebP (EXIF chunk) can carry the tag too, but neither Chrome nor Firefox applies
it there, so those images are used as stored.
"""

import tensorflow as tf

from tftransfer.data.image_headers import bytes_at

_ORIENTATION_TAG = 0x0112
# Segments looked at before the first scan (SOS) in search of the EXIF segment: cameras write
# it first, and a header rarely has more than a dozen segments.
_MAX_SEGMENTS = 32
# IFD0 entries looked at: entries are sorted by tag, and fewer than a dozen tags come before
# Orientation's 0x0112.
_MAX_ENTRIES = 32
_START_OF_SCAN, _END_OF_IMAGE, _APP1 = 0xDA, 0xD9, 0xE1


def _exif_offset(encoded: tf.Tensor) -> tf.Tensor:
  """int64: where the TIFF structure of a JPEG's EXIF segment starts, or -1 if it has none."""

  def step(position, tiff, count):
    segment = bytes_at(encoded, position, 10)
    marker = segment[1]
    length = segment[2] * 256 + segment[3]
    exif = tf.logical_and(tf.equal(marker, _APP1), tf.reduce_all(tf.equal(
        segment[4:10], tf.constant(list(b'Exif\0\0'), tf.int64))))
    ended = tf.reduce_any([tf.not_equal(segment[0], 0xFF), tf.equal(marker, _START_OF_SCAN),
                           tf.equal(marker, _END_OF_IMAGE), length < 2])
    # A marker may be preceded by fill bytes (0xFF): step over them one at a time.
    fill = tf.logical_and(tf.equal(segment[0], 0xFF), tf.equal(marker, 0xFF))
    next_position = tf.where(fill, position + 1, position + 2 + length)
    found = tf.logical_and(exif, tf.logical_not(fill))
    tiff = tf.where(found, position + 10, tf.where(tf.logical_and(ended, tf.logical_not(fill)),
                                                   tf.constant(-2, tf.int64), tiff))
    return next_position, tiff, count + 1

  _, tiff, _ = tf.while_loop(
      lambda position, tiff, count: tf.logical_and(tf.equal(tiff, -1), count < _MAX_SEGMENTS),
      step, (tf.constant(2, tf.int64), tf.constant(-1, tf.int64), tf.constant(0)))
  return tf.where(tiff >= 0, tiff, -1)


def _orientation_in_tiff(encoded: tf.Tensor, tiff: tf.Tensor) -> tf.Tensor:
  """int32 1-8: the Orientation entry of IFD0 of the TIFF structure at `tiff`; 1 if none."""
  head = bytes_at(encoded, tiff, 8)
  little = tf.equal(head[0], ord('I'))

  def number(values):  # bytes -> unsigned integer in the structure's byte order, last axis
    size = values.shape[-1]
    weights = tf.constant([256**i for i in range(size)], tf.int64)
    return tf.reduce_sum(values * tf.where(little, weights, tf.reverse(weights, [0])), -1)

  directory = tiff + number(head[4:8])
  count = tf.minimum(number(bytes_at(encoded, directory, 2)), _MAX_ENTRIES)
  entries = tf.reshape(bytes_at(encoded, directory + 2, 12 * _MAX_ENTRIES), [_MAX_ENTRIES, 12])
  is_orientation = tf.logical_and(tf.equal(number(entries[:, 0:2]), _ORIENTATION_TAG),
                                  tf.range(_MAX_ENTRIES, dtype=tf.int64) < count)
  values = tf.where(is_orientation, number(entries[:, 8:10]), 0)
  value = tf.reduce_max(values)
  return tf.cast(tf.where(tf.logical_and(value >= 1, value <= 8), value, 1), tf.int32)


def jpeg_orientation(encoded: tf.Tensor) -> tf.Tensor:
  """The EXIF Orientation of a JPEG, 1 (as stored) when it has none or an invalid one.

  Args:
    encoded: scalar tf.string, a JPEG file's bytes.

  Returns:
    int32 scalar in 1-8.
  """
  tiff = _exif_offset(encoded)
  return tf.cond(tiff >= 0, lambda: _orientation_in_tiff(encoded, tiff),
                 lambda: tf.constant(1, tf.int32))


def apply_orientation(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
  """Turns and mirrors `image` as EXIF `orientation` asks (see the module docstring).

  Args:
    image: [H, W, C] pixels as stored.
    orientation: int32 scalar 1-8.

  Returns:
    [H, W, C], or [W, H, C] for orientations 5-8, as viewers display the image.
  """
  # Every orientation is a transpose (5-8) followed by mirroring left-right and/or
  # top-bottom: 6 = transpose + left-right is a quarter turn clockwise, and so on.
  image = tf.cond(orientation >= 5, lambda: tf.transpose(image, [1, 0, 2]), lambda: image)
  left_right = tf.reduce_any(tf.equal(orientation, [2, 3, 6, 7]))
  top_bottom = tf.reduce_any(tf.equal(orientation, [3, 4, 7, 8]))
  image = tf.cond(left_right, lambda: tf.reverse(image, [1]), lambda: image)
  return tf.cond(top_bottom, lambda: tf.reverse(image, [0]), lambda: image)
