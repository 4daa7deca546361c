"""Images and tables held in memory, checked and written to disk so that they train as the
folder or the manifest the command line reads (api/data.py's `from_arrays` and
`from_dataframe`).

Arrays become folder/<class>/<index>.png (lossless), a DataFrame a JSON-lines manifest; both
are named by a SHA-256 of their content, so writing the same data twice writes nothing.
"""

import dataclasses
import hashlib
import json
import math
import os
from typing import Sequence

import numpy as np

from tftransfer import errors, files

_SOURCE_FILE = '.source_sha256'  # beside written arrays: what they were written from


def _arrays_error(message: str) -> errors.InvalidValueError:
  return errors.InvalidValueError(f'ImageData.from_arrays: {message}')


def as_rgb(image: np.ndarray, where: str) -> np.ndarray:
  """uint8 [H, W, 3] from uint8 [H, W, 3], [H, W, 1] or grey [H, W].

  Raises:
    errors.InvalidValueError: not uint8 (naming the conversion), or not an image's shape.
  """
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
class Arrays:
  """Checked images in memory: what `ImageData.from_arrays` holds."""
  images: tuple[np.ndarray, ...]  # uint8 [H, W, 3] each
  labels: np.ndarray  # int32 [N]
  class_names: tuple[str, ...]

  @classmethod
  def checked(cls, images, labels, class_names: Sequence[str]) -> 'Arrays':
    """The arguments of `ImageData.from_arrays` (see there), checked and made RGB.

    Raises:
      errors.InvalidValueError: naming the argument, the bad value and the fix.
    """
    names = tuple(files.text_name(str(name)) for name in class_names)
    bad = [name for name in names if not name or '/' in name or name.startswith('.')]
    if bad or len(set(names)) != len(names):
      raise _arrays_error(f'class_names {list(names)} must be distinct, non-empty, without '
                          "'/' and not starting with '.' (they become folder names).")
    stacked = isinstance(images, np.ndarray)
    if not (stacked or isinstance(images, (list, tuple))):
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
    return cls(pixels, labels.astype(np.int32), names)

  def sha256(self) -> str:
    digest = hashlib.sha256(repr(self.class_names).encode())
    digest.update(self.labels.tobytes())
    for image in self.images:
      digest.update(repr(image.shape).encode())
      digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()

  def write(self, folder: str) -> str:
    """Writes the images as PNG files, folder/<class>/<index>.png (lossless, in their order),
    and returns `folder`; a folder already written from the same arrays is left as it is."""
    digest = self.sha256()
    marker = os.path.join(folder, _SOURCE_FILE)
    if os.path.isfile(marker):
      with open(marker) as f:
        if f.read() == digest:
          return folder
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    width = len(str(len(self.images)))
    with files.staged_directory(folder, overwrite=True) as staging:
      for name in self.class_names:
        os.makedirs(os.path.join(staging, name))
      for index, (image, label) in enumerate(zip(self.images, self.labels)):
        png = tf.io.encode_png(image).numpy()
        with open(os.path.join(staging, self.class_names[label],
                               f'{index:0{width}d}.png'), 'wb') as f:
          f.write(png)
      with open(os.path.join(staging, _SOURCE_FILE), 'w') as f:
        f.write(digest)
    return folder


@dataclasses.dataclass(frozen=True, eq=False)
class Table:
  """A DataFrame's rows as JSON lines, paths made absolute: the manifest written for it."""
  text: str

  @classmethod
  def from_dataframe(cls, frame, *, image_column: str, root: str | None) -> 'Table':
    """`frame`'s rows as JSON lines, relative paths in `image_column` joined to `root`
    (None: the current directory).

    Raises:
      ImportError: pandas is not installed (tftransfer does not need it otherwise).
      errors.InvalidValueError: `frame` is not a pandas.DataFrame.
    """
    try:
      import pandas  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise ImportError('ImageData.from_dataframe needs pandas, which tftransfer does not '
                        'install: pip install pandas (or write the table to a CSV file and '
                        'use ImageData.from_csv).') from None
    if not isinstance(frame, pandas.DataFrame):
      raise errors.InvalidValueError(f'ImageData.from_dataframe: frame is a '
                                     f'{type(frame).__name__}; pass a pandas.DataFrame.')
    root = os.path.abspath(root or os.getcwd())
    columns = [str(column) for column in frame.columns]
    lines = []
    for values in frame.itertuples(index=False, name=None):
      record = {column: _cell(value) for column, value in zip(columns, values)}
      image = record.get(image_column)
      if isinstance(image, str) and image.strip() and '://' not in image:
        record[image_column] = os.path.join(root, image.strip())
      lines.append(json.dumps(record, ensure_ascii=False))
    return cls('\n'.join(lines) + '\n')

  def sha256(self) -> str:
    return hashlib.sha256(self.text.encode('utf-8')).hexdigest()

  def write(self, folder: str) -> str:
    """folder/table_<sha>.jsonl (written once), its path."""
    path = os.path.join(folder, f'table_{self.sha256()[:16]}.jsonl')
    if not os.path.isfile(path):
      os.makedirs(folder, exist_ok=True)
      files.write_text(path, self.text)
    return path


def _cell(value):
  """A DataFrame cell as JSON: missing values empty, numpy scalars as Python numbers, whole
  floats (a 0/1 column read as float) as ints, lists and tuples as lists."""
  if isinstance(value, (list, tuple)):
    return [_cell(item) for item in value]
  if hasattr(value, 'tolist') and not isinstance(value, str):
    value = value.tolist()  # numpy scalars and arrays
    if isinstance(value, list):
      return [_cell(item) for item in value]
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return ''
  if isinstance(value, bool):
    return int(value)
  if isinstance(value, float) and value.is_integer():
    return int(value)
  return value if isinstance(value, (int, float, str)) else str(value)
