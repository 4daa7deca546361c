"""`tft.ImageData`: where a notebook's images come from, as the config's data section says it.

An ImageData is a value that names a source (an image folder, a manifest table of paths and
labels, TFRecords, a TFDS data set, or arrays in memory) and, after `split`, one side of a
stratified, seeded split of it. Nothing is decoded until `len()`, `class_names` or training
need it, and then by the same code the command line runs (data/sources.py): arrays are
written as PNG files into the run's workdir and trained as that folder, and a DataFrame is
written as a JSON-lines manifest (api/in_memory.py checks and writes both), so they go
through the same scan, pipeline, cache and audit as any folder or manifest.
"""

import dataclasses
import os
import tempfile
from typing import Sequence

import numpy as np

from tftransfer import config as config_lib, errors
from tftransfer.api.in_memory import Arrays, Table, as_rgb
from tftransfer.data import folders, manifests, sources, splits, tfrecords

__all__ = ['KINDS', 'ImageData', 'as_rgb', 'run_fields']

KINDS = ('folder', 'csv', 'tfrecord', 'tfds', 'arrays')


# The columns a manifest is read with (manifests.read's keyword arguments).
_COLUMN_FIELDS = ('image_column', 'label_column', 'label_delimiter', 'label_columns',
                  'split_column')


