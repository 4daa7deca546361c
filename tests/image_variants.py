"""A generated corpus of image-format variants and what each must decode to.

Every variant of the five formats that users' folders and clients hold (bit depths, palettes,
alpha, interlacing, progressive JPEG, CMYK, 16-bit, EXIF orientation, BMP header versions and
compressions, GIF frame layouts), written by Pillow where it can and by hand where it cannot
(BMP variants Pillow does not write, Adam7 PNG, EXIF in both byte orders). Each comes with what
`image_ops.decode_image` must do with it:

    Pillow()            the pixels Pillow decodes (EXIF orientation applied to JPEGs, as
                        viewers do), exactly
    Pixels(array)       these pixels, where Pillow itself is wrong or has no answer
    Refused(fragment)   refused with an InvalidArgument naming the variant

Imported by tests as `image_variants` (tests/ is on sys.path via its conftest.py).
"""

import dataclasses
import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps


@dataclasses.dataclass(frozen=True)
class Pillow:
  """Decodes to what Pillow decodes, pixel for pixel."""


@dataclasses.dataclass(frozen=True)
class Pixels:
  """Decodes to exactly these uint8 [H, W, 3] pixels."""
  pixels: np.ndarray


@dataclasses.dataclass(frozen=True)
class Refused:
  """Refused; the error names the variant with this fragment."""
  reason: str


HEIGHT, WIDTH = 23, 37  # odd sizes: BMP row padding, JPEG partial blocks, GIF interlace passes


def picture(height=HEIGHT, width=WIDTH, seed=0) -> np.ndarray:
  """uint8 [height, width, 3]: gradients (so JPEG decoders differ where they can) with noise."""
  rows, columns = np.mgrid[0:height, 0:width]
  smooth = np.stack([columns * 255 // width, rows * 255 // height, (rows * columns) % 256], -1)
  noise = np.random.default_rng(seed).integers(-30, 30, smooth.shape)
  return np.clip(smooth + noise, 0, 255).astype(np.uint8)


def pillow_decode(encoded: bytes) -> np.ndarray:
  """What a Pillow client decodes: the first frame, as RGB, JPEGs turned as EXIF says."""
  image = Image.open(io.BytesIO(encoded))
  if image.format == 'JPEG':
    image = ImageOps.exif_transpose(image)
  return np.asarray(image.convert('RGB'))


def pillow_bytes(image: Image.Image, image_format: str, **options) -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, image_format, **options)
  return buffer.getvalue()


def exif_segment(orientation: int, *, big_endian: bool) -> bytes:
  """A JPEG APP1 EXIF segment whose IFD0 holds an unrelated tag, then Orientation."""
  order = '>' if big_endian else '<'
  entries = [(0x010F, 2, 4, b'Cam\0'), (0x0112, 3, 1, struct.pack(order + 'HH', orientation, 0))]
  tiff = (b'MM' if big_endian else b'II') + struct.pack(order + 'HI', 42, 8)
  tiff += struct.pack(order + 'H', len(entries))
  for tag, kind, count, value in entries:
    tiff += struct.pack(order + 'HHI', tag, kind, count) + value
  tiff += b'\0\0\0\0'  # no next IFD
  data = b'Exif\0\0' + tiff
  return b'\xff\xe1' + struct.pack('>H', len(data) + 2) + data


def jpeg_with_exif(pixels: np.ndarray, orientation: int, *, big_endian=False,
                   after_jfif=True) -> bytes:
  """A baseline JPEG of `pixels` (stored as they are) carrying EXIF `orientation`, its APP1
  segment after the JFIF APP0 segment (as most cameras' files are) or right after SOI."""
  jpeg = pillow_bytes(Image.fromarray(pixels), 'JPEG', quality=92)
  assert jpeg[2:4] == b'\xff\xe0'  # Pillow writes SOI, then JFIF APP0
  app0_end = 4 + struct.unpack('>H', jpeg[4:6])[0]
  at = app0_end if after_jfif else 2
  return jpeg[:at] + exif_segment(orientation, big_endian=big_endian) + jpeg[at:]


def _bmp(width, height, bits, rows, *, palette=(), compression=0, masks=None, info_size=40,
         top_down=False) -> bytes:
  """A BMP file: `rows` are the pixel rows' bytes top to bottom (unpadded), or for an RLE
  compression the encoded stream as it is."""
  if compression in (0, 3):
    stride = (width * bits + 31) // 32 * 4
    ordered = rows if top_down else rows[::-1]
    body = b''.join(row.ljust(stride, b'\0') for row in ordered)
  else:
    body = rows
  table = b''.join(bytes([blue, green, red, 0]) for red, green, blue in palette)
  info = struct.pack('<IiiHHIIiiII', info_size, width, -height if top_down else height, 1,
                     bits, compression, len(body), 2835, 2835, len(palette), 0)
  if info_size > 40:
    info += struct.pack('<IIII', *(masks or (0, 0, 0, 0))) + b'\0' * (info_size - 56)
  elif masks:
    info += struct.pack('<III', *masks[:3])
  offset = 14 + len(info) + len(table)
  return b'BM' + struct.pack('<IHHI', offset + len(body), 0, 0, offset) + info + table + body


def _pack(indices: np.ndarray, bits: int) -> bytes:
  """One row of palette indices packed `bits` to a pixel, leftmost pixel in the high bits."""
  per_byte = 8 // bits
  padded = np.zeros(-(-len(indices) // per_byte) * per_byte, np.uint8)
  padded[:len(indices)] = indices
  shifts = 8 - bits * (1 + np.arange(per_byte))
  return (padded.reshape(-1, per_byte).astype(np.uint16) << shifts).sum(-1).astype(
      np.uint8).tobytes()


def _rle8(indices: np.ndarray) -> bytes:
  """BI_RLE8 data: every pixel as a run of one, bottom row first."""
  stream = bytearray()
  for row in indices[::-1]:
    for index in row:
      stream += bytes([1, int(index)])
    stream += b'\0\0'  # end of line
  return bytes(stream + b'\0\1')  # end of bitmap


def _png_adam7(pixels: np.ndarray) -> bytes:
  """An Adam7-interlaced 8-bit RGB PNG (Pillow writes only non-interlaced PNGs)."""
  passes = [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2),
            (0, 1, 2, 2), (1, 0, 2, 1)]
  raw = b''.join(b'\0' + row.tobytes() for top, left, down, across in passes
                 for row in pixels[top::down, left::across] if row.size)

  def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

  height, width, _ = pixels.shape
  return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0,
                                                           0, 1))
          + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


