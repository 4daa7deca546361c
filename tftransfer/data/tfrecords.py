"""TFRecords of `tf.train.Example`: an image folder or a manifest written as shards, and
read back.

    DIR/images-00000-of-00016.tfrecord   one Example per usable image of the folder
    ...
    DIR/dataset.json                     class names and counts, the files, and the
                                         scan (what was skipped and why); for a manifest
                                         also each image's labels (and split) by its
                                         position

Example keys are the usual ones (TF object detection, TF-slim):

    image/encoded      the image file's bytes exactly as in the folder, never re-encoded
    image/format       'jpeg' | 'png' | 'gif' | 'bmp' | 'webp', read from the bytes
    image/class/label  int64 index into dataset.json's class_names (a manifest's image with
                       several labels: one value each, a multi-valued list)
    image/class/text   the class name (several: one value each)
    image/filename     the file's path relative to the folder (a manifest's: as it lists it)
    image/folder_index int64 position of the image in the scanned folder's order (class by
                       class, sorted paths) or the manifest's usable rows: the
                       train/validation split is carved over it

Every format is stored as it came: the folder scan has already decoded each file with
`image_ops.decode_image`, which reads them all, so re-encoding would only cost time and, for
PNG/BMP/GIF to JPEG, change pixels (and the folder and TFRecord sources would no longer give
the same examples). Examples are written in a seeded random order, so every file holds every
class and a worker reading some of the files still sees all classes.

A directory appears complete or not at all: everything is written into a temporary sibling
directory that is renamed to DIR at the end.
"""

import json
import math
import os

from absl import logging
import numpy as np
import tensorflow as tf

from tftransfer import errors, files
from tftransfer.data import folders, image_ops

DESCRIPTION_FILE = 'dataset.json'
FORMAT = 'tftransfer.tfrecords.v1'
# Automatic shard count (--shards=0): files of about this size, which read at disk speed...
_SHARD_BYTES = 128 * 2**20
# ...and at least this many files, so a job of up to 16 workers shards by file.
_MIN_AUTO_SHARDS = 16
# Files read at once by each worker. Fixed rather than AUTOTUNE (which follows the CPU count)
# so that the example order, and with it a seeded run, is the same on every machine.
_PARALLEL_FILES = 8
# Records parsed per batch: enough to amortise per-element overhead, few enough that batches
# of large photos stay small in memory.
_PARSE_BATCH = 64
_FORMATS = ((b'\xff\xd8\xff', 'jpeg'), (b'\x89PNG', 'png'), (b'GIF8', 'gif'), (b'BM', 'bmp'))


def image_format(encoded: bytes) -> str:
  """The image format of `encoded` from its first bytes (the file extension can lie)."""
  for magic, name in _FORMATS:
    if encoded.startswith(magic):
      return name
  if encoded[:4] == b'RIFF' and encoded[8:12] == b'WEBP':
    return 'webp'
  raise ValueError(f'Not a JPEG, PNG, GIF, BMP or WebP image (starts with {encoded[:12]!r}).')


def _bytes_feature(value: bytes) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64_feature(*values: int) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _example(encoded: bytes, *, labels: tuple[int, ...], class_names: tuple[str, ...],
             filename: str, folder_index: int) -> bytes:
  return tf.train.Example(features=tf.train.Features(feature={
      'image/encoded': _bytes_feature(encoded),
      'image/format': _bytes_feature(image_format(encoded).encode()),
      'image/class/label': _int64_feature(*labels),
      'image/class/text': tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[class_names[label].encode('utf-8') for label in labels])),
      'image/filename': _bytes_feature(filename.encode('utf-8', 'surrogateescape')),
      'image/folder_index': _int64_feature(folder_index),
  })).SerializeToString()


def auto_num_shards(total_bytes: int, num_examples: int) -> int:
  """--shards=0: about _SHARD_BYTES per file, at least _MIN_AUTO_SHARDS, at most one per image."""
  return max(1, min(num_examples, max(_MIN_AUTO_SHARDS, math.ceil(total_bytes / _SHARD_BYTES))))