@dataclasses.dataclass(frozen=True, eq=False)
class ImageData:
  """Labelled images from one source; see the module docstring. Make one with a `from_*`
  class method."""
  kind: str  # one of KINDS
  path: str = ''  # folder or TFRecord directory
  name: str = ''  # TFDS data set
  tfds_split: str = 'train'  # TFDS split (split syntax allowed)
  data_dir: str = ''  # TFDS data directory; '' = TFDS's default
  arrays: Arrays | None = None
  columns: tuple[tuple[str, object], ...] = ()  # a manifest's, as manifests.read takes them
  table: Table | None = None  # a DataFrame's rows (kind 'csv' without a path)
  part: tuple[str, float, int] | None = None  # ('train' | 'validation', fraction, seed)

  @classmethod
  def from_folder(cls, path: str) -> 'ImageData':
    """A folder of images, one sub-folder per class: path/<class>/**/<image>.

    Raises:
      errors.NotFoundError: `path` is not a directory.
    """
    if not os.path.isdir(path):
      raise errors.NotFoundError(f'ImageData.from_folder: {path!r} is not a directory; give a '
                                 'folder holding one sub-folder of images per class.')
    return cls('folder', path=os.path.abspath(path))

  @classmethod
  def from_csv(cls, path: str, *, image_column: str = 'path', label_column: str = 'label',
               label_delimiter: str = '', label_columns: Sequence[str] = (),
               split_column: str = '') -> 'ImageData':
    """A manifest: a .csv, .tsv or .jsonl table of image paths (relative to its folder,
    absolute or gs://) and labels, as `--config.data.source=csv` reads it
    (data/manifests.py).

    Args:
      path: the table.
      image_column: the column of each image's path.
      label_column: the column of its label (or labels, with `label_delimiter`; a JSON
        list in JSON lines).
      label_delimiter: splits a label cell into several labels, e.g. '|'; '' = one label.
      label_columns: one 0/1 column per label instead of `label_column` (multi-label).
      split_column: a column of train / validation (val) / test per row, respected instead
        of a carved split; '' = none.

    Raises:
      errors.NotFoundError: no such file.
      errors.InvalidValueError: a row or column that cannot be meant, naming its line (the
        table is read now; its images are scanned when training or len() needs them).
    """
    columns = {'image_column': image_column, 'label_column': label_column,
               'label_delimiter': label_delimiter, 'label_columns': tuple(label_columns),
               'split_column': split_column}
    manifests.read(path, **columns)  # Raises, naming the line and the fix.
    return cls('csv', path=os.path.abspath(path) if '://' not in path else path,
               columns=tuple(columns.items()))

  @classmethod
  def from_dataframe(cls, frame, *, image_column: str = 'path', label_column: str = 'label',
                     label_delimiter: str = '', label_columns: Sequence[str] = (),
                     split_column: str = '', root: str | None = None) -> 'ImageData':
    """A pandas DataFrame of image paths and labels, read as from_csv reads a table (a
    label cell may also hold a list of labels).

    Args:
      frame: a pandas.DataFrame with the columns below.
      image_column, label_column, label_delimiter, label_columns, split_column: as
        from_csv.
      root: the folder relative paths are relative to; None = the current directory.

    Raises:
      ImportError: pandas is not installed (tftransfer does not need it otherwise).
      errors.InvalidValueError: not a DataFrame, or a row that cannot be meant (naming its
        position in the frame, counted from 1).
    """
    table = Table.from_dataframe(frame, image_column=image_column, root=root)
    data = cls('csv', columns=tuple({
        'image_column': image_column, 'label_column': label_column,
        'label_delimiter': label_delimiter, 'label_columns': tuple(label_columns),
        'split_column': split_column}.items()), table=table)
    manifests.read(data.manifest_path(), **dict(data.columns))  # Raises, naming the row.
    return data

  @classmethod
  def from_tfrecords(cls, path: str) -> 'ImageData':
    """TFRecords written by `tftransfer make_tfrecords` (a directory with its dataset.json).

    Raises:
      errors.NotFoundError: `path` holds no such TFRecords.
    """
    tfrecords.read_description(path)  # Raises, naming the fix, when it is not one.
    return cls('tfrecord', path=os.path.abspath(path))

  @classmethod
  def from_tfds(cls, name: str, *, split: str = 'train', data_dir: str | None = None
                ) -> 'ImageData':
    """A TensorFlow Datasets image classification set, prepared locally (in `data_dir`, or
    TFDS's default); `split` in TFDS's split syntax ('train', 'train[:50%]')."""
    return cls('tfds', name=name, tfds_split=split, data_dir=data_dir or '')

  @classmethod
  def from_arrays(cls, images, labels, class_names: Sequence[str]) -> 'ImageData':
    """Images held in memory.

    Args:
      images: uint8 [N, H, W, 3], or a sequence of N uint8 [H, W, 3] arrays of any sizes;
        grey images ([N, H, W], [H, W] or [..., 1]) are converted to RGB.
      labels: int [N], each in range(len(class_names)).
      class_names: the classes' names, `labels`' indices into them. The images are
        trained as a folder of one sub-folder per class, so the model's classes are these
        names sorted, as a folder's are; labels are matched to them by name.

    Raises:
      errors.InvalidValueError: float images, a wrong shape, labels out of range or not
        integers, lengths that differ, no images, fewer than two classes present, class
        names that repeat or cannot be folder names. Nothing is written until training.
    """
    return cls('arrays', arrays=Arrays.checked(images, labels, class_names))

  # What the data is.

  @property
  def class_names(self) -> tuple[str, ...]:
    """The classes, in label order (a folder's: its class folders, sorted)."""
    if self.kind == 'arrays':
      return self.arrays.class_names
    if self.kind == 'folder':
      return folders.list_folder(self.path).class_names
    if self.kind == 'csv':
      return manifests.read(self.manifest_path(), **dict(self.columns)).class_names
    return self._load().class_names

  def __len__(self) -> int:
    """The number of usable images (a folder's are scanned once, as training scans them)."""
    if self.kind == 'arrays':
      if self.part is None:
        return len(self.arrays.labels)
      # Counted as the folder they are written to will be split: per class, in label order.
      config = config_lib.from_fields(**{'data.val_fraction': self.part[1]})
      train, val = splits.train_val_indices(np.sort(self.arrays.labels), config.data,
                                            self.part[2])
      return len(train if self.part[0] == 'train' else val)
    if self.part is None and self.kind == 'folder':
      return len(folders.scan_folder(self.path, max_image_pixels=_MAX_PIXELS).files)
    data = self._load()
    if self.part is None:
      return data.train.num_examples + data.val.num_examples
    return (data.train if self.part[0] == 'train' else data.val).num_examples

  def __repr__(self) -> str:
    # One branch per kind: the other kinds' fields are None here (an arrays source has no
    # table), so no entry may be evaluated for a kind it does not describe.
    if self.kind == 'csv':
      source = (f'from_csv({self.path!r})' if self.path else
                f'from_dataframe(<{self.table.text.count(chr(10))} rows>)')
    elif self.kind == 'arrays':
      source = f'from_arrays(<{len(self.arrays.labels)} images>)'
    elif self.kind == 'tfds':
      source = f'from_tfds({self.name!r}, split={self.tfds_split!r})'
    else:
      source = f'from_{"folder" if self.kind == "folder" else "tfrecords"}({self.path!r})'
    part = (f'.split({self.part[1]:g}, seed={self.part[2]})[{int(self.part[0] != "train")}]'
            if self.part else '')
    return f'ImageData.{source}{part}'

  def split(self, fraction: float = 0.1, *, seed: int = 0) -> tuple['ImageData', 'ImageData']:
    """(train, validation): a stratified, seeded `fraction` of each class held out, as a run
    carves its validation split (data.val_fraction, data.split_seed).

    Raises:
      errors.InvalidValueError: a fraction outside (0, 1), or data that is already a split.
    """
    if not 0 < fraction < 1:
      raise errors.InvalidValueError(f'split(fraction={fraction}): give the fraction of each '
                                     'class to hold out for validation, in (0, 1), e.g. 0.2.')
    if self.part is not None:
      raise errors.InvalidValueError(f'{self!r} is already one side of a split; split the '
                                     'whole data once.')
    return (dataclasses.replace(self, part=('train', float(fraction), int(seed))),
            dataclasses.replace(self, part=('validation', float(fraction), int(seed))))

  # How the command line's config names it.

  def fields(self, arrays_folder: str | None = None) -> dict:
    """The config's data fields for this source (a whole source; a split's fraction and
    seed are added by `train_fields`). Arrays need the folder they are written to."""
    if self.kind == 'arrays':
      return {'data.source': 'folder', 'data.path': arrays_folder}
    if self.kind == 'tfds':
      return {'data.source': 'tfds', 'data.name': self.name, 'data.train_split':
              self.tfds_split, 'data.data_dir': self.data_dir}
    if self.kind == 'csv':
      columns = dict(self.columns)
      return {'data.source': 'csv', 'data.path': self.manifest_path(arrays_folder),
              **{f'data.{name}': ','.join(value) if name == 'label_columns' else value
                 for name, value in columns.items()}}
    return {'data.source': self.kind, 'data.path': self.path}

  def manifest_path(self, folder: str | None = None) -> str:
    """A manifest's table: its file, or a DataFrame's rows written into `folder` (None: a
    scratch folder for reading before training)."""
    if self.path:
      return self.path
    return self.table.write(folder or os.path.join(tempfile.gettempdir(), 'tftransfer_tables'))

  def write_arrays(self, folder: str) -> str:
    """Writes arrays as PNG files, folder/<class>/<index>.png (lossless, in their order), and
    returns `folder`; a folder already written from the same arrays is left as it is."""
    return self.arrays.write(folder)

  def _load(self):
    """The source as data/sources.py loads it (for a split: with its fraction and seed)."""
    fraction, seed = (self.part[1], self.part[2]) if self.part else (0.1, 0)
    carve = {'data.eval_split': 'carve'} if self.kind == 'tfds' else {}
    config = config_lib.from_fields(**self.fields(), **carve, **{
        'data.val_fraction': fraction, 'data.split_seed': seed})
    return sources.load(config.data, seed=seed)