def _png16(pixels16: np.ndarray) -> bytes:
  """A 16-bit PNG of uint16 [H, W, C] (C = 1 or 3), written by hand (Pillow cannot)."""
  height, width, channels = pixels16.shape

  def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

  raw = b''.join(b'\0' + row.astype('>u2').tobytes() for row in pixels16)
  color_type = {1: 0, 3: 2}[channels]
  return (b'\x89PNG\r\n\x1a\n'
          + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 16, color_type, 0, 0, 0))
          + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


def _gif_with_frame_at(pixels: np.ndarray, *, left: int, top: int, screen: tuple[int, int]):
  """A one-frame GIF of `pixels` placed at (left, top) on a screen of `screen` (w, h)."""
  encoded = bytearray(pillow_bytes(Image.fromarray(pixels).quantize(16), 'GIF'))
  encoded[6:10] = struct.pack('<HH', *screen)
  descriptor = encoded.index(0x2C, 13 + 3 * 2 ** ((encoded[10] & 7) + 1))
  encoded[descriptor + 1:descriptor + 5] = struct.pack('<HH', left, top)
  return bytes(encoded)


def variants() -> dict[str, tuple[bytes, object]]:
  """{name: (encoded bytes, Pillow() | Pixels(...) | Refused(...))} for every variant."""
  pixels = picture()
  rgb = Image.fromarray(pixels)
  palette16 = rgb.quantize(16)
  indices16 = np.asarray(palette16)
  colours16 = np.asarray(palette16.getpalette()[:48], np.uint8).reshape(16, 3)
  black_white = (np.asarray(rgb.convert('L')) > 128).astype(np.uint8)
  two_colours = np.array([[10, 20, 30], [240, 200, 100]], np.uint8)
  bgr = pixels[..., ::-1]
  opaque = np.full((HEIGHT, WIDTH, 1), 255, np.uint8)
  deep = pixels.astype(np.uint16) * 257 + 3
  transparent = pillow_bytes(palette16, 'GIF', transparency=3)
  transparent_pixels = pillow_decode(transparent).copy()
  transparent_pixels[indices16 == 3] = 0  # transparent GIF pixels come out black
  exif = Image.Exif()
  exif[0x0112] = 6
  translucent = Image.fromarray(np.concatenate([pixels, np.full_like(pixels[..., :1], 128)], -1),
                                'RGBA')
  cases = {
      # JPEG: every chroma subsampling, progressive, grey, CMYK; EXIF orientation below.
      'jpeg_420': (pillow_bytes(rgb, 'JPEG', quality=90), Pillow()),
      'jpeg_422': (pillow_bytes(rgb, 'JPEG', quality=90, subsampling=1), Pillow()),
      'jpeg_444': (pillow_bytes(rgb, 'JPEG', quality=90, subsampling=0), Pillow()),
      'jpeg_progressive': (pillow_bytes(rgb, 'JPEG', quality=90, progressive=True), Pillow()),
      'jpeg_grey': (pillow_bytes(rgb.convert('L'), 'JPEG'), Pillow()),
      'jpeg_cmyk': (pillow_bytes(rgb.convert('CMYK'), 'JPEG'), Pillow()),
      'jpeg_pillow_exif_6': (pillow_bytes(rgb, 'JPEG', exif=exif.tobytes()), Pillow()),
      # PNG: every colour type and depth, palettes with transparency, Adam7 interlacing.
      'png_rgb': (pillow_bytes(rgb, 'PNG'), Pillow()),
      'png_rgba': (pillow_bytes(rgb.convert('RGBA'), 'PNG'), Pillow()),
      'png_grey': (pillow_bytes(rgb.convert('L'), 'PNG'), Pillow()),
      'png_grey_alpha': (pillow_bytes(rgb.convert('LA'), 'PNG'), Pillow()),
      'png_1bit': (pillow_bytes(rgb.convert('1'), 'PNG'), Pillow()),
      'png_palette_8bit': (pillow_bytes(rgb.quantize(200), 'PNG'), Pillow()),
      'png_palette_4bit': (pillow_bytes(palette16, 'PNG', bits=4), Pillow()),
      'png_palette_transparency': (pillow_bytes(palette16, 'PNG', transparency=3), Pillow()),
      'png_16bit_rgb': (_png16(deep), Pillow()),
      # Pillow clips 16-bit grey to 255 when converting to RGB; the right value is the top byte.
      'png_16bit_grey': (_png16(deep[..., :1]), Pixels(np.repeat(
          (deep[..., :1] >> 8).astype(np.uint8), 3, -1))),
      'png_interlaced': (_png_adam7(pixels), Pillow()),
      # Browsers ignore EXIF orientation in PNG and WebP: used as stored.
      'png_exif_6': (pillow_bytes(rgb, 'PNG', exif=exif.tobytes()), Pixels(pixels)),
      # GIF: interlaced (Pillow's default) or not, transparency, animation (first frame).
      'gif': (pillow_bytes(palette16, 'GIF'), Pillow()),
      'gif_not_interlaced': (pillow_bytes(palette16, 'GIF', interlace=False), Pillow()),
      'gif_transparency': (transparent, Pixels(transparent_pixels)),
      'gif_animated': (pillow_bytes(palette16, 'GIF', save_all=True, append_images=[
          Image.fromarray(255 - pixels).quantize(16)]), Pillow()),
      'gif_frame_offset': (_gif_with_frame_at(pixels[:10, :12], left=5, top=3,
                                              screen=(WIDTH, HEIGHT)), Refused('GIF')),
      'gif_frame_smaller_than_screen': (_gif_with_frame_at(pixels[:10, :12], left=0, top=0,
                                                           screen=(WIDTH, HEIGHT)),
                                        Refused('GIF')),
      # BMP: 24/32-bit, palettes of every depth, top-down rows, later headers, bit fields.
      'bmp_24bit': (pillow_bytes(rgb, 'BMP'), Pillow()),
      'bmp_32bit': (pillow_bytes(rgb.convert('RGBA'), 'BMP'), Pillow()),
      'bmp_24bit_top_down': (_bmp(WIDTH, HEIGHT, 24, [row.tobytes() for row in bgr],
                                  top_down=True), Pillow()),
      'bmp_24bit_v5_header': (_bmp(WIDTH, HEIGHT, 24, [row.tobytes() for row in bgr],
                                   info_size=124), Pillow()),
      'bmp_8bit_palette': (pillow_bytes(rgb.quantize(200), 'BMP'), Pillow()),
      'bmp_8bit_grey': (pillow_bytes(rgb.convert('L'), 'BMP'), Pillow()),
      'bmp_8bit_palette_top_down': (_bmp(WIDTH, HEIGHT, 8, [row.tobytes() for row in indices16],
                                         palette=colours16, top_down=True), Pillow()),
      'bmp_4bit_palette': (_bmp(WIDTH, HEIGHT, 4, [_pack(row, 4) for row in indices16],
                                palette=colours16), Pillow()),
      'bmp_1bit': (pillow_bytes(rgb.convert('1'), 'BMP'), Pillow()),
      'bmp_1bit_two_colours': (_bmp(WIDTH, HEIGHT, 1, [_pack(row, 1) for row in black_white],
                                    palette=two_colours), Pillow()),
      'bmp_32bit_bgra_bitfields': (_bmp(WIDTH, HEIGHT, 32, [
          row.tobytes() for row in np.concatenate([bgr, opaque], -1)], compression=3,
          masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000), info_size=56), Pillow()),
      'bmp_32bit_rgba_bitfields': (_bmp(WIDTH, HEIGHT, 32, [
          row.tobytes() for row in np.concatenate([pixels, opaque], -1)], compression=3,
          masks=(0xFF, 0xFF00, 0xFF0000, 0xFF000000), info_size=56), Refused('bit-field')),
      'bmp_8bit_rle': (_bmp(WIDTH, HEIGHT, 8, _rle8(indices16), palette=colours16,
                            compression=1), Refused('RLE')),
      'bmp_os2_header': (b'BM' + struct.pack('<IHHI', 26 + 3 * WIDTH * HEIGHT, 0, 0, 26)
                         + struct.pack('<IHHHH', 12, WIDTH, HEIGHT, 1, 24)
                         + bytes(3 * WIDTH * HEIGHT), Refused('OS/2')),
      # WebP: lossy, lossless, alpha.
      'webp_lossy': (pillow_bytes(rgb, 'WEBP', quality=90), Pillow()),
      'webp_lossless': (pillow_bytes(rgb, 'WEBP', lossless=True), Pillow()),
      'webp_alpha': (pillow_bytes(rgb.convert('RGBA'), 'WEBP', lossless=True), Pillow()),
      # A real alpha channel (Pillow writes an opaque one as RGB): the colour under it stays.
      'webp_translucent': (pillow_bytes(translucent, 'WEBP', lossless=True), Pixels(pixels)),
      'webp_translucent_lossy': (pillow_bytes(translucent, 'WEBP', quality=90), Pillow()),
      'webp_exif_6': (pillow_bytes(rgb, 'WEBP', lossless=True, exif=exif.tobytes()),
                      Pixels(pixels)),
  }
  # All eight EXIF orientations, both TIFF byte orders, with and without a JFIF segment.
  for orientation in range(1, 9):
    cases[f'jpeg_exif_{orientation}'] = (jpeg_with_exif(pixels, orientation), Pillow())
  cases['jpeg_exif_6_big_endian'] = (jpeg_with_exif(pixels, 6, big_endian=True), Pillow())
  cases['jpeg_exif_8_first_segment'] = (jpeg_with_exif(pixels, 8, after_jfif=False), Pillow())
  return cases
