"""EXIF orientation of JPEGs, read and applied in the graph, so photos are used as displayed.

Cameras and phones store a portrait photo's pixels as the sensor read them (sideways) and
record how to turn them in the EXIF Orientation tag; every viewer applies it. tftransfer
applies it wherever a JPEG is decoded (training, the folder scan, the exported serving graph),
with TensorFlow ops only, so the SavedModel does it without Python.

Where the tag is (Exif 2.32, CIPA DC-008, section 4.7.2; TIFF 6.0, section 2):

    JPEG   SOI, then segments FF xx <length: uint16 BE, counting itself> <data>; the APP1
           segment (FF E1) whose data starts 'Exif\\0\\0' holds a TIFF structure. Exif puts it
           right after SOI, JFIF files right after their APP0; it is looked for in the first
           _WINDOW bytes, as the first 'Exif\\0\\0' there preceded by an APP1 marker
    TIFF   'II' (little-endian) or 'MM' (big-endian), 42, offset of IFD0 (uint32)
    IFD0   entry count (uint16), then 12-byte entries: tag, type, count, value; Orientation
           is tag 0x0112, a SHORT in the value field's first two bytes

It is found with one string split rather than a walk over the segments, and the directory
is read with vector ops: a tf.data map pays for every op it runs, far more for every loop
iteration, and the folder scan runs this on every JPEG.

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
_EXIF = b'Exif\0\0'
# Bytes from the file's start searched for the EXIF segment (it normally starts at byte 2,
# or 20 after a JFIF segment; an ICC profile or a thumbnail before it can push it further).
_WINDOW = 65536
# IFD0 entries looked at: entries are sorted by tag, and fewer than a dozen tags come before
# Orientation's 0x0112.
_MAX_ENTRIES = 24


def _tiff_offset(encoded: tf.Tensor) -> tf.Tensor:
  """int64: where the TIFF structure of a JPEG's EXIF segment starts, or -1 if none."""
  pieces = tf.strings.split(tf.strings.substr(encoded, 0, _WINDOW), sep=_EXIF, maxsplit=1)
  start = tf.strings.length(pieces[0])  # of 'Exif', when there are two pieces
  marker = tf.strings.substr(encoded, tf.maximum(start - 4, 0), 2)  # FF E1, then its length
  found = tf.logical_and(tf.size(pieces) > 1, tf.equal(marker, b'\xff\xe1'))
  return tf.where(found, tf.cast(start, tf.int64) + len(_EXIF), -1)


def _orientation_in_tiff(encoded: tf.Tensor, tiff: tf.Tensor) -> tf.Tensor:
  """int32 1-8: the Orientation entry of IFD0 of the TIFF structure at `tiff`; 1 if none."""
  head = bytes_at(encoded, tiff, 8)
  little = tf.equal(head[0], ord('I'))

  def number(values):  # bytes -> unsigned integer in the structure's byte order, last axis
    size = values.shape[-1]
    weights = tf.constant([256**i for i in range(size)], tf.int64)
    return tf.reduce_sum(values * tf.where(little, weights, tf.reverse(weights, [0])), -1)

  directory = bytes_at(encoded, tiff + number(head[4:8]), 2 + 12 * _MAX_ENTRIES)
  count = tf.minimum(number(directory[:2]), _MAX_ENTRIES)
  entries = tf.reshape(directory[2:], [_MAX_ENTRIES, 12])
  is_orientation = tf.logical_and(tf.equal(number(entries[:, 0:2]), _ORIENTATION_TAG),
                                  tf.range(_MAX_ENTRIES, dtype=tf.int64) < count)
  value = tf.reduce_max(tf.where(is_orientation, number(entries[:, 8:10]), 0))
  return tf.cast(tf.where(tf.logical_and(value >= 1, value <= 8), value, 1), tf.int32)


def jpeg_orientation(encoded: tf.Tensor) -> tf.Tensor:
  """The EXIF Orientation of a JPEG, 1 (as stored) when it has none or an invalid one.

  Args:
    encoded: scalar tf.string, a JPEG file's bytes.

  Returns:
    int32 scalar in 1-8.
  """
  tiff = _tiff_offset(encoded)
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
  def turn():
    # Every orientation is a transpose (5-8) followed by mirroring top-bottom (3, 4, 7, 8)
    # and/or left-right (2, 3, 6, 7): 6 = transpose + left-right is a quarter turn clockwise.
    turned = tf.transpose(image, tf.where(orientation >= 5, [1, 0, 2], [0, 1, 2]))
    top_bottom = tf.reduce_any(tf.equal(orientation, [3, 4, 7, 8]))
    left_right = tf.reduce_any(tf.equal(orientation, [2, 3, 6, 7]))
    return tf.reverse(turned, tf.boolean_mask([0, 1], tf.stack([top_bottom, left_right])))

  # As stored (1, nearly every image) costs nothing: no copy of the pixels.
  return tf.cond(tf.equal(orientation, 1), lambda: image, turn)
