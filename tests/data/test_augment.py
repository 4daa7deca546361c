"""Mixup and cutmix change images and targets as their papers specify; RandAugment changes the
images and keeps their range."""

import numpy as np
import pytest

from tftransfer.data import augment, pipeline, sources
from tests.helpers import tiny_config

NUM_CLASSES = 5


@pytest.fixture(scope='module')
def data():
  return sources.load(tiny_config(data__max_examples_per_class=16).data, seed=0)


def _first_batch(data, augmentation):
  batches = pipeline.train_batches(data.train, image_size=32, batch_size=16, seed=3,
                                   cache=False, shuffle_buffer=1, min_area=1.0, flip=False,
                                   augmentation=augmentation, num_classes=NUM_CLASSES)
  images, labels = next(iter(batches))
  return images.numpy().astype(np.float64), labels.numpy()


def _partner(mixed, plain, index):
  """The other image of the batch that `mixed[index]` was blended with, by least squares."""
  errors = []
  for other in range(len(plain)):
    if other == index:
      continue
    difference = plain[index] - plain[other]
    weight = np.sum((mixed[index] - plain[other]) * difference) / max(
        np.sum(difference ** 2), 1e-9)
    errors.append((np.abs(weight * plain[index] + (1 - weight) * plain[other]
                          - mixed[index]).max(), other, weight))
  return min(errors)


def test_mixup_blends_images_and_targets_with_one_weight(data):
  plain, labels = _first_batch(data, augment.Augmentation())
  mixed, targets = _first_batch(data, augment.Augmentation(mixup_alpha=0.4))
  assert targets.shape == (16, NUM_CLASSES)
  np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)
  blended = 0
  for index in range(16):
    error, other, weight = _partner(mixed, plain, index)
    assert error < 1e-2, (index, error)  # a blend of exactly two images of the batch
    expected = weight * np.eye(NUM_CLASSES)[labels[index]] + (1 - weight) * np.eye(
        NUM_CLASSES)[labels[other]]
    np.testing.assert_allclose(targets[index], expected, atol=1e-3)
    blended += 0.02 < weight < 0.98
  assert blended >= 8  # Beta(0.4, 0.4) weights are mostly far from 0 and 1


def test_cutmix_pastes_a_box_and_mixes_targets_by_its_area(data):
  plain, labels = _first_batch(data, augment.Augmentation())
  mixed, targets = _first_batch(data, augment.Augmentation(cutmix_alpha=1.0))
  pasted = 0
  for index in range(16):
    changed = np.any(mixed[index] != plain[index], axis=-1)
    if not changed.any():
      np.testing.assert_allclose(targets[index], np.eye(NUM_CLASSES)[labels[index]],
                                 atol=1e-6)
      continue
    rows, columns = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1))
    donors = [other for other in range(16)
              if np.array_equal(mixed[index][box], plain[other][box])]
    assert donors, index  # the box is another image's pixels
    # The label weight of the image itself is the area it keeps (up to the box's rounding).
    kept = 1 - changed.sum() / changed.size
    assert targets[index][labels[index]] >= kept - 0.1
    pasted += 1
  assert pasted >= 8
  np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)


def test_randaugment_changes_images_within_range(data):
  plain, _ = _first_batch(data, augment.Augmentation())
  augmented, labels = _first_batch(data, augment.Augmentation(randaugment_ops=2,
                                                              randaugment_magnitude=0.5))
  assert labels.ndim == 1  # RandAugment alone keeps integer labels
  assert augmented.min() >= 0 and augmented.max() <= 255
  changed = [not np.allclose(a, b, atol=1.0) for a, b in zip(augmented, plain)]
  assert sum(changed) >= 12
