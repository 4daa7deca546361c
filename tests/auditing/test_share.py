"""What the in-training audit covers within its share of the run (pure decisions, and the
sample's bookkeeping; milliseconds to seconds)."""

import numpy as np
import pytest
import tensorflow as tf

from tftransfer.auditing import run, share
from tftransfer.data.dataset import Split


def test_every_image_is_audited_when_the_share_holds_them():
  scope = share.in_training_scope(images=10_000, training_seconds=1_000, share=0.1)
  assert scope.audited == 10_000 and scope.seconds == pytest.approx(100)
  # What the images leave of the 100 s is the label model's.
  assert scope.label_model_seconds == pytest.approx(100 - 10_000 * share.SECONDS_PER_IMAGE)
  assert scope.why.startswith('every image')


def test_beyond_the_share_a_sample_of_what_fits_and_nothing_left_for_the_label_model():
  scope = share.in_training_scope(images=50_000, training_seconds=311, share=0.1)
  assert scope.audited == int(31.1 // share.SECONDS_PER_IMAGE) < 50_000
  assert scope.label_model_seconds == pytest.approx(0, abs=share.SECONDS_PER_IMAGE)
  assert f'a random {scope.audited:,} of the 50,000 images' in scope.why
  assert 'tftransfer-audit audits every image' in scope.why
  assert scope.to_json()['audited'] == scope.audited


def test_a_small_run_is_never_cut_below_the_minimum_sample():
  scope = share.in_training_scope(images=5_000, training_seconds=1, share=0.1)
  assert scope.audited == share.MIN_SAMPLE and scope.label_model_seconds == 0
  assert 'a sample is never under 1,000' in scope.why and 'about 71 images' in scope.why
  small = share.in_training_scope(images=600, training_seconds=1, share=0.001)
  assert small.audited == 600 and 'fewer than 1,000 images are never sampled' in small.why
  assert '0.1 % of an estimated 1 s' in small.why


def _split(name, size):
  return Split(read=lambda index, count: tf.data.Dataset.range(size).map(
      lambda i: (tf.fill([2, 2, 3], tf.cast(i, tf.uint8)), tf.cast(i, tf.int32))),
      class_counts=(size,), paths=tuple(f'/data/{name}/{i}.png' for i in range(size)))


def test_a_sample_keeps_paths_features_and_images_together():
  splits = [('train', _split('train', 30)), ('val', _split('val', 12))]
  features = [(np.arange(30, dtype=np.float32)[:, None], np.arange(30)),
              (100 + np.arange(12, dtype=np.float32)[:, None], np.arange(12))]
  sampled, kept_features, indices = run._sample(splits, features, 15, seed=0)
  assert sum(split.num_examples for _, split in sampled) == 15
  for (name, split), (values, labels), kept in zip(sampled, kept_features, indices):
    offset = 0 if name == 'train' else 100
    np.testing.assert_array_equal(values[:, 0], offset + kept)
    np.testing.assert_array_equal(labels, kept)
    assert split.paths == tuple(f'/data/{name}/{i}.png' for i in kept)
    # The sampled split reads the same images, in order.
    read = [int(label) for _, label in split.dataset().as_numpy_iterator()]
    assert read == list(kept)
  paths, names = run._items([(name, split) for name, split in sampled], indices)
  assert len(paths) == 15 and names.count('val') == len(indices[1])
