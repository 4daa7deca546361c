"""Image folders: listing `root/<class>/**/<image>` and scanning it for undecodable files.

A folder of real images holds files that training cannot read: zero-byte files, text saved as
`.jpg`, truncated downloads. `scan_folder` decodes every image once, in parallel, with the
same op training uses (`image_ops.decode_image`), so a file it accepts cannot stop a run
in epoch 3, and it reports the others with the reason TensorFlow gave. Its verdicts are
cached under a fingerprint of the listing (paths, sizes, modification times), so a resumed
run does not decode an unchanged folder again.

What decodes is what `tf.io.decode_image(..., channels=3, expand_animations=False)` turns into
RGB: JPEG (grayscale, CMYK), PNG (palette, RGBA, 16-bit), GIF (first frame), BMP, WebP. A
truncated JPEG fails it (TensorFlow does not try to recover truncated JPEGs by default), so
the scan reports it. A JPEG whose compressed data is damaged but complete still decodes (libjpeg
prints 'Corrupt JPEG data' and fills in the damage); it is accepted, as training would read it.
"""

import collections
import dataclasses
import hashlib
import json
import os
import re
import time

from absl import logging
import numpy as np
import tensorflow as tf

from tftransfer import errors, files, tf_noise
from tftransfer.data import image_ops

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.gif', '.bmp', '.webp')
# Bump when what the scan accepts changes, so that cached verdicts of an older scan are redone.
_SCAN_VERSION = 1
# How many undecodable files an error message names; the scan cache and the report list all.
_MAX_NAMED = 20


class BadImagesError(errors.InvalidValueError):
  """config.data.on_bad_image='fail' and the folder holds files that cannot be decoded."""


@dataclasses.dataclass(frozen=True)
class FolderListing:
  """The candidate images under a folder root (by extension), in a deterministic order."""
  root: str  # absolute
  class_names: tuple[str, ...]  # sorted top-level folder names
  files: tuple[str, ...]  # class by class, sorted paths within a class
  labels: np.ndarray  # int32, index into class_names, one per file
  ignored: dict[str, int]  # files that are not images, counted by extension ('' = none)
  hidden: int  # hidden files and folders (names starting with '.') passed over

  def relative(self, path: str) -> str:
    """`path` (one of `files`) relative to the root, as reports name it."""
    return path[len(self.root) + 1:]

  def fingerprint(self) -> str:
    """A hash of every candidate's path, size and modification time: cheap, no reading."""
    digest = hashlib.sha256()
    for path in self.files:
      stat = os.stat(path)
      digest.update(f'{self.relative(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n'.encode(
          'utf-8', 'surrogateescape'))
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class FolderScan:
  """The usable images of a folder and what was left out, with the reasons."""
  class_names: tuple[str, ...]
  files: tuple[str, ...]  # decodable images only, class by class, sorted within a class
  labels: np.ndarray  # int32, one per file
  skipped: tuple[tuple[str, str], ...]  # (path relative to the root, why it failed to decode)
  ignored: dict[str, int]  # non-image files by extension
  hidden: int  # hidden files and folders passed over
  from_cache: bool  # the verdicts came from the scan cache; nothing was decoded
  seconds: float  # wall time of the listing and scan

  @property
  def class_counts(self) -> tuple[int, ...]:
    return tuple(int(n) for n in np.bincount(self.labels, minlength=len(self.class_names)))

  def summary(self) -> dict:
    """The scan as the workdir's data_report.json records it."""
    return {
        'usable_images': len(self.files),
        'skipped': [{'file': path, 'reason': reason} for path, reason in self.skipped],
        'ignored_non_images': dict(sorted(self.ignored.items())),
        'ignored_hidden': self.hidden,
        'from_cache': self.from_cache,
        'seconds': round(self.seconds, 2),
    }


