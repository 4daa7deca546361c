"""Data sources: where examples come from, their class names, and the train/val split.

Every source (config.SOURCES: TFDS, image folders, TFRecords, synthetic tasks) yields the same
thing: splits of (uint8 image [H, W, 3], int32 label) examples in a fixed order, each readable
as one of several shards so that every worker of a distributed job reads different examples.
How the split is carved is `splits.py`; the tf.data pipeline on top (caching, augmentation,
batching) is `pipeline.py`.

A little over 300 lines: the four loaders share Split, the split rule and the two-class
check, and side by side they stay alike.
"""

import dataclasses
import functools
import os
from typing import Callable

from absl import logging
import ml_collections
import numpy as np
import tensorflow as tf

from tftransfer import config as config_lib, errors, files
from tftransfer.data import exclusions, folders, image_ops, splits, synthetic, tfrecords


class DataUnavailableError(errors.UnavailableError):
  """A dataset is not available locally and may not be downloaded."""


@dataclasses.dataclass(frozen=True)
class Split:
  """One split's examples: how to read a shard of them, and how many there are per class."""
  read: Callable[[int, int], tf.data.Dataset]  # (shard_index, num_shards) -> examples
  class_counts: tuple[int, ...]
  # The image file of each example, in the order `read` yields them (for the data audit's
  # findings); None for sources that do not read files (TFDS, TFRecords, synthetic).
  paths: tuple[str, ...] | None = None

  @property
  def num_examples(self) -> int:
    return sum(self.class_counts)

  def dataset(self, shard_index: int = 0, num_shards: int = 1) -> tf.data.Dataset:
    """Unbatched (image, label) examples of one shard, in a deterministic order."""
    return self.read(shard_index, num_shards)


@dataclasses.dataclass(frozen=True)
class Data:
  """A classification dataset ready for training."""
  class_names: tuple[str, ...]
  train: Split
  val: Split
  description: str  # what was loaded, for logs and the workdir's data report
  scan: dict | None = None  # the image-folder scan behind the data: what it skipped and why
  warnings: tuple[str, ...] = ()  # about the data as loaded, e.g. badly imbalanced classes
  exclusions: dict | None = None  # what config.data.exclude_file left out (exclusions.py)

  def summary(self) -> dict:
    """The workdir's data.json: class names (export and predict read them) and split sizes."""
    return {'class_names': list(self.class_names), 'description': self.description,
            'train_counts': list(self.train.class_counts),
            'val_counts': list(self.val.class_counts)}

  def report(self) -> dict:
    """The workdir's data_report.json: counts per class and split, the scan, warnings."""
    return {
        'description': self.description,
        'classes': [{'name': name, 'train': train, 'val': val} for name, train, val in zip(
            self.class_names, self.train.class_counts, self.val.class_counts)],
        'split_sizes': {'train': self.train.num_examples, 'val': self.val.num_examples},
        'scan': self.scan,
        'exclusions': self.exclusions,
        'warnings': list(self.warnings),
    }


def load(data: ml_collections.ConfigDict, *, seed: int, scan_cache: str | None = None) -> Data:
  """Loads the source `data.source` and splits it into train and validation examples.

  Args:
    data: the config's data section.
    seed: seeds the split and the example order.
    scan_cache: JSON file caching an image folder's scan (the run's workdir keeps it), so an
      unchanged folder is not decoded again; None = scan every time.

  Raises:
    ValueError: an unknown source, bad split settings, or what the source's reader raises
      (folders.BadImagesError for undecodable images under on_bad_image='fail').
    FileNotFoundError: a missing image folder or TFRecord directory.
    DataUnavailableError: a TFDS dataset that is not prepared and may not be downloaded.
  """
  loaders = {'tfds': _load_tfds, 'folder': functools.partial(_load_folder,
                                                             scan_cache=scan_cache),
             'tfrecord': _load_tfrecord, 'synthetic': _load_synthetic}
  assert set(loaders) == set(config_lib.SOURCES)
  if data.source not in loaders:
    raise errors.InvalidValueError(f'Unknown config.data.source={data.source!r}; valid: '
                                   f'{", ".join(config_lib.SOURCES)}.')
  loaded = loaders[data.source](data, seed)
  require_two_classes(loaded.class_names, loaded.train.class_counts, loaded.description)
  warnings = imbalance_warnings(loaded.class_names, loaded.train.class_counts,
                                ratio=data.imbalance_warning_ratio)
  for warning in warnings:
    logging.warning('%s', warning)
  return dataclasses.replace(loaded, warnings=warnings)


