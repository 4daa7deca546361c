"""Labels in tables: a CSV (or TSV) file or JSON lines listing each image and its labels.

    path,label                  one label per row (data.label_column)
    img/001.jpg,cat
    path,tags                   several labels in one cell (data.label_delimiter='|')
    img/002.jpg,"cat|indoor"
    path,cat,dog,indoor         one 0/1 column per label (data.label_columns=cat,dog,indoor)
    img/003.jpg,1,0,1
    {"path": "img/004.jpg", "tags": ["cat", "indoor"]}      JSON lines (.jsonl): a list too

Paths are relative to the manifest's folder, absolute, or gs:// URLs. An optional split
column (data.split_column) with train, validation (or val) and test is respected instead of
carving a split. What real tables hold is read as meant: a UTF-8 byte-order mark, Windows
line endings, quoted cells holding the delimiter, spaces around cells, non-ASCII paths,
blank lines. Everything else that cannot be meant is one error naming the line, the value
and the fix: a missing column (with the likely one), a row with another number of cells,
an empty path or label, a value that is not 0/1, an unknown split, the same image twice with
different labels (the same labels twice is kept once, and reported). Label names are
compared and kept in one Unicode form (NFC), so a name typed on macOS is the same class.

Reading the table decodes no image: the manifest source (manifest_source.py) scans the files.
"""

import csv
import dataclasses
import difflib
import io
import json
import os
import unicodedata

import tensorflow as tf

from tftransfer import errors

JSON_LINES = ('.jsonl', '.ndjson')
# What a manifest's file name ends with (a CSV, a TSV, or JSON lines).
EXTENSIONS = ('.csv', '.tsv') + JSON_LINES
SPLITS = {'train': 'train', 'training': 'train', 'validation': 'validation',
          'val': 'validation', 'valid': 'validation', 'test': 'test', 'testing': 'test'}
_TRUE, _FALSE = ('1', 'true', 'yes', 'y', 't'), ('0', 'false', 'no', 'n', 'f', '')


@dataclasses.dataclass(frozen=True)
class Row:
  """One image of a manifest."""
  line: int  # the line of the file it is on (1 = a CSV's header)
  path: str  # as the manifest writes it
  file: str  # where it is read: absolute, or a gs:// URL
  labels: tuple[str, ...]  # its labels, NFC, sorted
  split: str | None  # 'train' | 'validation' | 'test', or None without a split column


@dataclasses.dataclass(frozen=True)
class Manifest:
  """A manifest's rows and what they make."""
  path: str
  rows: tuple[Row, ...]
  class_names: tuple[str, ...]  # every label of every row, sorted
  multi_label: bool  # label columns, or a row with more than one label
  repeated: tuple[tuple[int, int], ...]  # (line, line of the first) of rows listed twice

  def describe(self) -> str:
    return f'manifest {self.path!r} ({len(self.rows)} images, {len(self.class_names)} labels)'


def _error(path: str, message: str) -> errors.InvalidValueError:
  return errors.InvalidValueError(f'Manifest {path}: {message}')


def name(label: str) -> str:
  """A label as tftransfer keeps it: NFC, surrounding spaces stripped."""
  return unicodedata.normalize('NFC', label.strip())


def _records(path: str, text: str):
  """(line, {column: cell}) per non-blank row, and the columns."""
  if path.lower().endswith(JSON_LINES):
    records, columns = [], []
    for line, content in enumerate(text.splitlines(), start=1):
      if not content.strip():
        continue
      try:
        record = json.loads(content)
      except json.JSONDecodeError as error:
        raise _error(path, f'line {line} is not JSON ({error.msg}); write one JSON object a '
                     'line.') from None
      if not isinstance(record, dict):
        raise _error(path, f'line {line} is a JSON {type(record).__name__}, not an object '
                     'such as {"path": "a.jpg", "label": "cat"}.')
      records.append((line, {key.strip(): value for key, value in record.items()}))
      columns += [key for key in records[-1][1] if key not in columns]
    return records, columns
  reader = csv.reader(io.StringIO(text, newline=''),
                      delimiter='\t' if path.lower().endswith('.tsv') else ',')
  header, records = None, []
  for cells in reader:
    if not any(cell.strip() for cell in cells):
      continue
    if header is None:
      header = [cell.strip() for cell in cells]
      continue
    if len(cells) != len(header):
      raise _error(path, f'line {reader.line_num} has {len(cells)} cells, the header '
                   f'{len(header)} ({", ".join(header)}); quote a cell that holds the '
                   'delimiter, e.g. "cat, indoor".')
    records.append((reader.line_num, {column: cell.strip()
                                      for column, cell in zip(header, cells)}))
  if header is None:
    raise _error(path, 'is empty; give a header row (e.g. path,label) and one row an image.')
  return records, header


