"""The manifest source (data.source='csv'): images and labels listed in a table
(manifests.py), scanned as a folder's are (scan.py), split like one.

The class names are the manifest's distinct labels, sorted. A missing file, and one that
does not decode, follows data.on_bad_image as in a folder: skipped and listed in the scan
report, or the run stops naming them with their lines. A split column's values are
respected, or data.val_path names a second manifest (same columns) to validate on;
otherwise a stratified, seeded data.val_fraction is carved (for several labels an image, by
iterative stratification).
"""

import hashlib
import os
import time

import ml_collections
import numpy as np
import tensorflow as tf

from tftransfer import errors
from tftransfer.data import dataset, folders, manifests, scan, splits

_MAX_NAMED = 20


def columns(data: ml_collections.ConfigDict) -> dict:
  """A data section's column fields as manifests.read takes them."""
  return {'image_column': data.image_column, 'label_column': data.label_column,
          'label_delimiter': data.label_delimiter, 'split_column': data.split_column,
          'label_columns': tuple(column.strip() for column in data.label_columns.split(',')
                                 if column.strip())}


def read(data: ml_collections.ConfigDict) -> manifests.Manifest:
  """The manifest data.path, read with the data section's column fields."""
  return manifests.read(data.path, **columns(data))


def _fingerprint(path: str, rows) -> str:
  """The manifest's bytes and each listed file's size and modification time."""
  digest = hashlib.sha256()
  with tf.io.gfile.GFile(path, 'rb') as f:
    digest.update(f.read())
  for row in rows:
    stat = tf.io.gfile.stat(row.file)
    digest.update(f'{row.file}\0{stat.length}\0{stat.mtime_nsec}\n'.encode(
        'utf-8', 'surrogateescape'))
  return digest.hexdigest()


def usable_rows(manifest: manifests.Manifest, *, max_image_pixels: int, on_bad_image: str,
                scan_cache: str | None) -> tuple[list, dict]:
  """The rows whose file exists and decodes (scan.py, with its cache), and the scan's
  summary: skipped files with their lines and why, repeated rows, the largest image.

  Raises:
    folders.BadImagesError: unusable files with on_bad_image='fail'.
  """
  started = time.time()
  present = [row for row in manifest.rows if tf.io.gfile.exists(row.file)]
  failures = {row.path: 'file not found' for row in manifest.rows
              if not tf.io.gfile.exists(row.file)}
  decoded, largest, from_cache = scan.verdicts(
      [row.file for row in present], [row.path for row in present],
      root=os.path.abspath(manifest.path) if '://' not in manifest.path else manifest.path,
      fingerprint=_fingerprint(manifest.path, present), max_image_pixels=max_image_pixels,
      cache_path=scan_cache)
  failures.update(decoded)
  by_path = {row.path: row for row in manifest.rows}
  skipped = sorted(failures.items(), key=lambda item: by_path[item[0]].line)
  if skipped and on_bad_image == 'fail':
    named = [f'line {by_path[path].line} {path} ({reason})'
             for path, reason in skipped[:_MAX_NAMED]]
    raise folders.BadImagesError(
        f'{len(skipped)} images listed in {manifest.path} cannot be used and '
        f"on_bad_image='fail': {'; '.join(named)}. Fix or remove those rows, or leave them "
        'out with --config.data.on_bad_image=skip.')
  usable = [row for row in manifest.rows if row.path not in failures]
  summary = {'usable_images': len(usable),
             'skipped': [{'file': path, 'line': by_path[path].line, 'reason': reason}
                         for path, reason in skipped],
             'repeated_rows': [{'line': line, 'same_as_line': first}
                               for line, first in manifest.repeated],
             'max_image_pixels': max_image_pixels, 'largest_image_pixels': largest,
             'from_cache': from_cache, 'seconds': round(time.time() - started, 2)}
  return usable, summary


