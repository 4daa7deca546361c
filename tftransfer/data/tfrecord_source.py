"""The TFRecord source: a directory make_tfrecords wrote (tfrecords.py), split like a folder.

The validation split is the same stratified, seeded data.val_fraction the folder source
carves, so a run sees the same images from either, or, with data.val_path, every example of
another such directory whose classes are some or all of the training ones. Records converted
from a manifest keep its labels (several an image: multi-label, split by iterative
stratification, as the manifest source splits) and the split column it was converted with.
"""

import functools

import ml_collections
import numpy as np

from tftransfer import errors, files
from tftransfer.data import dataset, splits, tfrecords


def _examples(path: str, max_pixels: int):
  """(class names, folder labels [N], the directory's dataset.json, split(indices) -> the
  Split of the examples at those positions)."""
  description = tfrecords.read_description(path)
  # Conversions before class names became text kept non-UTF-8 names' surrogates.
  class_names = tuple(files.text_name(name) for name in description['class_names'])
  labels = tfrecords.folder_labels(description)
  largest = description['scan'].get('largest_image_pixels', 0)
  if max_pixels and largest > max_pixels:
    raise errors.InvalidValueError(
        f'The TFRecords in {path} hold an image of {largest} pixels, more than '
        f'config.data.max_image_pixels={max_pixels}: raise the limit to at least {largest}, '
        f'or convert the folder again with --max_image_pixels={max_pixels}.')

  def split(indices):
    keep = np.zeros(len(labels), bool)
    keep[indices] = True
    return dataset.Split(functools.partial(tfrecords.read_examples, path, description, keep,
                                           max_pixels=max_pixels),
                         dataset.counts(labels[indices], len(class_names)))
  return class_names, labels, description, split


def load(data: ml_collections.ConfigDict, *, seed: int, split_seed: int,
         scan_cache: str | None) -> dataset.Data:
  """The TFRecords in data.path as training and validation splits."""
  del seed, scan_cache  # The examples' order is the conversion's (seeded there).
  class_names, labels, description, split = _examples(data.path, data.max_image_pixels)
  text = (f'TFRecords {data.path!r} ({len(labels)} images in {len(description["files"])} '
          f'files, from {description["source"]["path"]!r})')
  if data.val_path:
    train = splits.cap_per_class(np.arange(len(labels)), labels,
                                 max_per_class=data.max_examples_per_class, seed=split_seed)
    val_names, val_labels, _, val_split = _examples(data.val_path, data.max_image_pixels)
    val = dataset.judged_split(val_split(np.arange(len(val_labels))), val_names, class_names,
                               what=f'config.data.val_path={data.val_path!r}')
    return dataset.Data(class_names, split(train), val,
                        f'{text}, validated on TFRecords {data.val_path!r}',
                        scan=description['scan'])
  multi = bool(description.get('multi_label'))
  if multi and data.max_examples_per_class:
    raise errors.InvalidValueError(
        f'config.data.max_examples_per_class={data.max_examples_per_class} caps single-label '
        f'classes; the TFRecords in {data.path} give images several labels. Set it to 0.')
  if 'splits' in description:  # converted from a manifest with a split column
    given = np.asarray(description['splits'])
    train, val = np.flatnonzero(given == 'train'), np.flatnonzero(given == 'validation')
    text += ', split as the manifest says'
  elif multi:
    train, val = splits.iterative_stratified_split(labels, val_fraction=data.val_fraction,
                                                   seed=split_seed)
  else:
    train, val = splits.train_val_indices(labels, data, split_seed)
  return dataset.Data(class_names, split(train), split(val), text, scan=description['scan'],
                      multi_label=multi)