def require_two_classes(class_names, counts, description: str) -> None:
  """Refuses training data with examples of fewer than two classes.

  One class trains a model that answers it for everything, with a validation accuracy of
  1.0. Every source comes here (a TFDS split filter or per-class settings can leave one class
  of many) once its labels are counted, before anything is decoded or trained.

  Raises:
    InvalidValueError: naming the classes found.
  """
  found = [f'{name!r}: {count}' for name, count in zip(class_names, counts) if count]
  if len(found) < 2:
    raise errors.InvalidValueError(
        f'The training split of {description} has examples of {len(found)} class(es) '
        f'({", ".join(found) or "none"}); a classifier needs at least two. Use data with '
        'several classes, or widen the split or per-class settings that left one.')


def imbalance_warnings(class_names, counts, *, ratio: float) -> tuple[str, ...]:
  """A warning when the largest class has more than `ratio` times the smallest (0 = never)."""
  if not ratio or not len(counts):
    return ()
  largest, smallest = int(np.argmax(counts)), int(np.argmin(counts))
  if counts[largest] <= ratio * counts[smallest]:
    return ()
  return (f'Classes are badly imbalanced: {class_names[largest]!r} has {counts[largest]} '
          f'training examples, {class_names[smallest]!r} {counts[smallest]} (more than '
          f'data.imbalance_warning_ratio={ratio:g} times). Accuracy can look good while the '
          'small classes are mostly missed; add examples of them, or cap the large ones '
          'with data.max_examples_per_class.',)


def _eval_split(requested: str, available) -> str:
  """Resolves config.data.eval_split against the source's splits; 'carve' = from train."""
  if requested == 'auto':
    return 'validation' if 'validation' in available else 'carve'
  return requested


def _counts(labels: np.ndarray, num_classes: int) -> tuple[int, ...]:
  return tuple(int(n) for n in np.bincount(labels, minlength=num_classes))


def _array_split(images: np.ndarray, labels: np.ndarray, num_classes: int) -> Split:
  def read(shard_index, num_shards):
    return tf.data.Dataset.from_tensor_slices((images, labels)).shard(num_shards, shard_index)
  return Split(read, _counts(labels, num_classes))


def _load_synthetic(data, seed):
  task = synthetic.get_task(data.name)
  num_classes = len(task.class_names)
  images, labels = synthetic.generate(data.name, data.train_split)
  eval_split = _eval_split(data.eval_split, task.examples_per_class)
  if eval_split != 'carve':
    train = splits.cap_per_class(np.arange(len(labels)), labels,
                          max_per_class=data.max_examples_per_class, seed=seed)
    val_images, val_labels = synthetic.generate(data.name, eval_split)
  else:
    train, val = splits.train_val_indices(labels, data, seed)
    val_images, val_labels = images[val], labels[val]
  return Data(task.class_names,
              _array_split(images[train], labels[train], num_classes),
              _array_split(val_images, val_labels, num_classes),
              f'synthetic task {data.name!r}')


def file_split(paths, labels: np.ndarray, num_classes: int, *, max_pixels: int = 0) -> Split:
  """A split of image files (str or bytes paths) with their int labels, read in this order;
  `max_pixels` is the decode's size limit (data.max_image_pixels; 0 = none)."""
  # Paths as bytes: a file name that is not valid UTF-8 must still be readable.
  encoded = tf.constant(np.asarray([os.fsencode(path) for path in paths], object), tf.string)
  labels = np.asarray(labels, np.int32)

  def read(shard_index, num_shards):
    examples = tf.data.Dataset.from_tensor_slices((encoded, labels))
    examples = examples.shard(num_shards, shard_index)
    return examples.map(lambda path, label: (
        image_ops.decode_image(tf.io.read_file(path), max_pixels=max_pixels), label),
        num_parallel_calls=tf.data.AUTOTUNE)
  return Split(read, _counts(labels, num_classes), paths=tuple(map(os.fsdecode, paths)))
def _load_folder(data, seed, *, scan_cache):
  max_pixels = data.max_image_pixels
  scan = folders.scan_folder(data.path, max_image_pixels=max_pixels,
                             on_bad_image=data.on_bad_image, cache_path=scan_cache)
  num_classes = len(scan.class_names)
  usable, usable_labels, excluded = scan.files, scan.labels, None
  if data.exclude_file:
    usable, usable_labels, excluded = exclusions.apply(
        data.exclude_file, os.path.abspath(data.path), scan.files, scan.labels)
    _check_classes_kept(scan.class_names, usable_labels, data.exclude_file)
  train, val = splits.train_val_indices(usable_labels, data, seed)
  # The scan is class-sorted; a seeded permutation keeps batches from being one class even
  # when the shuffle buffer is smaller than the split.
  order = np.random.default_rng(seed + 2)

  def split(indices):
    indices = order.permutation(indices)
    return file_split([usable[index] for index in indices], usable_labels[indices],
                      num_classes, max_pixels=max_pixels)

  described = f'{len(scan.files)} usable images'
  if excluded:
    described += f', {len(excluded.excluded)} of them excluded by {data.exclude_file!r}'
  return Data(scan.class_names, split(train), split(val),
              f'image folder {data.path!r} ({described})', scan=scan.summary(),
              exclusions=excluded.summary() if excluded else None)


