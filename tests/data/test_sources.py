"""Data sources and the tf.data pipeline, offline."""

import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tftransfer import config as config_lib
from tftransfer.data import sources, splits
from helpers import tiny_config, write_image_folder


def _labels(split, shard=0, shards=1):
  return np.array([int(label) for _, label in split.dataset(shard, shards)])


def test_cifar10_through_tfds_mock_is_split_stratified():
  config = config_lib.default_config()  # data.source='tfds', data.name='cifar10'
  config.data.val_fraction = 0.2
  with tfds.testing.mock_data(num_examples=100):
    data = sources.load(config.data, seed=3)
    train_labels, val_labels = _labels(data.train), _labels(data.val)
    image, _ = next(iter(data.train.dataset()))
  assert len(data.class_names) == 10
  assert len(train_labels) + len(val_labels) == 100
  # Counts reported are the counts read, and each class keeps about 20 % aside.
  assert tuple(np.bincount(train_labels, minlength=10)) == data.train.class_counts
  assert tuple(np.bincount(val_labels, minlength=10)) == data.val.class_counts
  train_counts, val_counts = np.array(data.train.class_counts), np.array(data.val.class_counts)
  assert np.all(np.abs(val_counts - 0.2 * (train_counts + val_counts)) <= 1)
  assert image.dtype == tf.uint8 and image.shape == (32, 32, 3)


def test_tfds_not_prepared_fails_fast_offline(tmp_path):
  config = config_lib.default_config()
  config.data.data_dir = str(tmp_path)
  start = time.time()
  with pytest.raises(sources.DataUnavailableError, match='download=true'):
    sources.load(config.data, seed=0)
  assert time.time() - start < 30


def test_stratified_split_is_seeded_and_disjoint():
  labels = np.repeat(np.arange(4), 25)
  train, val = splits.stratified_split(labels, val_fraction=0.2, seed=1)
  again, _ = splits.stratified_split(labels, val_fraction=0.2, seed=1)
  other, _ = splits.stratified_split(labels, val_fraction=0.2, seed=2)
  assert not set(train) & set(val) and len(train) + len(val) == 100
  assert np.all(np.bincount(labels[val]) == 5)
  np.testing.assert_array_equal(train, again)
  assert not np.array_equal(train, other)


def test_folder_source(tmp_path):
  root = write_image_folder(tmp_path / 'images', per_class=10)
  (root / 'dog' / 'notes.txt').write_text('not an image')
  (root / 'dog' / '.hidden.png').write_bytes(b'')
  config = tiny_config(data__source='folder', data__path=str(root), data__val_fraction=0.2,
                       data__max_examples_per_class=0)
  data = sources.load(config.data, seed=0)
  assert data.class_names == ('cat', 'dog', 'frog')
  assert data.train.class_counts == (8, 8, 8) and data.val.class_counts == (2, 2, 2)
  images = [image.numpy() for image, _ in data.train.dataset()]
  assert {image.shape for image in images} == {(40, 36, 3)}
  # Labels follow folders: the class colour channel is the brightest.
  for image, label in data.train.dataset():
    assert int(np.argmax(image.numpy().reshape(-1, 3).mean(0))) == int(label)


def test_missing_folder_is_named(tmp_path):
  config = tiny_config(data__source='folder', data__path=str(tmp_path / 'missing'))
  with pytest.raises(FileNotFoundError, match='missing.*one sub-folder'):
    sources.load(config.data, seed=0)


def test_max_examples_per_class_caps_training_only():
  config = tiny_config(data__max_examples_per_class=3)
  data = sources.load(config.data, seed=0)
  assert data.train.class_counts == (3,) * 5
  assert data.val.class_counts == (20,) * 5


def test_shards_partition_the_split():
  data = sources.load(tiny_config().data, seed=0)
  whole = sorted(_labels(data.val))
  parts = sorted(np.concatenate([_labels(data.val, i, 3) for i in range(3)]))
  assert whole == parts
