"""Image dimensions read from encoded file headers, without decoding the pixels.

A serving box must refuse a decompression bomb (a few kilobytes of PNG that decode to
gigabytes) before it allocates the decoded image. TensorFlow reads JPEG dimensions with
`tf.image.extract_jpeg_shape`; it has no such op for the other formats `tf.io.decode_image`
accepts, so their fixed-position header fields are read here with string ops:

    PNG   IHDR width, height: big-endian uint32 at bytes 16 and 20
    GIF   not the logical screen size at bytes 6 and 8: TF's decoder allocates every
          frame (even when asked for the first), each as large as the largest frame, so
          the blocks are walked to count the frames and find their extents (_gif_shape)
    BMP   BITMAPINFOHEADER width, height: little-endian int32 at bytes 18 and 22 (a negative
          height means top-down rows)
    WebP  RIFF container; 'VP8X' canvas size (24-bit, minus one) at 24 and 27, 'VP8 ' frame
          size (14 bits) at 26 and 28, or 'VP8L' bit-packed size (14 bits each) from byte 21

Everything here works on one scalar tf.string and runs inside tf.function and tf.map_fn.
"""

import tensorflow as tf

# Long enough for every header field above.
_HEADER_BYTES = 32


def _header(encoded: tf.Tensor) -> tf.Tensor:
  """The first _HEADER_BYTES bytes as int64, zero-padded when the data is shorter."""
  padded = tf.strings.join([tf.strings.substr(encoded, 0, _HEADER_BYTES),
                            tf.constant(b'\0' * _HEADER_BYTES)])
  raw = tf.io.decode_raw(tf.strings.substr(padded, 0, _HEADER_BYTES), tf.uint8)
  return tf.cast(tf.reshape(raw, [_HEADER_BYTES]), tf.int64)


def _starts_with(header: tf.Tensor, offset: int, magic: bytes) -> tf.Tensor:
  expected = tf.constant(list(magic), tf.int64)
  return tf.reduce_all(tf.equal(header[offset:offset + len(magic)], expected))


def _unsigned(header: tf.Tensor, offset: int, size: int, *, big_endian: bool) -> tf.Tensor:
  """The unsigned integer of `size` bytes at `offset`."""
  value = tf.constant(0, tf.int64)
  order = range(size) if big_endian else reversed(range(size))
  for index in order:
    value = value * 256 + header[offset + index]
  return value


def _signed32(header: tf.Tensor, offset: int) -> tf.Tensor:
  value = _unsigned(header, offset, 4, big_endian=False)
  return tf.where(value >= 2**31, value - 2**32, value)


