"""What every data source yields: splits of labelled images, and the data set they form.

    Split          one split's examples, readable as one of several shards, and its counts
    Data           class names, the train and validation splits, and what was left out
    file_split     a split of image files, decoded by data/image_ops.py's decode_image
    array_split    a split of images held in memory (the synthetic tasks)
    class_labels   the one rule for images judged against other class names: their classes
    judged_split   must be some or all of those, matched by name, in any order

A split yields (uint8 image [H, W, 3], int32 label) examples in a fixed order, so that every
worker of a distributed job reads different examples and reruns read the same ones.
"""

import dataclasses
import os
from typing import Callable

import numpy as np
import tensorflow as tf

from tftransfer import errors
from tftransfer.data import image_ops


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


def counts(labels: np.ndarray, num_classes: int) -> tuple[int, ...]:
  """Examples per class of int `labels`."""
  return tuple(int(n) for n in np.bincount(np.asarray(labels, np.int64),
                                           minlength=num_classes))


def array_split(images: np.ndarray, labels: np.ndarray, num_classes: int) -> Split:
  """A split of uint8 `images` [N, H, W, 3] held in memory with int `labels` [N]."""
  def read(shard_index, num_shards):
    return tf.data.Dataset.from_tensor_slices((images, labels)).shard(num_shards, shard_index)
  return Split(read, counts(labels, num_classes))


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
  return Split(read, counts(labels, num_classes), paths=tuple(map(os.fsdecode, paths)))


def class_labels(found, class_names, *, what: str) -> np.ndarray:
  """int32 [len(found)]: each of `found` (the class names of images to judge) as its label
  among `class_names` (a model's, or the training split's). The one rule for such images:
  their classes must be some or all of `class_names`, matched by name; order does not matter.

  Raises:
    errors.InvalidValueError: a class `class_names` lacks, naming `what` holds it.
  """
  class_names = tuple(class_names)
  unknown = [name for name in found if name not in class_names]
  if unknown:
    raise errors.InvalidValueError(
        f'{what} has classes {unknown} that are not classes of the model '
        f'({", ".join(class_names)}); give data whose classes are some or all of the '
        "model's (for a folder: one sub-folder per class, named as the class).")
  return np.asarray([class_names.index(name) for name in found], np.int32)


def judged_split(split: Split, found, class_names, *, what: str) -> Split:
  """`split` (labelled by the class names `found`) relabelled by `class_names`, under
  class_labels' rule.

  Raises:
    errors.InvalidValueError: a class `class_names` lacks.
  """
  labels = class_labels(found, class_names, what=what)
  if tuple(found) == tuple(class_names):
    return split
  mapping = tf.constant(labels)
  relabelled = np.zeros(len(class_names), np.int64)
  relabelled[labels] = split.class_counts

  def read(shard_index, num_shards):
    return split.read(shard_index, num_shards).map(
        lambda image, label: (image, tf.gather(mapping, label)))
  return Split(read, tuple(int(count) for count in relabelled), split.paths)
