"""Image dimensions read from encoded file headers, without decoding the pixels.

A serving box must refuse a decompression bomb (a few kilobytes of PNG that decode to
gigabytes) before it allocates the decoded image. TensorFlow reads JPEG dimensions with
`tf.image.extract_jpeg_shape`; it has no such op for the other formats `tf.io.decode_image`
accepts, so their fixed-position header fields are read here with string ops:

    PNG   IHDR width, height: big-endian uint32 at bytes 16 and 20
    GIF   logical screen width, height: little-endian uint16 at bytes 6 and 8 (what TF's
          decoder allocates)
    BMP   BITMAPINFOHEADER width, height: little-endian int32 at bytes 18 and 22 (a negative
          height means top-down rows)
    WebP  RIFF container; 'VP8X' canvas size (24-bit, minus one) at 24 and 27, 'VP8 ' frame
          size (14 bits) at 26 and 28, or 'VP8L' bit-packed size (14 bits each) from byte 21

Everything here works on one scalar tf.string and runs inside tf.function and tf.map_fn.
"""

import tensorflow as tf

FORMATS = ('JPEG', 'PNG', 'GIF', 'BMP', 'WebP')

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


def image_size(encoded: tf.Tensor) -> tf.Tensor:
  """The [height, width] (int64) an encoded image declares, read from its header only.

  Args:
    encoded: scalar tf.string holding a JPEG, PNG, GIF, BMP or WebP file.

  Returns:
    int64 [2]: [height, width], or [-1, -1] when the bytes are none of these formats.

  Raises:
    tf.errors.InvalidArgumentError (when run): data that starts like a JPEG but whose
      markers are corrupt.
  """
  header = _header(encoded)
  unknown = tf.constant([-1, -1], tf.int64)
  sizes = [
      (_starts_with(header, 0, b'\x89PNG\r\n\x1a\n'),
       tf.stack([_unsigned(header, 20, 4, big_endian=True),
                 _unsigned(header, 16, 4, big_endian=True)])),
      (_starts_with(header, 0, b'GIF8'),
       tf.stack([_unsigned(header, 8, 2, big_endian=False),
                 _unsigned(header, 6, 2, big_endian=False)])),
      (_starts_with(header, 0, b'BM'),
       tf.abs(tf.stack([_signed32(header, 22), _signed32(header, 18)]))),
      (tf.logical_and(_starts_with(header, 0, b'RIFF'), _starts_with(header, 8, b'WEBP')),
       tf.stack(_webp_size(header))),
  ]
  size = unknown
  for matches, declared in reversed(sizes):
    size = tf.where(matches, declared, size)
  # extract_jpeg_shape parses JPEG markers only; it fails on other data, hence the cond.
  return tf.cond(_starts_with(header, 0, b'\xff\xd8\xff'),
                 lambda: tf.cast(tf.image.extract_jpeg_shape(encoded)[:2], tf.int64),
                 lambda: size)
