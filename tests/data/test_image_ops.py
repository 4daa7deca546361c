"""Image ops: identical eagerly and inside tf.data; what is stored and shrunk."""

import numpy as np
import tensorflow as tf

from tftransfer.data import image_ops


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
