r"""Memory and time of one large photo through the serving decode: decode, EXIF orientation,
shrink to the model's input (signatures.decode_request, as serving_default runs it).

    python scripts/measure_large_image.py --height=10000 --width=12000 [--orientation=6]

Writes a flat-colour JPEG of that size (with an EXIF Orientation tag when asked), decodes a
small image to warm up, then the photo, and prints the growth of the process's peak resident
memory and the seconds the photo took, as JSON: what config.data.max_image_pixels bounds.
"""

import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import tensorflow as tf

from tftransfer.serving import signatures

_HEIGHT = flags.DEFINE_integer('height', 10000, 'Photo height in pixels.')
_WIDTH = flags.DEFINE_integer('width', 12000, 'Photo width in pixels.')
_ORIENTATION = flags.DEFINE_integer('orientation', 1, 'EXIF Orientation tag, 1-8.')
_IMAGE_SIZE = flags.DEFINE_integer('image_size', 224, "The model's input side.")


def _exif_segment(orientation: int) -> bytes:
  """A JPEG APP1 segment holding EXIF IFD0 with one entry, Orientation (little-endian)."""
  tiff = b'II' + struct.pack('<HIH', 42, 8, 1) + struct.pack('<HHIHH', 0x0112, 3, 1,
                                                              orientation, 0) + bytes(4)
  data = b'Exif\0\0' + tiff
  return b'\xff\xe1' + struct.pack('>H', len(data) + 2) + data


def _peak_gb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB on Linux


# Writes the JPEG in a child process (Pillow only), so that the image's own pixels are not
# counted in this process's peak memory.
_WRITE_JPEG = """
import sys
from PIL import Image
path, height, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
Image.new('RGB', (width, height), (120, 120, 120)).save(path, 'JPEG', quality=50)
"""


def main(argv):
  del argv
  with tempfile.TemporaryDirectory() as scratch:
    path = os.path.join(scratch, 'photo.jpg')
    subprocess.run([sys.executable, '-c', _WRITE_JPEG, path, str(_HEIGHT.value),
                    str(_WIDTH.value)], check=True)
    with open(path, 'rb') as f:
      jpeg = f.read()
  photo = jpeg[:2] + _exif_segment(_ORIENTATION.value) + jpeg[2:]

  def decode(data):
    return signatures.decode_request(tf.constant(data), tf.constant(0),
                                     image_size=_IMAGE_SIZE.value, max_image_pixels=0)

  decode(tf.io.encode_jpeg(tf.zeros([64, 64, 3], tf.uint8)).numpy())
  before = _peak_gb()
  start = time.perf_counter()
  decode(photo).numpy()
  seconds = time.perf_counter() - start
  print(json.dumps({'height': _HEIGHT.value, 'width': _WIDTH.value,
                    'megapixels': round(_HEIGHT.value * _WIDTH.value / 1e6, 1),
                    'orientation': _ORIENTATION.value, 'jpeg_bytes': len(photo),
                    'peak_memory_growth_gb': round(_peak_gb() - before, 2),
                    'seconds': round(seconds, 2)}))


if __name__ == '__main__':
  app.run(main)