def _check_classes_kept(class_names, labels: np.ndarray, exclude_file: str) -> None:
  counts = np.bincount(labels, minlength=len(class_names))
  emptied = [name for name, count in zip(class_names, counts) if not count]
  if emptied:
    raise errors.InvalidValueError(
        f'config.data.exclude_file={exclude_file!r} leaves no image in the classes '
        f'{", ".join(map(repr, emptied))}; remove those class folders or list fewer files.')


def _load_tfrecord(data, seed):
  description = tfrecords.read_description(data.path)
  # Conversions before class names became text kept non-UTF-8 names' surrogates.
  class_names = tuple(files.text_name(name) for name in description['class_names'])
  labels = tfrecords.folder_labels(description)
  max_pixels = data.max_image_pixels
  largest = description['scan'].get('largest_image_pixels', 0)
  if max_pixels and largest > max_pixels:
    raise errors.InvalidValueError(
        f'The TFRecords in {data.path} hold an image of {largest} pixels, more than '
        f'config.data.max_image_pixels={max_pixels}: raise the limit to at least {largest}, '
        f'or convert the folder again with --max_image_pixels={max_pixels}.')
  train, val = splits.train_val_indices(labels, data, seed)

  def split(indices):
    keep = np.zeros(len(labels), bool)
    keep[indices] = True
    return Split(functools.partial(tfrecords.read_examples, data.path, description, keep,
                                   max_pixels=max_pixels),
                 _counts(labels[indices], len(class_names)))

  return Data(class_names, split(train), split(val),
              f'TFRecords {data.path!r} ({len(labels)} images in '
              f'{len(description["files"])} files, from {description["source"]["path"]!r})',
              scan=description['scan'])


def _load_tfds(data, seed):
  import tensorflow_datasets as tfds  # Imported here: it is slow and only this source needs it.

  builder = tfds.builder(data.name, data_dir=data.data_dir or None)
  if data.download:
    builder.download_and_prepare()
  image_key, label_key = builder.info.supervised_keys
  class_names = tuple(builder.info.features[label_key].names)
  num_classes = len(class_names)

  def read_labels(split):
    # Labels only: skipping image decoding makes this pass cheap.
    examples = builder.as_dataset(split=split, shuffle_files=False,
                                  decoders={image_key: tfds.decode.SkipDecoding()})
    batches = examples.map(lambda example: example[label_key]).batch(8192)
    return np.concatenate([batch.numpy() for batch in batches] or [np.zeros([0])]
                          ).astype(np.int32)

  max_pixels = data.max_image_pixels

  def split_of(split, indices, labels):
    keep = np.zeros(len(labels), bool)
    keep[indices] = True
    keep = tf.constant(keep)

    def read(shard_index, num_shards):
      # The encoded images, decoded by the decode training and serving share (TFDS's own
      # decoder uses TensorFlow's fast, less accurate JPEG IDCT).
      examples = builder.as_dataset(split=split, shuffle_files=False,
                                    decoders={image_key: tfds.decode.SkipDecoding()})
      examples = examples.enumerate().filter(lambda index, _: keep[index])
      examples = examples.shard(num_shards, shard_index)
      return examples.map(lambda _, example: (
          image_ops.decode_image(example[image_key], max_pixels=max_pixels),
          tf.cast(example[label_key], tf.int32)), num_parallel_calls=tf.data.AUTOTUNE)
    return Split(read, _counts(labels[indices], num_classes))

  try:
    train_labels = read_labels(data.train_split)
  except AssertionError as error:  # What TFDS raises for data that is not prepared.
    raise DataUnavailableError(
        f'TFDS dataset {data.name!r} is not prepared in {builder.data_dir} ({error}). Either '
        f'prepare it where there is network (`tfds build {data.name}`) and point '
        '--config.data.data_dir at the result, allow downloading here with '
        '--config.data.download=true, or train on an image folder with '
        '--config.data.source=folder --config.data.path=DIR.') from None
  eval_split = _eval_split(data.eval_split, builder.info.splits)
  if eval_split != 'carve':
    train = splits.cap_per_class(np.arange(len(train_labels)), train_labels,
                          max_per_class=data.max_examples_per_class, seed=seed)
    val_labels = read_labels(eval_split)
    val_split = split_of(eval_split, np.arange(len(val_labels)), val_labels)
  else:
    train, val = splits.train_val_indices(train_labels, data, seed)
    val_split = split_of(data.train_split, val, train_labels)
  return Data(class_names, split_of(data.train_split, train, train_labels), val_split,
              f'TFDS {data.name!r} (train: {data.train_split}, validation: {eval_split})')
