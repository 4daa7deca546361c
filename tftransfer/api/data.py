"""`tft.ImageData`: where a notebook's images come from, as the config's data section says it.

An ImageData is a value that names a source (an image folder, TFRecords, a TFDS data set, or
arrays in memory) and, after `split`, one side of a stratified, seeded split of it. Nothing
is decoded until `len()`, `class_names` or training need it, and then by the same code the
command line runs (data/sources.py): arrays are written as PNG files into the run's workdir
and trained as that folder, so they go through the same scan, pipeline, cache and audit as
any folder.
"""

import dataclasses
import hashlib
import os
from typing import Sequence

import numpy as np

from tftransfer import config as config_lib, errors, files
from tftransfer.data import folders, sources, splits, tfrecords

KINDS = ('folder', 'tfrecord', 'tfds', 'arrays')
_SOURCE_FILE = '.source_sha256'  # beside written arrays: what they were written from


def _arrays_error(message: str) -> errors.InvalidValueError:
  return errors.InvalidValueError(f'ImageData.from_arrays: {message}')


def as_rgb(image: np.ndarray, where: str) -> np.ndarray:
  """uint8 [H, W, 3] from uint8 [H, W, 3], [H, W, 1] or grey [H, W]."""
  if image.dtype != np.uint8:
    top = float(np.max(image)) if image.size else 0.0
    fix = ('(images * 255).round().astype(np.uint8)' if top <= 1.0 else
           'np.clip(images, 0, 255).round().astype(np.uint8)')
    raise _arrays_error(f'{where} are {image.dtype} (largest value {top:g}); pass uint8 '
                        f'pixels in 0-255, e.g. {fix}.')
  if image.ndim == 2:
    image = image[..., None]
  if image.ndim != 3 or image.shape[-1] not in (1, 3) or 0 in image.shape:
    raise _arrays_error(f'{where} have shape {image.shape}; pass RGB images [H, W, 3] '
                        '(grey [H, W] or [H, W, 1] are converted to RGB; for RGBA, drop the '
                        'alpha: images[..., :3]).')
  return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


@dataclasses.dataclass(frozen=True, eq=False)
class _Arrays:
  images: tuple[np.ndarray, ...]  # uint8 [H, W, 3] each
  labels: np.ndarray  # int32 [N]
  class_names: tuple[str, ...]

  def sha256(self) -> str:
    digest = hashlib.sha256(repr(self.class_names).encode())
    digest.update(self.labels.tobytes())
    for image in self.images:
      digest.update(repr(image.shape).encode())
      digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True, eq=False)
class ImageData:
  """Labelled images from one source; see the module docstring. Make one with a `from_*`
  class method."""
  kind: str  # one of KINDS
  path: str = ''  # folder or TFRecord directory
  name: str = ''  # TFDS data set
  tfds_split: str = 'train'  # TFDS split (split syntax allowed)
  data_dir: str = ''  # TFDS data directory; '' = TFDS's default
  arrays: _Arrays | None = None
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
    names = tuple(files.text_name(str(name)) for name in class_names)
    bad = [name for name in names if not name or '/' in name or name.startswith('.')]
    if bad or len(set(names)) != len(names):
      raise _arrays_error(f'class_names {list(names)} must be distinct, non-empty, without '
                          "'/' and not starting with '.' (they become folder names).")
    stacked = isinstance(images, np.ndarray)
    count = len(images) if stacked or isinstance(images, (list, tuple)) else None
    if count is None:
      raise _arrays_error(f'images is a {type(images).__name__}; pass a uint8 array '
                          '[N, H, W, 3] or a list of uint8 [H, W, 3] arrays.')
    if stacked and images.ndim == 3 and images.dtype == np.uint8:
      images = images[..., None]  # [N, H, W] grey
    pixels = tuple(as_rgb(np.asarray(image), f'images[{index}]')
                   for index, image in enumerate(images))
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(pixels):
      raise _arrays_error(f'labels has shape {labels.shape} for {len(pixels)} images; pass '
                          'one integer label per image.')
    if not len(pixels):
      raise _arrays_error('no images: pass at least one per class of two or more classes.')
    if not np.issubdtype(labels.dtype, np.integer):
      raise _arrays_error(f'labels are {labels.dtype}; pass integer class indices (e.g. '
                          'labels.astype(int)).')
    outside = sorted(set(labels[(labels < 0) | (labels >= len(names))].tolist()))
    if outside:
      raise _arrays_error(f'labels {outside[:10]} are outside range({len(names)}), the '
                          f'indices of class_names {list(names)}.')
    if len(np.unique(labels)) < 2:
      raise _arrays_error(f'every image is labelled {names[int(labels[0])]!r}; a '
                          'classifier needs images of at least two classes.')
    return cls('arrays', arrays=_Arrays(pixels, labels.astype(np.int32), names))

  # What the data is.

  @property
  def class_names(self) -> tuple[str, ...]:
    """The classes, in label order (a folder's: its class folders, sorted)."""
    if self.kind == 'arrays':
      return self.arrays.class_names
    if self.kind == 'folder':
      return folders.list_folder(self.path).class_names
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
    source = {'folder': f'from_folder({self.path!r})',
              'tfrecord': f'from_tfrecords({self.path!r})',
              'tfds': f'from_tfds({self.name!r}, split={self.tfds_split!r})',
              'arrays': f'from_arrays(<{len(self.arrays.labels) if self.arrays else 0} '
                        'images>)'}[self.kind]
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
    return {'data.source': self.kind, 'data.path': self.path}

  def write_arrays(self, folder: str) -> str:
    """Writes arrays as PNG files, folder/<class>/<index>.png (lossless, in their order), and
    returns `folder`; a folder already written from the same arrays is left as it is."""
    digest = self.arrays.sha256()
    marker = os.path.join(folder, _SOURCE_FILE)
    if os.path.isfile(marker):
      with open(marker) as f:
        if f.read() == digest:
          return folder
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    width = len(str(len(self.arrays.images)))
    with files.staged_directory(folder, overwrite=True) as staging:
      for name in self.arrays.class_names:
        os.makedirs(os.path.join(staging, name))
      for index, (image, label) in enumerate(zip(self.arrays.images, self.arrays.labels)):
        png = tf.io.encode_png(image).numpy()
        with open(os.path.join(staging, self.arrays.class_names[label],
                               f'{index:0{width}d}.png'), 'wb') as f:
          f.write(png)
      with open(os.path.join(staging, _SOURCE_FILE), 'w') as f:
        f.write(digest)
    return folder

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
          '.from_arrays, .from_tfrecords or .from_tfds).')
  if train.part and train.part[0] != 'train':
    raise errors.InvalidValueError(f'train={train!r} is the validation side of a split; pass '
                                   'the first of the pair split() returns.')

  def whole_fields(data, name):
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
                                                                       'tfrecord'):
    raise errors.InvalidValueError(
        f'validation={validation!r} is another kind of source than train={train!r}; validate '
        'folders and arrays on a folder or arrays, TFRecords on TFRecords.')
  return {**fields, 'data.val_path': whole_fields(validation, 'validation')['data.path']}


def _same_source(a: ImageData, b: ImageData) -> bool:
  if a.kind != b.kind:
    return False
  if a.kind == 'arrays':
    return a.arrays is b.arrays
  return (a.path, a.name, a.tfds_split, a.data_dir) == (b.path, b.name, b.tfds_split,
                                                        b.data_dir)