def list_folder(root: str) -> FolderListing:
  """Lists `root/<class>/**/<image>` by extension (any case); hidden files are passed over.

  Files in nested sub-folders belong to the top-level class folder. Nothing is decoded.

  Raises:
    FileNotFoundError: `root` is not a directory.
    ValueError: `root` has no class folders.
  """
  if not os.path.isdir(root):
    raise errors.NotFoundError(
        f'config.data.path={root!r} is not a directory. Point it at a folder holding one '
        'sub-folder of images per class, e.g. --config.data.path=/data/flowers.')
  root = os.path.abspath(root)
  entries = list(os.scandir(root))
  class_names = sorted(entry.name for entry in entries
                       if entry.is_dir() and not entry.name.startswith('.'))
  if not class_names:
    raise errors.InvalidValueError(f'config.data.path={root!r} has no class sub-folders; expected '
                                   'root/<class>/<image>.')
  loose = sorted(entry.name for entry in entries
                 if not entry.is_dir() and not entry.name.startswith('.'))
  if loose:
    logging.warning('%d files directly under %s belong to no class folder and are left out '
                    '(%s); move them into a class folder to train on them.', len(loose),
                    root, ', '.join(loose[:5]) + (', ...' if len(loose) > 5 else ''))
  files, labels = [], []
  ignored = collections.Counter()
  hidden = sum(entry.name.startswith('.') for entry in entries)
  for label, name in enumerate(class_names):
    found, not_images, hidden_here = walk_images(os.path.join(root, name))
    ignored.update(not_images)
    hidden += hidden_here
    files += found
    labels += [label] * len(found)
  return FolderListing(root, tuple(class_names), tuple(files), np.asarray(labels, np.int32),
                       dict(ignored), hidden)


def walk_images(directory: str) -> tuple[list[str], collections.Counter, int]:
  """Image files under `directory` at any depth, by extension (any case), sorted; plus the
  non-image files passed over, counted by extension, and the number of hidden entries."""
  images, not_images, hidden = [], collections.Counter(), 0
  for parent, subdirs, names in os.walk(directory):
    hidden += sum(n.startswith('.') for n in subdirs + names)
    subdirs[:] = [d for d in subdirs if not d.startswith('.')]
    for file_name in names:
      if file_name.startswith('.'):
        continue
      extension = os.path.splitext(file_name)[1].lower()
      if extension in IMAGE_EXTENSIONS:
        images.append(os.path.join(parent, file_name))
      else:
        not_images[extension] += 1
  return sorted(images), not_images, hidden


def scan_folder(root: str, *, on_bad_image: str = 'skip',
                cache_path: str | None = None) -> FolderScan:
  """Lists `root` and decodes every candidate image once to find the ones training can read.

  Args:
    root: the folder, `root/<class>/**/<image>`.
    on_bad_image: 'skip' leaves undecodable files out (they are in the result's `skipped`);
      'fail' raises BadImagesError naming them.
    cache_path: a JSON file keeping the verdicts under the listing's fingerprint (the run's
      workdir holds it); an unchanged folder is then not decoded again. None = always decode.

  Raises:
    BadImagesError: on_bad_image='fail' and some files cannot be decoded.
    ValueError: class folders without any usable image (named), or no class folders.
    FileNotFoundError: `root` is not a directory.
  """
  if on_bad_image not in ('skip', 'fail'):
    raise errors.InvalidValueError(
        f"on_bad_image={on_bad_image!r} is not valid; use 'skip' or 'fail'.")
  started = time.time()
  listing = list_folder(root)
  fingerprint = listing.fingerprint()
  cached = _read_cache(cache_path, listing.root, fingerprint)
  if cached is not None:
    failures = cached
    logging.info('Folder scan of %s: unchanged since the cached scan in %s; not decoding.',
                 root, cache_path)
  else:
    failures = _undecodable(listing)
    if cache_path:
      files.write_json(cache_path, {
          'version': _SCAN_VERSION, 'root': listing.root, 'fingerprint': fingerprint,
          'num_files': len(listing.files), 'skipped': failures})
  relative = [listing.relative(path) for path in listing.files]
  keep = np.array([path not in failures for path in relative], bool)
  scan = FolderScan(
      class_names=listing.class_names,
      files=tuple(np.asarray(listing.files, object)[keep]),
      labels=listing.labels[keep],
      skipped=tuple((path, failures[path]) for path in relative if path in failures),
      ignored=listing.ignored, hidden=listing.hidden, from_cache=cached is not None,
      seconds=time.time() - started)
  _check(scan, listing, on_bad_image=on_bad_image, cache_path=cache_path)
  logging.info('Folder scan of %s: %d usable images in %d classes, %d undecodable, %d '
               'non-image and %d hidden files ignored (%.1f s).', root, len(scan.files),
               len(scan.class_names), len(scan.skipped), sum(scan.ignored.values()),
               scan.hidden, scan.seconds)
  return scan


