"""EXIF orientation: read from JPEG headers in the graph and applied wherever images are
decoded, so a portrait phone photo is trained and served upright (issue 11 kind 1)."""

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from tftransfer.data import exif, image_ops, sources
from tests.helpers import MAX_IMAGE_PIXELS, tiny_config, write_image_folder
from tests import image_variants


def test_a_portrait_photo_stored_sideways_is_decoded_upright():
  portrait = image_variants.picture(96, 64, seed=1)  # as every viewer displays it
  stored = np.ascontiguousarray(np.rot90(portrait, 1))  # 64 x 96, as the phone stored it
  photo = image_variants.jpeg_with_exif(stored, 6)  # 6: turn 90 degrees clockwise to view
  decoded = image_ops.decode_image(photo, max_pixels=MAX_IMAGE_PIXELS).numpy()
  assert decoded.shape == (96, 64, 3)
  # JPEG is lossy (and the picture noisy): nearer the portrait than the other quarter turn
  # (orientation 8's) by far.
  near = np.abs(decoded.astype(int) - portrait).mean()
  assert near < np.abs(decoded.astype(int) - np.rot90(portrait, 2)).mean() / 2


@pytest.mark.parametrize('big_endian', [False, True], ids=['intel', 'motorola'])
def test_orientation_is_read_in_both_byte_orders(big_endian):
  pixels = image_variants.picture(8, 16)
  for orientation in range(1, 9):
    photo = image_variants.jpeg_with_exif(pixels, orientation, big_endian=big_endian)
    assert int(exif.jpeg_orientation(photo)) == orientation


def test_missing_invalid_or_damaged_exif_means_as_stored():
  pixels = image_variants.picture(8, 16)
  plain = image_variants.pillow_bytes(Image.fromarray(pixels), 'JPEG')
  assert int(exif.jpeg_orientation(plain)) == 1
  assert int(exif.jpeg_orientation(image_variants.jpeg_with_exif(pixels, 9))) == 1
  # EXIF whose IFD offset points past the end of the file: read as zeros, no error.
  damaged = bytearray(image_variants.jpeg_with_exif(pixels, 6, after_jfif=False))
  tiff = damaged.index(b'II*\0')
  damaged[tiff + 4:tiff + 8] = (10**6).to_bytes(4, 'little')
  assert int(exif.jpeg_orientation(bytes(damaged))) == 1
  assert image_ops.decode_image(bytes(damaged), max_pixels=0).shape == (8, 16, 3)


def test_training_reads_sideways_photos_upright(tmp_path):
  root = write_image_folder(tmp_path / 'images', classes=('cat', 'dog'), per_class=4,
                            size=(40, 36))
  portrait = image_variants.picture(96, 64, seed=2)
  (root / 'cat' / 'phone.jpg').write_bytes(image_variants.jpeg_with_exif(
      np.ascontiguousarray(np.rot90(portrait, -1)), 8))
  data = sources.load(tiny_config(data__source='folder', data__path=str(root),
                                  data__val_fraction=0.2, data__max_examples_per_class=0).data,
                      seed=0)
  shapes = [tuple(image.shape) for split in (data.train, data.val)
            for image, _ in split.dataset()]
  assert sorted(shapes) == [(40, 36, 3)] * 8 + [(96, 64, 3)]


def test_the_image_is_turned_as_pillow_turns_it():
  # Pillow's ImageOps.exif_transpose table, on an image whose every pixel is distinct.
  pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
  transpose = Image.Transpose
  methods = {2: transpose.FLIP_LEFT_RIGHT, 3: transpose.ROTATE_180,
             4: transpose.FLIP_TOP_BOTTOM, 5: transpose.TRANSPOSE, 6: transpose.ROTATE_270,
             7: transpose.TRANSVERSE, 8: transpose.ROTATE_90}
  for orientation in range(1, 9):
    expected = Image.fromarray(pixels)
    if orientation in methods:
      expected = expected.transpose(methods[orientation])
    np.testing.assert_array_equal(
        exif.apply_orientation(tf.constant(pixels), tf.constant(orientation)).numpy(),
        np.asarray(expected), err_msg=str(orientation))
