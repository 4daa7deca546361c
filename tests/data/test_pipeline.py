"""The tf.data pipeline: seeded augmentation of training batches, complete evaluation passes."""

import numpy as np

from tftransfer.data import pipeline, sources
from tests.helpers import tiny_config


def _labels(split):
  return np.array([int(label) for _, label in split.dataset()])


def test_train_batches_are_seeded_and_augmented():
  data = sources.load(tiny_config().data, seed=0)

  def first(seed, *, min_area=0.3, flip=True):
    # A shuffle buffer of one keeps the split's order whatever the seed, so every batch
    # below holds the same examples and only their augmentation can differ.
    batches = pipeline.train_batches(data.train, image_size=32, batch_size=8, seed=seed,
                                     cache=True, shuffle_buffer=1, min_area=min_area,
                                     flip=flip)
    images, labels = next(iter(batches))
    return images.numpy(), labels.numpy()

  (a, a_labels), (b, _), (c, c_labels) = first(1), first(1), first(2)
  np.testing.assert_array_equal(a_labels, c_labels)  # the same examples...
  np.testing.assert_array_equal(a, b)  # ...augmented identically under one seed,
  differs = [not np.array_equal(x, y) for x, y in zip(a, c)]
  assert sum(differs) >= 6, differs  # ...and differently under another.
  # Without crops or flips the same examples come out identical whatever the seed.
  np.testing.assert_array_equal(first(1, min_area=1.0, flip=False)[0],
                                first(2, min_area=1.0, flip=False)[0])
  assert a.dtype == np.float32 and a.shape == (8, 32, 32, 3)


def test_eval_batches_keep_every_example_once():
  data = sources.load(tiny_config().data, seed=0)
  batches = pipeline.eval_batches(data.val, image_size=48, batch_size=7, cache=False)
  labels = np.concatenate([labels.numpy() for _, labels in batches])
  np.testing.assert_array_equal(labels, _labels(data.val))
