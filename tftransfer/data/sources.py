"""Data sources: where examples come from, their class names, and the train/val split.

Every source (config.SOURCES) has one module, which loads it as a dataset.Data (class names,
training and validation splits of (uint8 image, int32 label) examples):

    folder      folder_source.py     root/<class>/**/<image>, scanned first (folders.py)
    csv         manifest_source.py   a table of images and labels (manifests.py), scanned
    tfrecord    tfrecord_source.py   what make_tfrecords wrote (tfrecords.py)
    tfds        tfds_source.py       a prepared TensorFlow Datasets set
    synthetic   synthetic_source.py  the procedural texture tasks (synthetic.py)

`load` dispatches to them and applies what every source shares: the two-class check, the
validation check (an empty validation split is refused, unless data.val_fraction=0 asks for a
run without validation; classes the split lacks are named) and the imbalance warning. How a
split is carved is splits.py; the tf.data pipeline on top (caching, augmentation, batching)
is pipeline.py.
"""

import dataclasses

from absl import logging
import ml_collections
import numpy as np

from tftransfer import config as config_lib, errors
from tftransfer.data import dataset, folder_source, manifest_source, synthetic_source
from tftransfer.data import tfds_source, tfrecord_source

LOADERS = {'tfds': tfds_source.load, 'folder': folder_source.load,
           'tfrecord': tfrecord_source.load, 'csv': manifest_source.load,
           'synthetic': synthetic_source.load}
assert set(LOADERS) == set(config_lib.SOURCES)


def load(data: ml_collections.ConfigDict, *, seed: int,
         scan_cache: str | None = None) -> dataset.Data:
  """Loads the source `data.source` and splits it into train and validation examples.

  Args:
    data: the config's data section.
    seed: seeds the example order, and the split unless data.split_seed says otherwise.
    scan_cache: JSON file caching an image folder's scan (the run's workdir keeps it), so an
      unchanged folder is not decoded again; None = scan every time.

  Raises:
    ValueError: an unknown source, bad split settings, or what the source's reader raises
      (folders.BadImagesError for undecodable images under on_bad_image='fail').
    FileNotFoundError: a missing image folder or TFRecord directory.
    tfds_source.DataUnavailableError: a TFDS dataset that is not prepared and may not be
      downloaded.
  """
  split_seed = seed if data.split_seed < 0 else data.split_seed
  loaded = LOADERS[data.source](data, seed=seed, split_seed=split_seed, scan_cache=scan_cache)
  require_two_classes(loaded.class_names, loaded.train.class_counts, loaded.description)
  require_validation(loaded.class_names, loaded.train.class_counts, loaded.val.class_counts,
                     loaded.description, val_fraction=data.val_fraction)
  warnings = unvalidated_warnings(loaded.class_names, loaded.val.class_counts,
                                  loaded.val.num_examples) + imbalance_warnings(
      loaded.class_names, loaded.train.class_counts, ratio=data.imbalance_warning_ratio)
  for warning in warnings:
    logging.warning('%s', warning)
  if not loaded.val.num_examples:
    logging.info('No validation (config.data.val_fraction=0): every epoch trains on all %d '
                 'examples, nothing is validated, early stopping is off and the result is '
                 'the last epoch.', loaded.train.num_examples)
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


def require_validation(class_names, train_counts, val_counts, description: str, *,
                       val_fraction: float) -> None:
  """Refuses an empty validation split, unless `val_fraction` is 0 (a run without
  validation, asked for). A carved split is empty when every class has one image: none can
  be held out without leaving the class nothing to train on. Checked once the labels are
  counted, before anything is decoded or trained.

  Args:
    class_names: the classes, in label order.
    train_counts, val_counts: examples of each class in each split (int [C]).
    description: what was loaded, for the message.
    val_fraction: config.data.val_fraction.

  Raises:
    InvalidValueError: naming the classes with no validation example, and the fixes.
  """
  if sum(val_counts) or not val_fraction:
    return
  small = [f'{name!r} ({count} image{"" if count == 1 else "s"})'
           for name, count, held in zip(class_names, train_counts, val_counts)
           if count and not held]
  without = ('train without validation with config.data.val_fraction=0 (the result is then '
             'the last epoch).')
  if max(train_counts, default=0) > 1:  # not for lack of images: a split given empty
    raise errors.InvalidValueError(
        f'The validation split of {description} is empty ({len(small)} classes have '
        'training images, none has a validation image). Mark some images as validation '
        f'(a split column), validate on other data with config.data.val_path, or {without}')
  raise errors.InvalidValueError(
      f'The validation split of {description} is empty: no class has an image to hold '
      f'out for it ({", ".join(small)}; a class needs at least 2). Add images to those '
      'classes, validate on other data with '
      f'config.data.val_path, or {without}')


def unvalidated_warnings(class_names, val_counts, num_val: int) -> tuple[str, ...]:
  """A warning naming the classes the validation split lacks (none without validation, a
  run that says so itself)."""
  lacking = dataset.unvalidated(class_names, val_counts) if num_val else []
  if not lacking:
    return ()
  return (f'The validation split has no image of {len(lacking)} class(es): '
          f'{", ".join(map(repr, lacking))}. They train, but no validation metric measures '
          'them (a class of one image cannot be split); add images to them, or validate on '
          'data holding them with config.data.val_path.',)


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