def _column(path: str, columns, column: str, field: str) -> None:
  if column not in columns:
    likely = difflib.get_close_matches(column, columns, n=1, cutoff=0.5)
    raise _error(path, f'has no column {column!r} (its columns: {", ".join(columns)})'
                 + (f"; did you mean {likely[0]!r}?" if likely else '.')
                 + f' Set --config.data.{field}= to the column that holds it.')


def _labels(path: str, line: int, record: dict, *, label_column: str, delimiter: str,
            label_columns: tuple[str, ...]) -> tuple[str, ...]:
  if label_columns:
    labels = []
    for column in label_columns:
      cell = str(record.get(column, '')).strip().lower()
      if cell not in _TRUE + _FALSE:
        raise _error(path, f'line {line}, column {column!r} holds {record.get(column)!r}, not '
                     '0 or 1 (one 0/1 column per label: data.label_columns).')
      if cell in _TRUE:
        labels.append(column)
  else:
    cell = record.get(label_column)
    if isinstance(cell, list):  # JSON lines may give the labels as a list
      labels = [str(label) for label in cell]
    elif delimiter:
      labels = str(cell if cell is not None else '').split(delimiter)
    else:
      labels = [str(cell if cell is not None else '')]
  labels = sorted({name(label) for label in labels if name(label)})
  if not labels and not label_columns:
    raise _error(path, f'line {line} has no label in column {label_column!r}; give each '
                 'image at least one (or leave the row out).')
  return tuple(labels)


def _file(manifest: str, image: str) -> str:
  if '://' in image or os.path.isabs(image):
    return image
  return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(manifest)), image))


def read(path: str, *, image_column: str = 'path', label_column: str = 'label',
         label_delimiter: str = '', label_columns: tuple[str, ...] = (),
         split_column: str = '') -> Manifest:
  """Reads a manifest (see the module docstring for what it may hold).

  Args:
    path: a .csv, .tsv or .jsonl file (local or gs://).
    image_column: the column of each image's path.
    label_column: the column of its label, or labels with `label_delimiter`.
    label_delimiter: splits a label cell into several labels; '' = one label a row.
    label_columns: one 0/1 column per label instead of `label_column`.
    split_column: the column of each row's split; '' = none (the split is carved).

  Raises:
    errors.NotFoundError: no such file.
    errors.InvalidValueError: a row or column that cannot be meant, naming its line.
  """
  if not tf.io.gfile.exists(path):
    raise errors.NotFoundError(f'config.data.path={path!r}: no such manifest file; give a '
                               '.csv, .tsv or .jsonl file listing the images and labels.')
  with tf.io.gfile.GFile(path, 'rb') as f:
    raw = f.read()
  try:
    text = raw.decode('utf-8-sig')  # A byte-order mark, if any, is not part of a column name.
  except UnicodeDecodeError as error:
    line = raw[:error.start].count(b'\n') + 1
    raise _error(path, f'line {line} is not UTF-8 text (byte {error.start} of the file); save '
                 'the table as UTF-8.') from None
  records, columns = _records(path, text)
  _column(path, columns, image_column, 'image_column')
  for column in label_columns or (label_column,):
    _column(path, columns, column, 'label_columns' if label_columns else 'label_column')
  if split_column:
    _column(path, columns, split_column, 'split_column')
  rows, first, repeated = [], {}, []
  for line, record in records:
    image = str(record.get(image_column) or '').strip()
    if not image:
      raise _error(path, f'line {line} has no image path in column {image_column!r}.')
    split = None
    if split_column:
      value = str(record.get(split_column) or '').strip()
      split = SPLITS.get(value.lower())
      if split is None:
        raise _error(path, f'line {line} has split {value!r} in column {split_column!r}; use '
                     'train, validation (or val) or test.')
    row = Row(line, image, _file(path, image),
              _labels(path, line, record, label_column=label_column,
                      delimiter=label_delimiter, label_columns=tuple(label_columns)), split)
    if row.file in first:
      earlier = first[row.file]
      if (earlier.labels, earlier.split) != (row.labels, row.split):
        raise _error(path, f'lines {earlier.line} and {line} list {image!r} with different '
                     f'labels or splits ({list(earlier.labels)}, {list(row.labels)}); keep one.')
      repeated.append((line, earlier.line))
      continue
    first[row.file] = row
    rows.append(row)
  if not rows:
    raise _error(path, 'lists no image; give a header row and one row an image.')
  class_names = tuple(sorted({label for row in rows for label in row.labels}
                             | {name(column) for column in label_columns}))
  return Manifest(path, tuple(rows), class_names,
                  multi_label=bool(label_columns) or any(len(row.labels) > 1 for row in rows),
                  repeated=tuple(repeated))
