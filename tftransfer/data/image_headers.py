"""What an encoded image's headers say, read in the graph without decoding its pixels.

A serving box must refuse a decompression bomb (a few kilobytes of PNG that decode to
gigabytes) before it allocates the decoded image, and every image must come out as viewers
display it. `read` gathers, with string ops on one scalar tf.string (so it runs inside
tf.function, tf.data and tf.map_fn, and in the exported serving graph):

  shape        [frames, height, width] decoding allocates (as stored: a JPEG's EXIF
               orientation, exif.py, may turn it). TensorFlow reads JPEG dimensions with
               `tf.image.extract_jpeg_shape`; for the other formats the fixed-position fields:
    PNG   IHDR width, height: big-endian uint32 at bytes 16 and 20
    GIF   not the logical screen size at bytes 6 and 8: TF's decoder allocates every
          frame (even when asked for the first), each as large as the largest frame, so
          the blocks are walked to count the frames and find their extents (_gif_walk)
    BMP   BITMAPINFOHEADER width, height: little-endian int32 at bytes 18 and 22 (a negative
          height means top-down rows)
    WebP  RIFF container; 'VP8X' canvas size (24-bit, minus one) at 24 and 27, 'VP8 ' frame
          size (14 bits) at 26 and 28, or 'VP8L' bit-packed size (14 bits each) from byte 21
  refusal      why TensorFlow would decode the image wrongly or not size it, '' when it would
               not: JPEG XL, OS/2 and RLE-compressed BMPs, 32-bit BMPs whose bit-field masks are
               not BGR(A), GIFs whose first frame does not cover the screen from its corner
"""

import typing

import tensorflow as tf

# Long enough for every header field above (BMP bit-field masks end at byte 70).
_HEADER_BYTES = 72
# Signatures of JPEG XL (bare codestream, ISO container), which TensorFlow 2.21 also decodes.
_JPEG_XL = (b'\xff\x0a', b'\x00\x00\x00\x0cJXL ')
# BMP compression field values (bytes 30-33).
_BMP_RGB, _BMP_RLE8, _BMP_RLE4, _BMP_BITFIELDS, _BMP_ALPHABITFIELDS = 0, 1, 2, 3, 6
# The masks TensorFlow's BMP decoder assumes for 32-bit pixels: bytes B, G, R (A).
_BMP_BGR_MASKS = (0x00FF0000, 0x0000FF00, 0x000000FF)


class HeaderFacts(typing.NamedTuple):
  shape: tf.Tensor  # int64 [3]: frames, height, width as stored; [1, -1, -1] if unknown
  refusal: tf.Tensor  # tf.string scalar: why the image is not used, b'' when it is


def bytes_at(encoded: tf.Tensor, offset, size: int) -> tf.Tensor:
  """int64 [size]: the bytes of scalar tf.string `encoded` from `offset` (a Python or tensor
  integer), zero-padded past its end."""
  length = tf.cast(tf.strings.length(encoded), tf.int64)
  offset = tf.cast(tf.clip_by_value(tf.cast(offset, tf.int64), 0, length), tf.int32)
  padded = tf.strings.join([tf.strings.substr(encoded, offset, size),
                            tf.constant(b'\0' * size)])
  raw = tf.io.decode_raw(tf.strings.substr(padded, 0, size), tf.uint8)
  return tf.cast(tf.reshape(raw, [size]), tf.int64)


def starts_with(header: tf.Tensor, offset: int, magic: bytes) -> tf.Tensor:
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
  extended = starts_with(header, 12, b'VP8X')
  lossy = starts_with(header, 12, b'VP8 ')
  lossless = starts_with(header, 12, b'VP8L')
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