_MAX_PIXELS = config_lib.BY_PATH['data.max_image_pixels'].default


def run_fields(train: ImageData, validation: ImageData | None, *,
               images_dir: str | None) -> dict:
  """The config's data fields for training on `train` and validating on `validation`
  (None: a carved data.val_fraction of `train`). Arrays are written under `images_dir`
  (None: only check the pair, writing nothing; their fields then name no folder).

  Raises:
    errors.InvalidValueError: a pair the config cannot express (the two sides of different
      splits, a TFDS validation set of another data set, a validation side as training data).
  """
  for role, data in (('train', train), ('validation', validation)):
    if data is not None and not isinstance(data, ImageData):
      raise errors.InvalidValueError(
          f'{role} is a {type(data).__name__}; pass a tft.ImageData (ImageData.from_folder, '
          '.from_csv, .from_dataframe, .from_arrays, .from_tfrecords or .from_tfds).')
  if train.part and train.part[0] != 'train':
    raise errors.InvalidValueError(f'train={train!r} is the validation side of a split; pass '
                                   'the first of the pair split() returns.')

  def whole_fields(data, name):
    if data.kind == 'csv' and data.table is not None and images_dir is not None:
      return data.fields(images_dir)  # a DataFrame's table kept with the run
    if data.kind != 'arrays' or images_dir is None:
      return data.fields()
    return data.fields(data.write_arrays(os.path.join(images_dir, name)))

  fields = whole_fields(train, 'train')
  if train.part:
    if validation is not None and not (validation.part and validation.part[0] == 'validation'
                                       and validation.part[1:] == train.part[1:]
                                       and _same_source(validation, train)):
      raise errors.InvalidValueError(
          f'train={train!r} is one side of a split, validation={validation!r} is not its other '
          'side; pass both sides of one split(), or whole data for both.')
    return {**fields, 'data.val_fraction': train.part[1], 'data.split_seed': train.part[2]}
  if validation is None:
    return fields
  if validation.part:
    raise errors.InvalidValueError(f'validation={validation!r} is one side of a split of other '
                                   'data; pass both sides of one split(), or whole data.')
  if train.kind == 'tfds':
    if validation.kind != 'tfds' or (validation.name, validation.data_dir) != (train.name,
                                                                               train.data_dir):
      raise errors.InvalidValueError(f'validation={validation!r}: a TFDS training set '
                                     'validates on a split of the same TFDS set.')
    return {**fields, 'data.eval_split': validation.tfds_split}
  if validation.kind == 'tfds' or (validation.kind == 'tfrecord') != (fields['data.source'] ==
                                                                       'tfrecord') or (
      (validation.kind == 'csv') != (train.kind == 'csv')):
    raise errors.InvalidValueError(
        f'validation={validation!r} is another kind of source than train={train!r}; validate '
        'folders and arrays on a folder or arrays, TFRecords on TFRecords, manifests on a '
        'manifest.')
  if train.kind == 'csv' and validation.columns != train.columns:
    raise errors.InvalidValueError(
        f'validation={validation!r} is read with other columns than train={train!r} '
        f'({dict(validation.columns)} against {dict(train.columns)}); a run reads both with '
        'one set of data.*_column fields.')
  return {**fields, 'data.val_path': whole_fields(validation, 'validation')['data.path']}


def _same_source(a: ImageData, b: ImageData) -> bool:
  if a.kind != b.kind:
    return False
  if a.kind == 'arrays':
    return a.arrays is b.arrays
  return (a.path, a.name, a.tfds_split, a.data_dir, a.columns, a.table) == (
      b.path, b.name, b.tfds_split, b.data_dir, b.columns, b.table)
