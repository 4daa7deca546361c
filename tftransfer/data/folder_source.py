"""The image-folder source: root/<class>/**/<image>, scanned (folders.py), split (splits.py).

The validation split is a stratified, seeded data.val_fraction of the folder, or, with
data.val_path, every image of another folder whose classes are some or all of the training
ones (dataset.class_labels). data.exclude_file leaves listed training images out.
"""

import os

import ml_collections
import numpy as np

from tftransfer import errors
from tftransfer.data import dataset, exclusions, folders, splits


def _check_classes_kept(class_names, labels: np.ndarray, exclude_file: str) -> None:
  counts = np.bincount(labels, minlength=len(class_names))
  emptied = [name for name, count in zip(class_names, counts) if not count]
  if emptied:
    raise errors.InvalidValueError(
        f'config.data.exclude_file={exclude_file!r} leaves no image in the classes '
        f'{", ".join(map(repr, emptied))}; remove those class folders or list fewer files.')


def load(data: ml_collections.ConfigDict, *, seed: int, split_seed: int,
         scan_cache: str | None) -> dataset.Data:
  """The folder data.path as training and validation splits (see the module docstring)."""
  max_pixels = data.max_image_pixels
  scan = folders.scan_folder(data.path, max_image_pixels=max_pixels,
                             on_bad_image=data.on_bad_image, cache_path=scan_cache)
  num_classes = len(scan.class_names)
  usable, usable_labels, excluded = scan.files, scan.labels, None
  if data.exclude_file:
    usable, usable_labels, excluded = exclusions.apply(
        data.exclude_file, os.path.abspath(data.path), scan.files, scan.labels)
    _check_classes_kept(scan.class_names, usable_labels, data.exclude_file)
  # The scan is class-sorted; a seeded permutation keeps batches from being one class even
  # when the shuffle buffer is smaller than the split.
  order = np.random.default_rng(seed + 2)

  def split(indices):
    indices = order.permutation(indices)
    return dataset.file_split([usable[index] for index in indices], usable_labels[indices],
                              num_classes, max_pixels=max_pixels)

  described = f'{len(scan.files)} usable images'
  if excluded:
    described += f', {len(excluded.excluded)} of them excluded by {data.exclude_file!r}'
  description, summary = f'image folder {data.path!r} ({described})', scan.summary()
  if data.val_path:
    train = splits.cap_per_class(np.arange(len(usable_labels)), usable_labels,
                                 max_per_class=data.max_examples_per_class, seed=split_seed)
    held_out = folders.scan_folder(data.val_path, max_image_pixels=max_pixels,
                                   on_bad_image=data.on_bad_image, cache_path=scan_cache,
                                   setting='config.data.val_path', min_classes=1)
    labels = dataset.class_labels(held_out.class_names, scan.class_names,
                                  what=f'config.data.val_path={data.val_path!r}')
    val = dataset.file_split(held_out.files, labels[held_out.labels], num_classes,
                             max_pixels=max_pixels)
    description += (f', validated on image folder {data.val_path!r} '
                    f'({len(held_out.files)} usable images)')
    summary = {**summary, 'validation': held_out.summary()}
    return dataset.Data(scan.class_names, split(train), val, description, scan=summary,
                        exclusions=excluded.summary() if excluded else None)
  train, val = splits.train_val_indices(usable_labels, data, split_seed)
  return dataset.Data(scan.class_names, split(train), split(val), description, scan=summary,
                      exclusions=excluded.summary() if excluded else None)