def _check(scan: FolderScan, listing: FolderListing, *, on_bad_image: str,
           cache_path: str | None) -> None:
  """Applies the bad-image policy, then refuses classes left without images."""
  where = f' (all of them are in {cache_path})' if cache_path else ''
  if scan.skipped:
    named = [f'{path} ({reason})' for path, reason in scan.skipped[:_MAX_NAMED]]
    more = len(scan.skipped) - _MAX_NAMED
    if more > 0:
      named.append(f'... and {more} more{where}')
    if on_bad_image == 'fail':
      raise BadImagesError(
          f'{len(scan.skipped)} files under {listing.root} cannot be decoded and '
          f"on_bad_image='fail': {'; '.join(named)}. Remove or repair them, or leave them out "
          "with --config.data.on_bad_image=skip.")
    logging.warning('Skipping %d files under %s that cannot be decoded:\n  %s',
                    len(scan.skipped), listing.root, '\n  '.join(named))
  listed = np.bincount(listing.labels, minlength=len(listing.class_names))
  empty = [f'{name} ({listed[label]} undecodable image files)' if listed[label]
           else f'{name} (no image files)'
           for label, (name, count) in enumerate(zip(scan.class_names, scan.class_counts))
           if not count]
  if empty:
    raise errors.InvalidValueError(
        f'Class folders without any usable image under {listing.root}: '
        f'{", ".join(empty)}. Add images to them or remove those folders.')


def _read_cache(cache_path: str | None, root: str, fingerprint: str) -> dict | None:
  """The cached {relative path: reason} of undecodable files, if it describes this listing."""
  if not cache_path or not tf.io.gfile.exists(cache_path):
    return None
  with tf.io.gfile.GFile(cache_path) as f:
    cached = json.load(f)
  if (cached.get('version'), cached.get('root'), cached.get('fingerprint')) != (
      _SCAN_VERSION, root, fingerprint):
    logging.info('Folder %s changed since the cached scan in %s: scanning again.', root,
                 cache_path)
    return None
  return cached['skipped']


def _undecodable(listing: FolderListing) -> dict[str, str]:
  """{path relative to the root: reason} of every file `image_ops.decode_image` rejects.

  All files are decoded in a parallel tf.data map that drops failures (`ignore_errors`) and
  yields the index of each file that decoded; the few that did not are then decoded again
  one by one to capture TensorFlow's reason. Per-file Python (a thread pool, or tf.py_function)
  measured twice as slow on the 50,000 CIFAR-10 JPEGs.
  """
  # Paths as bytes: a file name that is not valid UTF-8 must not stop the scan.
  paths = [os.fsencode(path) for path in listing.files]
  decoded = tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string)).enumerate()
  decoded = decoded.map(
      lambda index, path: (index, tf.shape(image_ops.decode_image(tf.io.read_file(path)))),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=False).ignore_errors()
  ok = np.zeros(len(paths), bool)
  for indices, _ in decoded.batch(4096):
    ok[indices.numpy()] = True
  failures = {}
  # TF logs every failing decode a second time ('Local rendezvous is aborting'); the reason is
  # reported below, once.
  with tf_noise.filtered(tf_noise.expected_failure_dropper()):
    reasons = {index: _decode_error(listing.files[index]) for index in np.flatnonzero(~ok)}
  for index, reason in reasons.items():
    if reason is None:
      logging.warning('%s failed to decode in the parallel scan but decoded on a second try '
                      '(a transient read error?); keeping it.', listing.files[index])
    else:
      failures[listing.relative(listing.files[index])] = reason
  return failures


def _decode_error(path: str) -> str | None:
  """Why `image_ops.decode_image` cannot decode the file at `path`, or None if it can."""
  try:
    image_ops.decode_image(tf.io.read_file(os.fsencode(path)))
  except tf.errors.OpError as error:
    # Keep TensorFlow's message, without the op and device decoration around it (nor a
    # failed assertion's preamble).
    message = re.sub(r'\{\{function_node [^}]*\}\}|\[Op:\w+\].*$', '', error.message)
    message = re.sub(r"^Expected '.*' to be true\. Summarized data: b'(.*)'$", r'\1',
                     message.strip())
    return message.strip() or type(error).__name__
  return None
