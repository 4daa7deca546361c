"""Image ops: every format variant decoded as viewers show it (or refused), one pixel limit,
identical eagerly and inside tf.data; what is stored and shrunk."""

import numpy as np
import pytest
import tensorflow as tf

from tftransfer.data import image_ops
from tests import image_variants
from tests.helpers import MAX_IMAGE_PIXELS, png_claiming


def test_preprocessing_is_identical_eagerly_and_in_tf_data():
  rng = np.random.default_rng(0)
  images = [rng.integers(0, 256, shape, dtype=np.uint8)
            for shape in ((32, 32, 3), (120, 80, 3), (50, 300, 3))]

  def view(image):
    return image_ops.evaluation_view(image, 64)

  eager = [view(tf.constant(image)).numpy() for image in images]
  dataset = tf.data.Dataset.from_generator(
      lambda: iter(images), output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
  in_pipeline = [out.numpy() for out in dataset.map(view)]
  for a, b in zip(eager, in_pipeline):
    assert a.shape == (64, 64, 3)
    np.testing.assert_array_equal(a, b)


def test_fit_to_storage_keeps_small_images_and_shrinks_large():
  small = tf.zeros([32, 32, 3], tf.uint8)
  assert image_ops.fit_to_storage(small, 96).shape == (32, 32, 3)
  large = tf.zeros([400, 200, 3], tf.uint8)
  assert tuple(image_ops.fit_to_storage(large, 96).shape) == (192, 96, 3)


VARIANTS = image_variants.variants()


@pytest.mark.parametrize('name', sorted(VARIANTS))
def test_every_format_variant_decodes_as_viewers_show_it_or_is_refused(name):
  # Issue 11 kinds 1, 5 and 8: TensorFlow alone decodes palette BMPs to their indices, JPEGs
  # up to 5 levels off (fast IDCT), EXIF-rotated photos sideways, RGBA-masked BMPs with
  # swapped channels and offset GIF frames cut off, all without an error.
  encoded, expected = VARIANTS[name]
  if isinstance(expected, image_variants.Refused):
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected.reason):
      image_ops.decode_image(encoded, max_pixels=MAX_IMAGE_PIXELS)
    return
  decoded = image_ops.decode_image(encoded, max_pixels=MAX_IMAGE_PIXELS).numpy()
  if isinstance(expected, image_variants.Pillow):
    expected = image_variants.pillow_decode(encoded)
  else:
    expected = expected.pixels
  assert decoded.dtype == np.uint8
  np.testing.assert_array_equal(decoded, expected)


def test_decoding_is_identical_in_a_graph_and_in_tf_data():
  # The serving graph and the input pipeline run decode_image as a graph, the tests above
  # eagerly: every branch (JPEG + orientation, palette BMP, refusals) must agree.
  names = ['jpeg_exif_7', 'bmp_4bit_palette', 'png_16bit_grey', 'gif_animated']
  encoded = [VARIANTS[name][0] for name in names]
  in_graph = tf.function(lambda data: image_ops.decode_image(data, max_pixels=MAX_IMAGE_PIXELS))
  in_pipeline = tf.data.Dataset.from_tensor_slices(encoded).map(
      lambda data: image_ops.decode_image(data, max_pixels=MAX_IMAGE_PIXELS))
  for data, from_pipeline in zip(encoded, in_pipeline):
    eager = image_ops.decode_image(data, max_pixels=MAX_IMAGE_PIXELS).numpy()
    np.testing.assert_array_equal(in_graph(tf.constant(data)).numpy(), eager)
    np.testing.assert_array_equal(from_pipeline.numpy(), eager)
  refused = tf.data.Dataset.from_tensors(VARIANTS['bmp_8bit_rle'][0]).map(
      lambda data: image_ops.decode_image(data, max_pixels=MAX_IMAGE_PIXELS))
  with pytest.raises(tf.errors.InvalidArgumentError, match='RLE-compressed BMP'):
    next(iter(refused))


def test_the_default_pixel_limit_admits_phone_photos_and_refuses_bombs_unread():
  # Issue 11 kind 6: 48-50 MP phone photos (8064 x 6048 here) pass the default limit that
  # training and serving share; a header claiming 10^10 pixels is refused before decoding.
  photo = tf.io.encode_jpeg(tf.fill([6048, 8064, 3], tf.constant(120, tf.uint8)), quality=50)
  assert MAX_IMAGE_PIXELS >= 8192 * 6144  # the largest 50 MP sensors' photos
  assert image_ops.decode_image(photo, max_pixels=MAX_IMAGE_PIXELS).shape == (6048, 8064, 3)
  bomb = png_claiming(100_000, 100_000)  # 33 bytes, no pixel data: decoding would fail first
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'image is 1 frame\(s\) of 100000 x 100000 pixels, more than the '
                           rf'{MAX_IMAGE_PIXELS} of data.max_image_pixels'):
    image_ops.decode_image(bomb, max_pixels=MAX_IMAGE_PIXELS)
  # 0 = no limit: the bomb then gets as far as the PNG decoder, which finds no pixels.
  with pytest.raises(tf.errors.InvalidArgumentError, match='PNG'):
    image_ops.decode_image(bomb, max_pixels=0)