def _gif_walk(encoded: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """([frames, height, width] TF's GIF decoder allocates, whether the first frame covers the
  logical screen from its top-left corner) for `encoded`, a GIF.

  Walks the GIF's blocks one data sub-block (at most 256 bytes) per loop iteration:
  extensions and image data are skipped, and each image descriptor counts a frame and
  grows the extent to hold its rectangle (left + width, top + height; the declared screen
  size does not matter to the decoder, so this is an upper bound). Stops at the trailer or
  at anything that is not a block, which the decoder then rejects.

  TensorFlow places the first frame at its offset inside a canvas only as large as the
  largest frame, cutting it off, and leaves the rest of a larger screen out, so a first frame
  that is offset or smaller than the screen decodes to other pixels than viewers show.
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

  def step(position, in_data, frames, height, width, covers, done):
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
    left, top = u16(position + 1), u16(position + 3)
    frame_width, frame_height = u16(position + 5), u16(position + 7)
    first_covers = tf.reduce_all([tf.equal(left, 0), tf.equal(top, 0),
                                  frame_width >= u16(6), frame_height >= u16(8)])
    return (tf.where(in_data, data_next[0], block_next[0]),
            tf.where(in_data, data_next[1], block_next[1]),
            frames + tf.cast(counted, tf.int64),
            tf.where(counted, tf.maximum(height, top + frame_height), height),
            tf.where(counted, tf.maximum(width, left + frame_width), width),
            tf.where(tf.logical_and(counted, tf.equal(frames, 0)), first_covers, covers),
            tf.logical_and(tf.logical_not(in_data), tf.logical_not(block_next[1])))

  start = 13 + color_table_bytes(byte(10))
  _, _, frames, height, width, covers, _ = tf.while_loop(
      lambda position, *state: tf.logical_and(position <= last, tf.logical_not(state[-1])),
      step, (start, tf.constant(False), tf.constant(0, tf.int64), tf.constant(0, tf.int64),
             tf.constant(0, tf.int64), tf.constant(True), tf.constant(False)))
  return tf.stack([tf.maximum(frames, 1), height, width]), covers


def _bmp_refusal(header: tf.Tensor) -> tf.Tensor:
  """Why TensorFlow's BMP decoder would misread this BMP, b'' when it would not.

  TensorFlow reads width, height and bits per pixel and assumes BGR(A) bytes, ignoring the
  header size, the compression and the bit-field masks. (Palette BMPs, whose colour table it
  also ignores, are decoded by bmp.py instead.)
  """
  header_size = _unsigned(header, 14, 4, big_endian=False)
  compression = _unsigned(header, 30, 4, big_endian=False)
  bits = _unsigned(header, 28, 2, big_endian=False)
  masks = [_unsigned(header, 54 + 4 * i, 4, big_endian=False) for i in range(3)]
  bit_fields = tf.logical_or(tf.equal(compression, _BMP_BITFIELDS),
                             tf.equal(compression, _BMP_ALPHABITFIELDS))
  bgr = tf.reduce_all([tf.equal(mask, expected) for mask, expected in zip(masks, _BMP_BGR_MASKS)])
  refusals = [
      (header_size < 40, 'an OS/2 BMP (BITMAPCOREHEADER), which TensorFlow misreads'),
      (tf.logical_or(tf.equal(compression, _BMP_RLE8), tf.equal(compression, _BMP_RLE4)),
       'an RLE-compressed BMP, which TensorFlow cannot decode'),
      (tf.logical_and(bit_fields, tf.logical_and(tf.equal(bits, 32), tf.logical_not(bgr))),
       'a 32-bit BMP whose bit-field masks are not BGR(A), which TensorFlow misreads'),
  ]
  reason = tf.constant(b'')
  for condition, text in reversed(refusals):
    reason = tf.where(condition, text, reason)
  return reason


def known_format(encoded: tf.Tensor) -> tf.Tensor:
  """bool scalar: `encoded` starts as a JPEG, PNG, GIF, BMP or WebP file does."""
  header = bytes_at(encoded, 0, 16)
  return tf.reduce_any([
      starts_with(header, 0, b'\xff\xd8\xff'), starts_with(header, 0, b'\x89PNG\r\n\x1a\n'),
      starts_with(header, 0, b'GIF8'), starts_with(header, 0, b'BM'),
      tf.logical_and(starts_with(header, 0, b'RIFF'), starts_with(header, 8, b'WEBP'))])


def read(encoded: tf.Tensor) -> HeaderFacts:
  """The shape and any refusal of `encoded`, from its headers alone.

  Args:
    encoded: scalar tf.string holding an image file.

  Returns:
    HeaderFacts (see the module docstring).

  Raises:
    tf.errors.InvalidArgumentError (when run): data that starts like a JPEG but whose
      markers are corrupt.
  """
  header = bytes_at(encoded, 0, _HEADER_BYTES)
  one = tf.constant([1], tf.int64)
  is_jpeg = starts_with(header, 0, b'\xff\xd8\xff')
  is_gif = starts_with(header, 0, b'GIF8')
  is_bmp = starts_with(header, 0, b'BM')
  sizes = [
      (starts_with(header, 0, b'\x89PNG\r\n\x1a\n'),
       tf.stack([_unsigned(header, 20, 4, big_endian=True),
                 _unsigned(header, 16, 4, big_endian=True)])),
      (is_bmp, tf.abs(tf.stack([_signed32(header, 22), _signed32(header, 18)]))),
      (tf.logical_and(starts_with(header, 0, b'RIFF'), starts_with(header, 8, b'WEBP')),
       tf.stack(_webp_size(header))),
  ]
  size = tf.constant([-1, -1], tf.int64)
  for matches, declared in reversed(sizes):
    size = tf.where(matches, declared, size)

  def jpeg_shape():
    stored = tf.cast(tf.image.extract_jpeg_shape(encoded)[:2], tf.int64)
    return tf.concat([one, stored], 0), tf.constant(True)

  # extract_jpeg_shape parses JPEG markers only and the GIF walk reads the whole file:
  # both run only for their own format, hence the conds.
  shape, gif_covers = tf.cond(
      is_jpeg, jpeg_shape,
      lambda: tf.cond(is_gif, lambda: _gif_walk(encoded),
                      lambda: (tf.concat([one, size], 0), tf.constant(True))))
  jpeg_xl = tf.reduce_any([starts_with(header, 0, magic) for magic in _JPEG_XL])
  refusal = tf.where(jpeg_xl, 'JPEG XL, which is not supported (serving could not size it)',
                     tf.where(is_bmp, _bmp_refusal(header), tf.constant(b'')))
  refusal = tf.where(gif_covers, refusal, 'a GIF whose first frame does not cover its screen '
                     'from the top-left corner, which TensorFlow decodes cut off')
  return HeaderFacts(shape=shape, refusal=refusal)


def decoded_shape(encoded: tf.Tensor) -> tf.Tensor:
  """The [frames, height, width] (int64) decoding `encoded` allocates, without decoding it.

  Args:
    encoded: scalar tf.string holding a JPEG, PNG, GIF, BMP or WebP file.

  Returns:
    int64 [3]: [frames, height, width] as stored (frames is 1 but for animated GIFs), or
    [1, -1, -1] when the bytes are none of these formats.
  """
  return read(encoded).shape
