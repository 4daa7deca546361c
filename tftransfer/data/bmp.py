"""Palette (indexed) BMPs decoded in the graph: TensorFlow's BMP decoder ignores the colour
table, reading an 8-bit BMP's palette indices as grey levels and refusing 1-, 2- and 4-bit
ones.

The layout read here (Microsoft's BITMAPINFOHEADER; little-endian integers):

    10  uint32  offset of the pixel rows from the start of the file
    14  uint32  info header size (40, or 52, 56, 108, 124 for later versions); the colour
                table follows the info header
    18  int32   width;  22 int32 height (negative: rows stored top-down, else bottom-up)
    28  uint16  bits per pixel: 1, 2, 4 or 8 for a palette image
    30  uint32  compression: 0 (none) here; RLE is refused (image_headers.py)
    46  uint32  colours in the table, 0 = 2^bits
    table       4 bytes per colour: blue, green, red, unused
    rows        each padded to a multiple of 4 bytes; the high bits of a byte hold the
                leftmost of its pixels

Everything works on one scalar tf.string, inside tf.function and tf.data alike.
"""

import tensorflow as tf

from tftransfer.data.image_headers import bytes_at, starts_with

_INFO_BYTES = 54
_PALETTE_BITS = (1, 2, 4, 8)


def _fields(encoded: tf.Tensor) -> dict[str, tf.Tensor]:
  header = bytes_at(encoded, 0, _INFO_BYTES)

  def unsigned(offset, size):
    return tf.reduce_sum(header[offset:offset + size]
                         * tf.constant([256**i for i in range(size)], tf.int64))

  height = unsigned(22, 4)
  return {'is_bmp': starts_with(header, 0, b'BM'), 'offset': unsigned(10, 4),
          'info_size': unsigned(14, 4), 'width': unsigned(18, 4),
          'height': tf.where(height >= 2**31, height - 2**32, height),
          'bits': unsigned(28, 2), 'compression': unsigned(30, 4), 'colours': unsigned(46, 4)}


def is_indexed(encoded: tf.Tensor) -> tf.Tensor:
  """bool scalar: `encoded` is an uncompressed palette BMP (1, 2, 4 or 8 bits per pixel)."""
  fields = _fields(encoded)
  return tf.reduce_all([fields['is_bmp'], tf.equal(fields['compression'], 0),
                        tf.reduce_any(tf.equal(fields['bits'], _PALETTE_BITS))])


def decode_indexed(encoded: tf.Tensor) -> tf.Tensor:
  """Decodes an uncompressed palette BMP (see is_indexed) through its colour table.

  Args:
    encoded: scalar tf.string, the BMP file's bytes.

  Returns:
    uint8 [height, width, 3] RGB, top row first. Indices beyond the colour table are black.

  Raises:
    tf.errors.InvalidArgumentError (when run): a width of 0 or less, a height of 0, or
      pixel rows that the data does not hold (a truncated file).
  """
  fields = _fields(encoded)
  width, height, bits = fields['width'], fields['height'], fields['bits']
  rows = tf.abs(height)
  row_bytes = (width * bits + 31) // 32 * 4
  end = fields['offset'] + row_bytes * rows
  checks = [tf.debugging.Assert(tf.logical_and(width > 0, rows > 0), [
                'BMP width and height must be positive.']),
            tf.debugging.Assert(end <= tf.cast(tf.strings.length(encoded), tf.int64), [
                'BMP pixel data is truncated.'])]
  with tf.control_dependencies(checks):
    data = tf.io.decode_raw(tf.strings.substr(encoded, tf.cast(fields['offset'], tf.int32),
                                              tf.cast(row_bytes * rows, tf.int32)), tf.uint8)
  data = tf.reshape(tf.cast(data, tf.int32), tf.stack([rows, row_bytes]))
  bits = tf.cast(bits, tf.int32)
  per_byte = 8 // bits
  shifts = 8 - bits * (1 + tf.range(per_byte))
  indices = tf.bitwise.bitwise_and(tf.bitwise.right_shift(data[..., tf.newaxis], shifts),
                                   tf.bitwise.left_shift(1, bits) - 1)
  indices = tf.reshape(indices, tf.stack([tf.cast(rows, tf.int32), -1]))[:, :width]
  # Up to 256 colours, blue-green-red-unused; entries beyond the table's count are black.
  colours = tf.where(tf.logical_or(fields['colours'] == 0, fields['colours'] > 256),
                     tf.bitwise.left_shift(tf.constant(1, tf.int64), tf.cast(bits, tf.int64)),
                     fields['colours'])
  table = tf.reshape(bytes_at(encoded, 14 + fields['info_size'], 4 * 256), [256, 4])
  palette = tf.where(tf.range(256, dtype=tf.int64)[:, tf.newaxis] < colours,
                     tf.reverse(table[:, :3], [1]), 0)
  image = tf.gather(tf.cast(palette, tf.uint8), indices)
  # Rows are stored bottom-up unless the height is negative.
  return tf.cond(height > 0, lambda: tf.reverse(image, [0]), lambda: image)