def _labels(rows, class_names, multi_label: bool) -> np.ndarray:
  index = {name: label for label, name in enumerate(class_names)}
  if multi_label:
    targets = np.zeros((len(rows), len(class_names)), np.float32)
    for position, row in enumerate(rows):
      targets[position, [index[label] for label in row.labels]] = 1
    return targets
  return np.asarray([index[row.labels[0]] for row in rows], np.int32)


def load(data: ml_collections.ConfigDict, *, seed: int, split_seed: int,
         scan_cache: str | None) -> dataset.Data:
  """The manifest data.path as training and validation splits (see the module docstring).

  Raises:
    errors.InvalidValueError: what manifests.read raises; a label without a usable image;
      a split column without validation rows; data.max_examples_per_class with several
      labels an image.
    folders.BadImagesError: unusable images under on_bad_image='fail'.
  """
  manifest = read(data)
  usable, summary = usable_rows(manifest, max_image_pixels=data.max_image_pixels,
                                on_bad_image=data.on_bad_image, scan_cache=scan_cache)
  names, multi = manifest.class_names, manifest.multi_label
  labels = _labels(usable, names, multi)
  held = np.asarray(dataset.counts(labels, len(names)))
  if not held.all():
    missing = [name for name, count in zip(names, held) if not count]
    raise errors.InvalidValueError(
        f'{manifest.path}: the labels {missing} have no usable image (every row of theirs is '
        'missing or undecodable, data_report.json says why); add images or remove them.')
  if multi and data.max_examples_per_class:
    raise errors.InvalidValueError(
        f'config.data.max_examples_per_class={data.max_examples_per_class} caps single-label '
        f'classes; {manifest.path} gives images several labels. Set it to 0.')
  order = np.random.default_rng(seed + 2)  # Rows may be grouped by class: mix them.

  def split(indices, rows=usable, targets=labels):
    indices = order.permutation(indices)
    return dataset.file_split([rows[index].file for index in indices], targets[indices],
                              len(names), max_pixels=data.max_image_pixels)

  description = f'{manifest.describe()}, {len(usable)} usable'
  if data.val_path:
    held_out = manifests.read(data.val_path, **columns(data))
    val_rows, val_summary = usable_rows(held_out, max_image_pixels=data.max_image_pixels,
                                        on_bad_image=data.on_bad_image, scan_cache=scan_cache)
    dataset.class_labels(sorted({label for row in val_rows for label in row.labels}), names,
                         what=f'config.data.val_path={data.val_path!r}')
    val_labels = _labels(val_rows, names, multi or held_out.multi_label)
    if held_out.multi_label and not multi:
      raise errors.InvalidValueError(
          f'config.data.val_path={data.val_path!r} gives images several labels but '
          f'{manifest.path} one each; validate on data labelled as the training data is.')
    train = np.arange(len(usable)) if multi else splits.cap_per_class(
        np.arange(len(usable)), labels, max_per_class=data.max_examples_per_class,
        seed=split_seed)
    return dataset.Data(names, split(train), split(np.arange(len(val_rows)), val_rows,
                                                  val_labels),
                        f'{description}, validated on {held_out.describe()}',
                        scan={**summary, 'validation': val_summary}, multi_label=multi)
  if data.split_column:
    given = np.asarray([row.split for row in usable])
    train, val = np.flatnonzero(given == 'train'), np.flatnonzero(given == 'validation')
    if not len(val):
      raise errors.InvalidValueError(
          f'{manifest.path}: no usable row has split validation in column '
          f'{data.split_column!r}; mark some, or leave config.data.split_column empty to '
          'carve data.val_fraction.')
    summary['test_rows'] = int(np.sum(given == 'test'))
  elif multi:
    train, val = splits.iterative_stratified_split(labels, val_fraction=data.val_fraction,
                                                   seed=split_seed)
  else:
    train, val = splits.train_val_indices(labels, data, split_seed)
  return dataset.Data(names, split(train), split(val), description, scan=summary,
                      multi_label=multi)
