"""What an encoded image's headers say, read in the graph without decoding its pixels.

A serving box must refuse a decompression bomb (a few kilobytes of PNG that decode to
gigabytes) before it allocates the decoded image, and every image must come out as viewers
display it. `read` gathers, with string ops on one scalar tf.string (so it runs inside
tf.function, tf.data and tf.map_fn, and in the exported serving graph), in a few vector ops
over the first bytes (a tf.data map pays per op, and a scan runs it on every file):

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

import numpy as np
import tensorflow as tf

# Long enough for every header field below (BMP bit-field masks end at byte 66).
_HEADER_BYTES = 72
# Signatures: (name, offset, bytes). JPEG XL (bare codestream, ISO container) is refused:
# TensorFlow 2.21 decodes it, but serving could not size it before decoding.
_MAGIC = (('jpeg', 0, b'\xff\xd8\xff'), ('png', 0, b'\x89PNG\r\n\x1a\n'), ('gif', 0, b'GIF8'),
          ('bmp', 0, b'BM'), ('riff', 0, b'RIFF'), ('webp', 8, b'WEBP'),
          ('vp8x', 12, b'VP8X'), ('vp8', 12, b'VP8 '), ('vp8l', 12, b'VP8L'),
          ('jxl_codestream', 0, b'\xff\x0a'), ('jxl_container', 0, b'\x00\x00\x00\x0cJXL '))
# Integer fields: (name, offset, bytes, big-endian).
_FIELDS = (('png_width', 16, 4, True), ('png_height', 20, 4, True),
           ('bmp_info_size', 14, 4, False), ('bmp_width', 18, 4, False),
           ('bmp_height', 22, 4, False), ('bmp_bits', 28, 2, False),
           ('bmp_compression', 30, 4, False), ('bmp_red_mask', 54, 4, False),
           ('bmp_green_mask', 58, 4, False), ('bmp_blue_mask', 62, 4, False),
           ('webp_extended_width', 24, 3, False), ('webp_extended_height', 27, 3, False),
           ('webp_lossy_width', 26, 2, False), ('webp_lossy_height', 28, 2, False),
           ('webp_lossless_bits', 21, 4, False))
# BMP compression field values.
_BMP_RGB, _BMP_RLE8, _BMP_RLE4, _BMP_BITFIELDS, _BMP_ALPHABITFIELDS = 0, 1, 2, 3, 6
# The masks TensorFlow's BMP decoder assumes for 32-bit pixels: bytes B, G, R (A).
_BMP_BGR_MASKS = (0x00FF0000, 0x0000FF00, 0x000000FF)
_PALETTE_BITS = (1, 2, 4, 8)
# What read() tells decode_image to decode with.
JPEG_DECODER, PALETTE_BMP_DECODER, TENSORFLOW_DECODER = 0, 1, 2


def _magic_table() -> tuple[np.ndarray, np.ndarray]:
  """(expected bytes, which bytes count) [signatures, 16] for comparing all at once."""
  expected = np.zeros((len(_MAGIC), 16), np.int64)
  counted = np.zeros((len(_MAGIC), 16), bool)
  for row, (_, offset, magic) in enumerate(_MAGIC):
    expected[row, offset:offset + len(magic)] = list(magic)
    counted[row, offset:offset + len(magic)] = True
  return expected, counted


def _field_weights() -> np.ndarray:
  """int64 [fields, _HEADER_BYTES]: a header's bytes times this are the fields' values."""
  weights = np.zeros((len(_FIELDS), _HEADER_BYTES), np.int64)
  for row, (_, offset, size, big_endian) in enumerate(_FIELDS):
    powers = [256**i for i in range(size)]
    weights[row, offset:offset + size] = powers[::-1] if big_endian else powers
  return weights


class HeaderFacts(typing.NamedTuple):
  shape: tf.Tensor  # int64 [3]: frames, height, width as stored; [1, -1, -1] if unknown
  refusal: tf.Tensor  # tf.string scalar: why the image is not used, b'' when it is
  decoder: tf.Tensor  # int32 scalar: JPEG_DECODER, PALETTE_BMP_DECODER or TENSORFLOW_DECODER


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


def _magic(header: tf.Tensor) -> dict[str, tf.Tensor]:
  """{signature name: bool scalar} for every signature of _MAGIC."""
  expected, counted = _magic_table()
  matches = tf.reduce_all(tf.logical_or(tf.equal(header[tf.newaxis, :16], expected),
                                        tf.logical_not(counted)), axis=1)
  return dict(zip((name for name, _, _ in _MAGIC), tf.unstack(matches)))


def _fields(header: tf.Tensor) -> dict[str, tf.Tensor]:
  """{field name: int64 scalar} for every field of _FIELDS, read in one product."""
  values = tf.linalg.matvec(tf.constant(_field_weights()), header)
  return dict(zip((name for name, _, _, _ in _FIELDS), tf.unstack(values)))


def _signed32(value: tf.Tensor) -> tf.Tensor:
  return tf.where(value >= 2**31, value - 2**32, value)


def _webp_size(magic: dict, fields: dict) -> tf.Tensor:
  """[height, width] of a WebP image from its first chunk; [-1, -1] for an unknown chunk."""
  # VP8L: after the 0x2f signature byte, 14 bits of width-1 then 14 bits of height-1, LSB first.
  bits = fields['webp_lossless_bits']
  sizes = tf.stack([
      [1 + fields['webp_extended_height'], 1 + fields['webp_extended_width']],
      [fields['webp_lossy_height'] % 2**14, fields['webp_lossy_width'] % 2**14],
      [1 + (bits // 2**14) % 2**14, 1 + bits % 2**14], tf.constant([-1, -1], tf.int64)])
  chunk = tf.argmax(tf.cast(tf.stack([magic['vp8x'], magic['vp8'], magic['vp8l'], True]),
                            tf.int32), output_type=tf.int32)
  return sizes[chunk]


# Long because the block walk is one tf.while_loop whose body must stay in one graph.
def _gif_walk(encoded: tf.Tensor, is_gif: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """([frames, height, width] TF's GIF decoder allocates, whether the first frame covers the
  logical screen from its top-left corner) for `encoded`, when `is_gif`; for anything else
  the loop runs no step (and the result means nothing).

  Walks the GIF's blocks one data sub-block (at most 256 bytes) per loop iteration:
  extensions and image data are skipped, and each image descriptor counts a frame and
  grows the extent to hold its rectangle (left + width, top + height; the declared screen
  size does not matter to the decoder, so this is an upper bound). Stops at the trailer or
  at anything that is not a block, which the decoder then rejects.

  TensorFlow places the first frame at its offset inside a canvas only as large as the
  largest frame, cutting it off, and leaves the rest of a larger screen out, so a first frame
  that is offset or smaller than the screen decodes to other pixels than viewers show.
  """
  # Not in a tf.cond: nested control flow costs seconds to optimise in every tf.data map.
  # One NUL appended, so that gather always has a byte to read.
  gif_bytes = tf.strings.substr(encoded, 0, tf.where(is_gif, tf.strings.length(encoded), 0))
  data = tf.cast(tf.io.decode_raw(tf.strings.join([gif_bytes, '\0']), tf.uint8), tf.int64)
  last = tf.cast(tf.size(data), tf.int64) - 2

  def byte(index):  # 0 past the end, so a truncated file walks to its end and stops.
    index = tf.cast(index, tf.int64)
    return tf.where(index <= last, tf.gather(data, tf.clip_by_value(index, 0, last + 1)), 0)

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


def _bmp_refusal(fields: dict) -> tf.Tensor:
  """Why TensorFlow's BMP decoder would misread this BMP, b'' when it would not.

  TensorFlow reads width, height and bits per pixel and assumes BGR(A) bytes, ignoring the
  header size, the compression and the bit-field masks. (Palette BMPs, whose colour table it
  also ignores, are decoded by bmp.py instead.)
  """
  compression = fields['bmp_compression']
  masks = tf.stack([fields['bmp_red_mask'], fields['bmp_green_mask'], fields['bmp_blue_mask']])
  bit_fields = tf.reduce_any(tf.equal(compression, [_BMP_BITFIELDS, _BMP_ALPHABITFIELDS]))
  not_bgr = tf.reduce_any(tf.not_equal(masks, _BMP_BGR_MASKS))
  refusals = [
      (fields['bmp_info_size'] < 40, 'an OS/2 BMP (BITMAPCOREHEADER), which TensorFlow misreads'),
      (tf.reduce_any(tf.equal(compression, [_BMP_RLE8, _BMP_RLE4])),
       'an RLE-compressed BMP, which TensorFlow cannot decode'),
      (tf.reduce_all([bit_fields, tf.equal(fields['bmp_bits'], 32), not_bgr]),
       'a 32-bit BMP whose bit-field masks are not BGR(A), which TensorFlow misreads'),
  ]
  reason = tf.constant(b'')
  for condition, text in reversed(refusals):
    reason = tf.where(condition, text, reason)
  return reason


def known_format(encoded: tf.Tensor) -> tf.Tensor:
  """bool scalar: `encoded` starts as a JPEG, PNG, GIF, BMP or WebP file does."""
  magic = _magic(bytes_at(encoded, 0, 16))
  return tf.reduce_any([magic['jpeg'], magic['png'], magic['gif'], magic['bmp'],
                        tf.logical_and(magic['riff'], magic['webp'])])


def read(encoded: tf.Tensor) -> HeaderFacts:
  """The shape, any refusal and the decoder of `encoded`, from its headers alone.

  Args:
    encoded: scalar tf.string holding an image file.

  Returns:
    HeaderFacts (see the module docstring).

  Raises:
    tf.errors.InvalidArgumentError (when run): data that starts like a JPEG but whose
      markers are corrupt.
  """
  header = bytes_at(encoded, 0, _HEADER_BYTES)
  magic, fields = _magic(header), _fields(header)
  webp = tf.logical_and(magic['riff'], magic['webp'])
  size = tf.stack([
      [fields['png_height'], fields['png_width']],
      tf.abs(tf.stack([_signed32(fields['bmp_height']), _signed32(fields['bmp_width'])])),
      _webp_size(magic, fields), tf.constant([-1, -1], tf.int64)])[tf.argmax(tf.cast(tf.stack(
          [magic['png'], magic['bmp'], webp, True]), tf.int32), output_type=tf.int32)]
  one = tf.constant([1], tf.int64)
  # extract_jpeg_shape parses JPEG markers only, hence the cond; control flow stays one level
  # deep (see _gif_walk).
  jpeg_size = tf.cond(magic['jpeg'],
                      lambda: tf.cast(tf.image.extract_jpeg_shape(encoded)[:2], tf.int64),
                      lambda: tf.constant([-1, -1], tf.int64))
  gif_shape, gif_covers = _gif_walk(encoded, magic['gif'])
  shape = tf.where(magic['jpeg'], tf.concat([one, jpeg_size], 0),
                   tf.where(magic['gif'], gif_shape, tf.concat([one, size], 0)))
  gif_covers = tf.logical_or(tf.logical_not(magic['gif']), gif_covers)
  jpeg_xl = tf.logical_or(magic['jxl_codestream'], magic['jxl_container'])
  refusal = tf.where(jpeg_xl, 'JPEG XL, which is not supported (serving could not size it)',
                     tf.where(magic['bmp'], _bmp_refusal(fields), tf.constant(b'')))
  refusal = tf.where(gif_covers, refusal, 'a GIF whose first frame does not cover its screen '
                     'from the top-left corner, which TensorFlow decodes cut off')
  palette_bmp = tf.reduce_all([magic['bmp'], tf.equal(fields['bmp_compression'], _BMP_RGB),
                               tf.reduce_any(tf.equal(fields['bmp_bits'], _PALETTE_BITS))])
  decoder = tf.where(magic['jpeg'], JPEG_DECODER,
                     tf.where(palette_bmp, PALETTE_BMP_DECODER, TENSORFLOW_DECODER))
  return HeaderFacts(shape=shape, refusal=refusal, decoder=decoder)


def decoded_shape(encoded: tf.Tensor) -> tf.Tensor:
  """The [frames, height, width] (int64) decoding `encoded` allocates, without decoding it.

  Args:
    encoded: scalar tf.string holding a JPEG, PNG, GIF, BMP or WebP file.

  Returns:
    int64 [3]: [frames, height, width] as stored (frames is 1 but for animated GIFs), or
    [1, -1, -1] when the bytes are none of these formats.
  """
  return read(encoded).shape