def _read(file: str) -> bytes:
  """A local file's bytes (its name may not be UTF-8, which tf.io.gfile cannot open), or a
  gs:// one's."""
  if '://' in file:
    with tf.io.gfile.GFile(file, 'rb') as f:
      return f.read()
  with open(file, 'rb') as f:
    return f.read()


def _size(file: str) -> int:
  return tf.io.gfile.stat(file).length if '://' in file else os.path.getsize(file)


def _check_output(output_dir: str, num_shards: int) -> str:
  output_dir = os.path.abspath(output_dir)
  if os.path.exists(output_dir) and (not os.path.isdir(output_dir) or os.listdir(output_dir)):
    raise errors.AlreadyExistsError(f'--output={output_dir} exists and is not empty; choose a new '
                                    'directory or remove it (it is never overwritten in place).')
  if num_shards < 0:
    raise errors.InvalidValueError(f'--shards={num_shards} must be >= 1, or 0 for automatic.')
  return output_dir


def _write(output_dir: str, images: list[tuple[str, tuple[int, ...], str]], *,
           class_names: tuple[str, ...], num_shards: int, seed: int, what: str,
           description: dict) -> dict:
  """Writes (file, labels, filename) `images` as shards and dataset.json (`description`
  plus what every conversion records); returns dataset.json's contents."""
  if not num_shards:
    num_shards = auto_num_shards(sum(_size(file) for file, _, _ in images),
                                 len(images))
    logging.info('--shards=0 -> %d: about %d MiB per file, at least %d files, at most one '
                 'per image.', num_shards, _SHARD_BYTES // 2**20, _MIN_AUTO_SHARDS)
  if num_shards > len(images):
    raise errors.InvalidValueError(
        f'--shards={num_shards} is more than the {len(images)} usable '
        f'images of {what}; use at most {len(images)}.')
  order = np.random.default_rng(seed).permutation(len(images))
  files_written = []
  with files.staged_directory(output_dir) as staging:
    for shard, indices in enumerate(np.array_split(order, num_shards)):
      name = f'images-{shard:05d}-of-{num_shards:05d}.tfrecord'
      with tf.io.TFRecordWriter(os.path.join(staging, name)) as writer:
        for index in indices:
          file, labels, filename = images[index]
          writer.write(_example(_read(file), labels=labels, class_names=class_names,
                                filename=filename, folder_index=int(index)))
      files_written.append({'name': name, 'num_examples': len(indices)})
      logging.info('Wrote %s (%d images).', name, len(indices))
    description = {'format': FORMAT, 'class_names': list(class_names), **description,
                   'num_examples': len(images), 'files': files_written}
    with open(os.path.join(staging, DESCRIPTION_FILE), 'w') as f:
      json.dump(description, f, indent=2)
  logging.info('Wrote %d images of %d classes to %d TFRecord files in %s (%d unusable files '
               'skipped).', len(images), len(class_names), num_shards, output_dir,
               len(description['scan']['skipped']))
  return description


# Long mostly in its docstring: the format it writes is documented where it is written.
def convert_folder(input_dir: str, output_dir: str, *, max_image_pixels: int,
                   num_shards: int = 0, seed: int = 0, on_bad_image: str = 'skip') -> dict:
  """Scans an image folder and writes its usable images as sharded TFRecords.

  Args:
    input_dir: the folder, `input_dir/<class>/**/<image>` (see folders.scan_folder).
    output_dir: the directory to create; it must not exist yet (or be empty).
    max_image_pixels: images with more pixels are left out (config.data.max_image_pixels;
      0 = no limit); training from the records refuses a lower limit than the largest kept.
    num_shards: number of TFRecord files; 0 = automatic (see auto_num_shards).
    seed: seeds the order of the examples across and within the files.
    on_bad_image: 'skip' leaves undecodable files out (listed in dataset.json); 'fail'
      stops before writing anything.

  Returns:
    The contents of `output_dir/dataset.json`.

  Raises:
    FileExistsError: `output_dir` exists and is not empty.
    ValueError: a bad `num_shards`, or what folders.scan_folder raises.
  """
  output_dir = _check_output(output_dir, num_shards)
  scan = folders.scan_folder(input_dir, max_image_pixels=max_image_pixels,
                             on_bad_image=on_bad_image, setting='--input',
                             table_fix=f'pass it as --manifest={input_dir}')
  root = os.path.abspath(input_dir)
  images = [(path, (int(label),), os.path.relpath(path, root))
            for path, label in zip(scan.files, scan.labels)]
  return _write(output_dir, images, class_names=tuple(scan.class_names),
                num_shards=num_shards, seed=seed, what=input_dir, description={
                    'class_counts': list(scan.class_counts),
                    'source': {'path': root, 'seed': seed}, 'scan': scan.summary()})


def convert_manifest(manifest: str, output_dir: str, *, columns: dict, max_image_pixels: int,
                     num_shards: int = 0, seed: int = 0, on_bad_image: str = 'skip') -> dict:
  """Writes the usable images a manifest lists (manifests.py) as sharded TFRecords: each
  with its labels (several for a multi-label row), dataset.json with every image's labels
  and, when the manifest has a split column, its split, which the TFRecord source keeps.

  Args:
    manifest: a .csv, .tsv or .jsonl table.
    columns: how to read it (manifests.read's keywords: image_column, label_column,
      label_delimiter, label_columns, split_column).
    output_dir, max_image_pixels, num_shards, seed, on_bad_image: as convert_folder.

  Raises:
    what convert_folder raises, and manifests.read's errors naming a row's line.
  """
  from tftransfer.data import manifest_source, manifests  # pylint: disable=g-import-not-at-top
  output_dir = _check_output(output_dir, num_shards)
  table = manifests.read(manifest, **columns)
  usable, summary = manifest_source.usable_rows(table, max_image_pixels=max_image_pixels,
                                                on_bad_image=on_bad_image, scan_cache=None)
  index = {name: label for label, name in enumerate(table.class_names)}
  labels = [tuple(index[label] for label in row.labels) for row in usable]
  images = [(row.file, row_labels, row.path) for row, row_labels in zip(usable, labels)]
  counts = np.zeros(len(table.class_names), np.int64)
  for row_labels in labels:
    counts[list(row_labels)] += 1
  return _write(output_dir, images, class_names=table.class_names, num_shards=num_shards,
                seed=seed, what=manifest, description={
                    'class_counts': counts.tolist(),
                    'source': {'path': manifest, 'seed': seed, 'columns': {
                        key: list(value) if isinstance(value, tuple) else value
                        for key, value in columns.items()}},
                    'scan': summary, 'multi_label': table.multi_label,
                    'labels': [list(row_labels) for row_labels in labels],
                    **({'splits': [row.split for row in usable]}
                       if columns.get('split_column') else {})})


def read_description(directory: str) -> dict:
  """Reads and checks `directory/dataset.json`, as written by convert_folder.

  Raises:
    FileNotFoundError: no dataset.json (not a make_tfrecords output, or an interrupted one)
      or a TFRecord file it lists is missing.
    ValueError: a dataset.json of another format.
  """
  path = os.path.join(directory, DESCRIPTION_FILE)
  if not tf.io.gfile.exists(path):
    raise errors.NotFoundError(
        f'config.data.path={directory!r} has no {DESCRIPTION_FILE}: it is not a directory '
        'written by make_tfrecords, or its conversion did not finish. Convert the image '
        'folder with: python -m tftransfer.make_tfrecords --input=FOLDER '
        f'--output={directory}')
  with tf.io.gfile.GFile(path) as f:
    description = json.load(f)
  if description.get('format') != FORMAT:
    raise errors.InvalidValueError(
        f'{path} has format {description.get("format")!r}, not {FORMAT!r}; '
        'convert the folder again with this version of make_tfrecords.')
  missing = [file['name'] for file in description['files']
             if not tf.io.gfile.exists(os.path.join(directory, file['name']))]
  if missing:
    raise errors.NotFoundError(f'{directory} lacks files that {DESCRIPTION_FILE} lists: '
                               f'{", ".join(missing)}. Convert the folder again.')
  return description


def folder_labels(description: dict) -> np.ndarray:
  """The labels of every example by `image/folder_index`: int32 [N], or for multi-label
  records float32 multi-hot [N, num_classes].

  A folder's order is class by class, the folder source's; a manifest's labels are in
  dataset.json in its rows' order. Carving the train/validation split over them with the
  same seed holds out the same images as training from the folder or manifest would.
  """
  if 'labels' not in description:
    counts = description['class_counts']
    return np.repeat(np.arange(len(counts), dtype=np.int32), counts)
  if description.get('multi_label'):
    targets = np.zeros((len(description['labels']), len(description['class_names'])),
                       np.float32)
    for row, labels in enumerate(description['labels']):
      targets[row, labels] = 1
    return targets
  return np.asarray([labels[0] for labels in description['labels']], np.int32)


def _parse_kept(records: tf.Tensor, keep: tf.Tensor, num_classes: int = 0
                ) -> tuple[tf.Tensor, tf.Tensor]:
  """(encoded images, labels) of the records in a batch whose folder index `keep` marks;
  with `num_classes`, each record's label list as a float32 multi-hot [num_classes]."""
  examples = tf.io.parse_example(records, {
      'image/encoded': tf.io.FixedLenFeature([], tf.string),
      'image/class/label': (tf.io.VarLenFeature(tf.int64) if num_classes else
                            tf.io.FixedLenFeature([], tf.int64)),
      'image/folder_index': tf.io.FixedLenFeature([], tf.int64)})
  kept = tf.gather(keep, examples['image/folder_index'])
  labels = examples['image/class/label']
  if num_classes:
    labels = tf.cast(tf.sparse.to_indicator(labels, num_classes), tf.float32)
    return tf.boolean_mask(examples['image/encoded'], kept), tf.boolean_mask(labels, kept)
  return (tf.boolean_mask(examples['image/encoded'], kept),
          tf.cast(tf.boolean_mask(labels, kept), tf.int32))


def read_examples(directory: str, description: dict, keep: np.ndarray,
                  shard_index: int = 0, num_shards: int = 1, *,
                  max_pixels: int) -> tf.data.Dataset:
  """One shard's decoded (uint8 image, int32 label) examples (multi-label records: float32
  multi-hot labels), in a deterministic order.

  Args:
    directory: the TFRecord directory.
    description: its dataset.json (read_description).
    keep: bool per `image/folder_index`: the examples to read (e.g. the training split).
    shard_index: this worker's shard.
    num_shards: number of workers reading. With at least as many files as shards each shard
      reads its own files (file i belongs to shard i % num_shards); with fewer, every shard
      reads all files and keeps every num_shards-th example.
    max_pixels: config.data.max_image_pixels, as image_ops.decode_image takes it.
  """
  paths = [os.path.join(directory, file['name']) for file in description['files']]
  by_file = len(paths) >= num_shards
  if by_file:
    paths = paths[shard_index::num_shards]
  else:
    logging.info('%d TFRecord files for %d shards: every shard reads every file and keeps '
                 'every %d-th example. Convert with --shards>=%d to shard by file.',
                 len(paths), num_shards, num_shards, num_shards)
  keep = tf.constant(keep, tf.bool)
  records = tf.data.Dataset.from_tensor_slices(paths).interleave(
      tf.data.TFRecordDataset, cycle_length=min(len(paths), _PARALLEL_FILES), block_length=1,
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  # Parsing and filtering batches of records rather than single ones measured twice as fast.
  num_classes = len(description['class_names']) if description.get('multi_label') else 0
  examples = records.batch(_PARSE_BATCH).map(
      lambda batch: _parse_kept(batch, keep, num_classes),
      num_parallel_calls=tf.data.AUTOTUNE).unbatch()
  if not by_file:
    examples = examples.shard(num_shards, shard_index)
  return examples.map(
      lambda encoded, label: (image_ops.decode_image(encoded, max_pixels=max_pixels), label),
      num_parallel_calls=tf.data.AUTOTUNE)
