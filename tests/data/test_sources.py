"""Data sources and the tf.data pipeline, offline."""

import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tftransfer import config as config_lib, errors, restore
from tftransfer.data import scan, sources, splits, tfds_source, tfrecords
from tftransfer.training import resolve
from tests.helpers import MAX_IMAGE_PIXELS, tiny_config, write_image_folder
from tests import image_variants


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
  with pytest.raises(tfds_source.DataUnavailableError, match='download=true'):
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


def test_one_class_folder_is_refused_before_anything_is_decoded(tmp_path, monkeypatch):
  # Issue 11 kind 3: one class trains a model that answers it for everything, with a
  # validation accuracy of 1.0.
  root = write_image_folder(tmp_path / 'images', classes=('cat',), per_class=6)
  monkeypatch.setattr(scan, '_undecodable', lambda *args, **kwargs: pytest.fail('decoded'))
  config = tiny_config(data__source='folder', data__path=str(root))
  with pytest.raises(errors.InvalidValueError,
                     match=r"has 1 class folder\(s\) \('cat'\); a classifier needs at least two"):
    sources.load(config.data, seed=0)


def test_a_table_or_a_held_out_folder_is_named_by_the_setting_that_gave_it(tmp_path):
  # Issue 28 leftovers: a manifest given where a folder belongs points to the manifest's
  # flag; a held-out folder is named by its own flag and may hold one of the classes.
  table = tmp_path / 'labels.csv'
  table.write_text('path,label\na.jpg,cat\n')
  with pytest.raises(errors.NotFoundError,
                     match=r"--input='.*labels.csv' is not a directory.*reads as a manifest.*"
                           r"pass it as --manifest=.*labels.csv"):
    tfrecords.convert_folder(str(table), str(tmp_path / 'records'), max_image_pixels=0)
  with pytest.raises(errors.NotFoundError, match=r"config.data.path='.*labels.csv' is not a "
                                                 r"directory.*add --config.data.source=csv"):
    resolve.resolve(tiny_config(data__source='folder', data__path=str(table)))
  root = write_image_folder(tmp_path / 'images', classes=('cat', 'dog'), per_class=6)
  cats = write_image_folder(tmp_path / 'cats', classes=('cat',), per_class=3)
  data = sources.load(tiny_config(data__source='folder', data__path=str(root),
                                  data__val_path=str(cats)).data, seed=0)
  assert tuple(data.val.class_counts) == (3, 0) and data.train.num_examples == 12
  split, _ = restore.judged_data(str(cats), ('cat', 'dog'), max_pixels=0)
  assert split.num_examples == 3
  with pytest.raises(errors.InvalidValueError,
                     match=r"config.data.val_path='.*empty' has 0 class folder\(s\)"):
    (tmp_path / 'empty').mkdir()
    sources.load(tiny_config(data__source='folder', data__path=str(root),
                             data__val_path=str(tmp_path / 'empty')).data, seed=0)


def test_a_tfds_split_filter_leaving_one_class_is_refused():
  config = config_lib.default_config()  # TFDS cifar10
  config.data.train_split = 'train[:20]'

  def only_cats(builder, split, decoders=None, **kwargs):
    image = tf.io.encode_png(tf.zeros([32, 32, 3], tf.uint8))
    return tf.data.Dataset.from_tensors({'id': tf.constant('x'), 'image': image,
                                         'label': tf.constant(3, tf.int64)}).repeat(20)

  with tfds.testing.mock_data(as_dataset_fn=only_cats):
    with pytest.raises(errors.InvalidValueError,
                       match=r"The training split of TFDS 'cifar10' .* has examples of 1 "
                             r"class\(es\) \('3': 18\); a classifier needs at least two"):
      sources.load(config.data, seed=0)


def test_tfds_images_are_decoded_by_the_shared_decode(monkeypatch):
  # Issue 11 kind 8: TFDS decodes JPEGs with TensorFlow's fast IDCT; tftransfer's own decode
  # (accurate IDCT, EXIF orientation) must read TFDS data as it reads folders and requests.
  photo = image_variants.jpeg_with_exif(image_variants.picture(40, 32), 6)

  def photos(builder, split, decoders=None, **kwargs):
    assert decoders and isinstance(decoders['image'], tfds.decode.SkipDecoding)
    return tf.data.Dataset.from_tensor_slices({
        # Two of each class: a class of one image would leave nothing to validate on.
        'id': tf.constant(['a', 'b', 'c', 'd']), 'image': tf.constant([photo] * 4),
        'label': tf.constant([1, 2, 1, 2], tf.int64)})

  config = config_lib.default_config()
  config.data.val_fraction = 0.5
  with tfds.testing.mock_data(as_dataset_fn=photos):
    image, _ = next(iter(sources.load(config.data, seed=0).train.dataset()))
  np.testing.assert_array_equal(image.numpy(), image_variants.pillow_decode(photo))


def test_a_separate_validation_folder_is_judged_by_class_name(tmp_path):
  train_root = write_image_folder(tmp_path / 'train', classes=('ant', 'bee', 'wasp'),
                                  per_class=4)
  val_root = write_image_folder(tmp_path / 'val', classes=('bee', 'wasp'), per_class=3,
                                seed=50)
  config = tiny_config(data__source='folder', data__path=str(train_root),
                       data__val_path=str(val_root), data__val_fraction=0.0,
                       data__max_examples_per_class=0)
  config_lib.validate(config)
  data = sources.load(config.data, seed=0)
  assert data.class_names == ('ant', 'bee', 'wasp')
  assert data.train.class_counts == (4, 4, 4)  # all of the training folder
  assert data.val.class_counts == (0, 3, 3)  # bee and wasp keep their training labels
  assert sorted(set(_labels(data.val))) == [1, 2]
  assert all('/val/' in path for path in data.val.paths)
  assert 'validated on image folder' in data.description
  assert data.report()['scan']['validation']['usable_images'] == 6
  write_image_folder(tmp_path / 'val', classes=('moth',), per_class=1)
  with pytest.raises(errors.InvalidValueError,
                     match=r"val_path=.* has classes \['moth'\] that are not classes"):
    sources.load(config.data, seed=0)


