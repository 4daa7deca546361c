"""What every data source yields: splits of labelled images, and the data set they form.

    Split          one split's examples, readable as one of several shards, and its counts
    Data           class names, the train and validation splits, and what was left out
    file_split     a split of image files, decoded by data/image_ops.py's decode_image
    array_split    a split of images held in memory (the synthetic tasks)
    class_labels   the one rule for images judged against other class names: their classes
    judged_split   must be some or all of those, matched by name, in any order

A split yields (uint8 image [H, W, 3], label) examples in a fixed order, so that every
worker of a distributed job reads different examples and reruns read the same ones. A label
is an int32 class index, or, for multi-label data (several labels per image), a float32
multi-hot vector [num_classes].
"""

import dataclasses
import os
from typing import Callable

import numpy as np
import tensorflow as tf

from tftransfer import errors, files
from tftransfer.data import image_ops


@dataclasses.dataclass(frozen=True)
class Split:
  """One split's examples: how to read a shard of them, and how many there are per class."""
  read: Callable[[int, int], tf.data.Dataset]  # (shard_index, num_shards) -> examples
  class_counts: tuple[int, ...]  # examples of each class (multi-label: that carry it)
  # The image file of each example, in the order `read` yields them (for the data audit's
  # findings); None for sources that do not read files (TFDS, TFRecords, synthetic).
  paths: tuple[str, ...] | None = None
  size: int | None = None  # examples; None = sum(class_counts), as each has one class

  @property
  def num_examples(self) -> int:
    return sum(self.class_counts) if self.size is None else self.size

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
  multi_label: bool = False  # labels are multi-hot: an image may have several

  @property
  def validated(self) -> bool:
    """Whether there is a validation split: sources.load refuses an empty one unless
    config.data.val_fraction=0 asked for a run without validation."""
    return self.val.num_examples > 0

  def summary(self) -> dict:
    """The workdir's data.json: class names (export and predict read them) and split sizes."""
    summary = {'class_names': list(self.class_names), 'description': self.description,
               'train_counts': list(self.train.class_counts),
               'val_counts': list(self.val.class_counts)}
    if self.multi_label:
      summary.update(multi_label=True, train_size=self.train.num_examples,
                     val_size=self.val.num_examples)
    return summary

  def report(self) -> dict:
    """The workdir's data_report.json: counts per class and split, the scan, warnings."""
    return {
        'description': self.description,
        'classes': [{'name': name, 'train': train, 'val': val} for name, train, val in zip(
            self.class_names, self.train.class_counts, self.val.class_counts)],
        'split_sizes': {'train': self.train.num_examples, 'val': self.val.num_examples},
        'validated': self.validated,
        # The classes never validated (all of them in a run without validation).
        'not_validated': unvalidated(self.class_names, self.val.class_counts),
        'scan': self.scan,
        'exclusions': self.exclusions,
        'warnings': list(self.warnings),
    }


def unvalidated(class_names, val_counts) -> list[str]:
  """The classes with no example in the validation split (`val_counts`: int [C]): they train
  but are never validated, e.g. a class of one image, which a carved split leaves to
  training."""
  return [name for name, count in zip(class_names, val_counts) if not count]


def counts(labels: np.ndarray, num_classes: int) -> tuple[int, ...]:
  """Examples per class of int `labels` [N], or of multi-hot ones [N, num_classes]."""
  labels = np.asarray(labels)
  if labels.ndim == 2:
    return tuple(int(n) for n in labels.sum(axis=0))
  return tuple(int(n) for n in np.bincount(labels.astype(np.int64), minlength=num_classes))


def array_split(images: np.ndarray, labels: np.ndarray, num_classes: int) -> Split:
  """A split of uint8 `images` [N, H, W, 3] held in memory with int `labels` [N]."""
  def read(shard_index, num_shards):
    return tf.data.Dataset.from_tensor_slices((images, labels)).shard(num_shards, shard_index)
  return Split(read, counts(labels, num_classes))