def _webp_size(header: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """(height, width) of a WebP image from its first chunk; (-1, -1) for an unknown chunk."""
  extended = _starts_with(header, 12, b'VP8X')
  lossy = _starts_with(header, 12, b'VP8 ')
  lossless = _starts_with(header, 12, b'VP8L')
  extended_size = (1 + _unsigned(header, 27, 3, big_endian=False),
                   1 + _unsigned(header, 24, 3, big_endian=False))
  lossy_size = (_unsigned(header, 28, 2, big_endian=False) % 2**14,
                _unsigned(header, 26, 2, big_endian=False) % 2**14)
  # VP8L: after the 0x2f signature byte, 14 bits of width-1 then 14 bits of height-1, LSB first.
  bits = _unsigned(header, 21, 4, big_endian=False)
  lossless_size = (1 + (bits // 2**14) % 2**14, 1 + bits % 2**14)
  unknown = tf.constant(-1, tf.int64)
  height = tf.where(extended, extended_size[0], tf.where(
      lossy, lossy_size[0], tf.where(lossless, lossless_size[0], unknown)))
  width = tf.where(extended, extended_size[1], tf.where(
      lossy, lossy_size[1], tf.where(lossless, lossless_size[1], unknown)))
  return height, width


def _gif_shape(encoded: tf.Tensor) -> tf.Tensor:
  """[frames, height, width] that TF's GIF decoder allocates for `encoded` (a GIF).

  Walks the GIF's blocks one data sub-block (at most 256 bytes) per loop iteration:
  extensions and image data are skipped, and each image descriptor counts a frame and
  grows the extent to hold its rectangle (left + width, top + height; the declared screen
  size does not matter to the decoder). Stops at the trailer or at anything that is not a
  block, which the decoder then rejects.
  """
  data = tf.cast(tf.io.decode_raw(encoded, tf.uint8), tf.int64)
  last = tf.cast(tf.size(data), tf.int64) - 1

  def byte(index):  # 0 past the end, so a truncated file walks to its end and stops.
    index = tf.cast(index, tf.int64)
    return tf.where(index <= last, tf.gather(data, tf.clip_by_value(index, 0, last)), 0)

  def u16(index):
    return byte(index) + 256 * byte(index + 1)

  def color_table_bytes(flags):  # 3 * 2^(N+1) when the table flag (bit 7) is set.
    return tf.where(flags >= 128, 3 * tf.bitwise.left_shift(
        tf.constant(2, tf.int64), tf.bitwise.bitwise_and(flags, 7)), 0)

  def step(position, in_data, frames, height, width, done):
    value = byte(position)
    # Inside a block's data: `value` is the next sub-block's size; 0 ends the block.
    data_next = (position + 1 + value, value > 0)
    # Between blocks: an extension (0x21, label, data), an image (0x2C, 9 bytes of
    # descriptor, local colour table, LZW code size, data) or anything else (the end).
    extension, image = tf.equal(value, 0x21), tf.equal(value, 0x2C)
    image_next = position + 11 + color_table_bytes(byte(position + 9))
    block_next = (tf.where(extension, position + 2, image_next),
                  tf.logical_or(extension, image))
    counted = tf.logical_and(tf.logical_not(in_data), image)
    return (tf.where(in_data, data_next[0], block_next[0]),
            tf.where(in_data, data_next[1], block_next[1]),
            frames + tf.cast(counted, tf.int64),
            tf.where(counted, tf.maximum(height, u16(position + 3) + u16(position + 7)),
                     height),
            tf.where(counted, tf.maximum(width, u16(position + 1) + u16(position + 5)),
                     width),
            tf.logical_and(tf.logical_not(in_data), tf.logical_not(block_next[1])))

  start = 13 + color_table_bytes(byte(10))
  _, _, frames, height, width, _ = tf.while_loop(
      lambda position, *state: tf.logical_and(position <= last, tf.logical_not(state[-1])),
      step, (start, tf.constant(False), tf.constant(0, tf.int64), tf.constant(0, tf.int64),
             tf.constant(0, tf.int64), tf.constant(False)))
  return tf.stack([tf.maximum(frames, 1), height, width])


def decoded_shape(encoded: tf.Tensor) -> tf.Tensor:
  """The [frames, height, width] (int64) decoding `encoded` allocates, without decoding it.

  Args:
    encoded: scalar tf.string holding a JPEG, PNG, GIF, BMP or WebP file.

  Returns:
    int64 [3]: [frames, height, width] (frames is 1 but for animated GIFs), or
    [1, -1, -1] when the bytes are none of these formats.

  Raises:
    tf.errors.InvalidArgumentError (when run): data that starts like a JPEG but whose
      markers are corrupt.
  """
  header = _header(encoded)
  one = tf.constant([1], tf.int64)
  sizes = [
      (_starts_with(header, 0, b'\x89PNG\r\n\x1a\n'),
       tf.stack([_unsigned(header, 20, 4, big_endian=True),
                 _unsigned(header, 16, 4, big_endian=True)])),
      (_starts_with(header, 0, b'BM'),
       tf.abs(tf.stack([_signed32(header, 22), _signed32(header, 18)]))),
      (tf.logical_and(_starts_with(header, 0, b'RIFF'), _starts_with(header, 8, b'WEBP')),
       tf.stack(_webp_size(header))),
  ]
  size = tf.constant([-1, -1], tf.int64)
  for matches, declared in reversed(sizes):
    size = tf.where(matches, declared, size)
  # extract_jpeg_shape parses JPEG markers only and the GIF walk reads the whole file:
  # both run only for their own format, hence the conds.
  return tf.cond(
      _starts_with(header, 0, b'\xff\xd8\xff'),
      lambda: tf.concat([one, tf.cast(tf.image.extract_jpeg_shape(encoded)[:2], tf.int64)], 0),
      lambda: tf.cond(_starts_with(header, 0, b'GIF8'), lambda: _gif_shape(encoded),
                      lambda: tf.concat([one, size], 0)))