def test_the_split_seed_moves_the_split_and_defaults_to_the_run_seed(tmp_path):
  root = write_image_folder(tmp_path / 'images', per_class=10)

  def val_paths(**fields):
    config = tiny_config(data__source='folder', data__path=str(root),
                         data__max_examples_per_class=0, data__val_fraction=0.3, **fields)
    return sorted(sources.load(config.data, seed=0).val.paths)

  assert val_paths() == val_paths(data__split_seed=0)  # -1: the run's seed
  assert val_paths(data__split_seed=5) != val_paths()


def test_a_validation_folder_needs_a_folder_tfrecord_or_manifest_source():
  config = config_lib.default_config()
  config.data.val_path = '/data/val'
  with pytest.raises(ValueError, match="val_path='/data/val' names a folder, TFRecord "
                     "directory or manifest .* not 'tfds'"):
    config_lib.validate(config)
  config.data.source, config.data.path, config.data.split_column = 'csv', '/a.csv', 'split'
  with pytest.raises(ValueError, match='both say what to validate on; give one'):
    config_lib.validate(config)


def _one_image_classes(root, *, big=()):
  """A folder whose classes cat, dog (and frog unless it is in `big`) hold one image each,
  and the classes of `big` ten."""
  write_image_folder(root, classes=('cat', 'dog', 'frog'), per_class=1)
  for label, name in enumerate(big):
    write_image_folder(root, classes=(name,), per_class=10, seed=3 + label)
  return root


@pytest.mark.parametrize('source', ['folder', 'tfrecord', 'csv'])
def test_one_image_per_class_is_refused_naming_the_classes(tmp_path, source):
  # Issue 28 kind 4: every class of one image left the validation split empty, and the run
  # ended in a traceback in the feature pass (or in the audit), or in "val accuracy nan".
  root = _one_image_classes(tmp_path / 'images')
  path = root
  if source == 'tfrecord':
    path = tmp_path / 'records'
    tfrecords.convert_folder(str(root), str(path), max_image_pixels=MAX_IMAGE_PIXELS)
  if source == 'csv':
    path = tmp_path / 'labels.csv'
    path.write_text('path,label\n' + ''.join(
        f'images/{name}/0.png,{name}\n' for name in ('cat', 'dog', 'frog')))
  config = tiny_config(data__source=source, data__path=str(path), data__val_fraction=0.2,
                       data__max_examples_per_class=0)
  with pytest.raises(errors.InvalidValueError,
                     match=r"validation split of .* is empty.*'cat' \(1 image\), 'dog' \(1 "
                     r"image\), 'frog' \(1 image\).*Add images.*config.data.val_fraction=0"):
    sources.load(config.data, seed=0)


def test_the_classes_the_validation_split_lacks_are_named(tmp_path):
  # A class of one image still trains (it cannot be validated): the warning and the data
  # report name it; the other classes are split as before.
  root = _one_image_classes(tmp_path / 'images', big=('frog',))
  config = tiny_config(data__source='folder', data__path=str(root), data__val_fraction=0.2,
                       data__max_examples_per_class=0)
  data = sources.load(config.data, seed=0)
  assert data.train.class_counts == (1, 1, 8) and data.val.class_counts == (0, 0, 2)
  assert any("no image of 2 class(es): 'cat', 'dog'" in warning for warning in data.warnings)
  assert data.report()['not_validated'] == ['cat', 'dog']
  assert data.report()['warnings'] == list(data.warnings)


def test_val_fraction_zero_trains_on_every_example(tmp_path):
  # An explicit data.val_fraction=0 is a run without validation: no refusal, every example
  # in training, for single-label classes and for several labels an image alike.
  root = _one_image_classes(tmp_path / 'images', big=('frog',))
  config = tiny_config(data__source='folder', data__path=str(root), data__val_fraction=0.0,
                       data__max_examples_per_class=0)
  config_lib.validate(config)
  data = sources.load(config.data, seed=0)
  assert data.train.class_counts == (1, 1, 10) and data.val.num_examples == 0
  assert not data.validated and data.report()['validated'] is False
  assert not any('no image of' in warning for warning in data.warnings)
  targets = np.random.default_rng(0).random((40, 3)) < 0.5
  train, val = splits.iterative_stratified_split(targets, val_fraction=0.0, seed=0)
  assert list(train) == list(range(40)) and not len(val)


def test_an_empty_validation_split_of_larger_classes_is_refused_without_blaming_their_size():
  # Records converted with a split column that marks no image as validation: the classes
  # are not too small, the split was given empty.
  with pytest.raises(errors.InvalidValueError,
                     match=r"is empty \(2 classes have training images, none has a validation "
                     r"image\)\. Mark some.*config.data.val_fraction=0"):
    sources.require_validation(('cat', 'dog'), (5, 1), (0, 0), 'records', val_fraction=0.1)
  sources.require_validation(('cat', 'dog'), (5, 1), (0, 0), 'records', val_fraction=0.0)
  sources.require_validation(('cat', 'dog'), (5, 1), (1, 0), 'records', val_fraction=0.1)