def file_split(paths, labels: np.ndarray, num_classes: int, *, max_pixels: int = 0) -> Split:
  """A split of image files (str or bytes paths) with their labels (int [N], or multi-hot
  [N, num_classes]), read in this order; `max_pixels` is the decode's size limit
  (data.max_image_pixels; 0 = none)."""
  # Paths as bytes: a file name that is not valid UTF-8 (or gs://) must still be readable.
  encoded = tf.constant(np.asarray([os.fsencode(path) for path in paths], object), tf.string)
  labels = np.asarray(labels, np.float32 if np.ndim(labels) == 2 else np.int32)

  def read(shard_index, num_shards):
    examples = tf.data.Dataset.from_tensor_slices((encoded, labels))
    examples = examples.shard(num_shards, shard_index)
    return examples.map(lambda path, label: (
        image_ops.decode_image(tf.io.read_file(path), max_pixels=max_pixels), label),
        num_parallel_calls=tf.data.AUTOTUNE)
  return Split(read, counts(labels, num_classes), paths=tuple(map(os.fsdecode, paths)),
               size=len(labels))


def class_labels(found, class_names, *, what: str) -> np.ndarray:
  """int32 [len(found)]: each of `found` (the class names of images to judge) as its label
  among `class_names` (a model's, or the training split's). The one rule for such images:
  their classes must be some or all of `class_names`, matched by name; order does not matter.

  Raises:
    errors.InvalidValueError: a class `class_names` lacks, naming `what` holds it.
  """
  # Compared in one normal form (files.text_name: NFC), so a model trained on 'café' judges a
  # folder copied from a Mac, whose 'café' is decomposed, and older runs' names match too.
  class_names = tuple(files.text_name(name) for name in class_names)
  found = [files.text_name(name) for name in found]
  unknown = [name for name in found if name not in class_names]
  if unknown:
    raise errors.InvalidValueError(
        f'{what} has classes {unknown} that are not classes of the model '
        f'({", ".join(class_names)}); give data whose classes are some or all of the '
        "model's (for a folder: one sub-folder per class, named as the class).")
  return np.asarray([class_names.index(name) for name in found], np.int32)


def judged_split(split: Split, found, class_names, *, what: str) -> Split:
  """`split` (labelled by the class names `found`: int labels, or multi-hot [len(found)]
  vectors) relabelled by `class_names`, under class_labels' rule.

  Raises:
    errors.InvalidValueError: a class `class_names` lacks.
  """
  labels = class_labels(found, class_names, what=what)
  if tuple(found) == tuple(class_names):
    return split
  mapping = tf.constant(labels)
  relabelled = np.zeros(len(class_names), np.int64)
  relabelled[labels] = split.class_counts

  indices, size = mapping[:, None], [len(class_names)]

  def relabel(image, label):
    if label.shape.rank == 1:  # multi-hot: each found label's column moved to its place
      return image, tf.scatter_nd(indices, label, size)
    return image, tf.gather(mapping, label)

  def read(shard_index, num_shards):
    return split.read(shard_index, num_shards).map(relabel)
  return Split(read, tuple(int(count) for count in relabelled), split.paths,
               size=split.num_examples)


def multi_hot(split: Split, num_classes: int) -> Split:
  """`split` with its int labels as one-hot float32 vectors (single-label data trained as
  multi-label, model.task='multi_label')."""
  def read(shard_index, num_shards):
    return split.read(shard_index, num_shards).map(
        lambda image, label: (image, tf.one_hot(label, num_classes, dtype=tf.float32)))
  return Split(read, split.class_counts, split.paths, size=split.num_examples)


def for_task(data: Data, task: str) -> Data:
  """`data` as a run of `task` ('single_label' | 'multi_label') trains on it.

  Raises:
    errors.InvalidValueError: multi-label data (images with several labels) for a
      single-label task.
  """
  if task == 'multi_label' and not data.multi_label:
    num_classes = len(data.class_names)
    return dataclasses.replace(data, train=multi_hot(data.train, num_classes),
                               val=multi_hot(data.val, num_classes), multi_label=True)
  if task == 'single_label' and data.multi_label:
    raise errors.InvalidValueError(
        f'{data.description} gives images several labels; a single-label model cannot learn '
        "them. Use --config.model.task=multi_label (or 'auto').")
  return data
