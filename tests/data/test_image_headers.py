"""Image sizes read from file headers in the graph, before decoding: every format, and what
TensorFlow's GIF decoder really allocates."""

import io

from PIL import Image
import tensorflow as tf

from tftransfer.data import image_headers
from tests.helpers import encode_image, gif_bytes, random_image


def _decoded_shape(encoded):
  return image_headers.decoded_shape(encoded).numpy().tolist()


def test_image_headers_read_every_format():
  for size in ((5, 7), (300, 17), (1, 4000)):
    image = random_image(*size)
    for image_format in ('PNG', 'GIF', 'BMP', 'WEBP', 'JPEG'):
      assert _decoded_shape(encode_image(image, image_format)) == [1, *size], image_format
  lossless = io.BytesIO()
  Image.fromarray(random_image(9, 11)).save(lossless, 'WEBP', lossless=True)
  assert _decoded_shape(lossless.getvalue()) == [1, 9, 11]
  assert _decoded_shape(b'GIF') == [1, -1, -1]
  # What TensorFlow's GIF decoder really allocates: every frame, at the largest extent.
  for gif in (gif_bytes(3, 9, 11), gif_bytes(1, 9, 11, canvas=(2, 3)),
              gif_bytes(2, 9, 11, canvas=(20, 4))):
    assert _decoded_shape(gif) == list(tf.io.decode_gif(gif).shape[:3])
  # Truncated before its first frame: the walk ends at the end of the data (and the
  # decoder refuses the file).
  assert _decoded_shape(gif_bytes(2, 9, 11)[:40]) == [1, 0, 0]
