"""Image folders: listing `root/<class>/**/<image>` and scanning it for unusable files.

A folder of real images holds files that training cannot read: zero-byte files, text saved as
`.jpg`, truncated downloads, variants TensorFlow would decode wrongly. `scan_folder` decodes
every image once, in parallel, with the op training and serving use
(`image_ops.decode_image`, under `data.max_image_pixels`), so a file it accepts cannot stop a
run in epoch 3, and it reports the others with the reason TensorFlow gave (scan.py decodes
and caches the verdicts, under a fingerprint of the listing: paths, sizes, modification
times, link targets), so a resumed run does not decode an unchanged folder again.

What decodes is what `image_ops.decode_image` turns into RGB: JPEG (grayscale, CMYK; EXIF
orientation applied), PNG (palette, RGBA, 16-bit, interlaced), GIF (first frame), BMP (palette
ones too), WebP. A truncated JPEG fails it (TensorFlow does not try to recover truncated JPEGs
by default), so the scan reports it. A JPEG whose compressed data is damaged but complete still
decodes (libjpeg prints 'Corrupt JPEG data' and fills in the damage); it is accepted, as
training would read it.

Class names are the class folders' names as text (files.text_name: bytes that are not UTF-8
become \\xNN escapes), sorted; linked folders are followed as walk.py describes.
"""

import collections
import dataclasses
import hashlib
import os
import time

from absl import logging
import numpy as np

from tftransfer import errors, files
from tftransfer.data import manifests, scan, walk

IMAGE_EXTENSIONS = walk.IMAGE_EXTENSIONS
# How many undecodable files an error message names; the scan cache and the report list all.
_MAX_NAMED = 20


class BadImagesError(errors.InvalidValueError):
  """config.data.on_bad_image='fail' and the folder holds files that cannot be decoded."""


@dataclasses.dataclass(frozen=True)
class FolderListing:
  """The candidate images under a folder root (by extension), in a deterministic order."""
  root: str  # absolute
  class_names: tuple[str, ...]  # sorted class folder names, as text (files.text_name)
  files: tuple[str, ...]  # class by class, sorted paths within a class
  labels: np.ndarray  # int32, index into class_names, one per file
  ignored: dict[str, int]  # files that are not images, counted by extension ('' = none)
  hidden: int  # hidden files and folders (names starting with '.') passed over
  links: tuple[walk.Link, ...] = ()  # symbolic links followed or skipped

  def relative(self, path: str) -> str:
    """`path` (under the root) relative to the root, as reports name it."""
    return path[len(self.root) + 1:]

  def fingerprint(self) -> str:
    """A hash of every candidate's path, size and modification time, and of where every link
    leads: cheap, no reading."""
    digest = hashlib.sha256()
    for path in self.files:
      stat = os.stat(path)
      digest.update(f'{self.relative(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n'.encode(
          'utf-8', 'surrogateescape'))
    for link in self.links:
      digest.update(f'{link.path}\0{link.target}\0{link.reason}\n'.encode(
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
  links: dict = dataclasses.field(default_factory=dict)  # walk.links_summary()
  max_image_pixels: int = 0  # the pixel limit the scan applied (0 = none)
  largest_image_pixels: int = 0  # frames x height x width of the largest usable image

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
        'links': self.links,
        'max_image_pixels': self.max_image_pixels,
        'largest_image_pixels': self.largest_image_pixels,
        'from_cache': self.from_cache,
        'seconds': round(self.seconds, 2),
    }


def not_a_folder(root: str, *, setting: str = 'config.data.path',
                 table_fix: str = 'add --config.data.source=csv') -> errors.NotFoundError:
  """The error for a `root` that should be a folder of class folders and is not.

  Args:
    root: the path as the user gave it.
    setting: the flag or field that named `root`.
    table_fix: what the error suggests when `root` names a manifest file (by its extension).

  Returns:
    The NotFoundError to raise; its message names the setting, the value and the fix.
  """
  table = (f' {os.path.basename(root)!r} reads as a manifest (a table of images and labels): '
           f'{table_fix}.' if root.lower().endswith(manifests.EXTENSIONS) else '')
  return errors.NotFoundError(
      f'{setting}={root!r} is not a directory. Point it at a folder holding one sub-folder '
      f'of images per class, e.g. --{setting.lstrip("-")}=/data/flowers.{table}')


def list_folder(root: str, *, setting: str = 'config.data.path', min_classes: int = 2,
                table_fix: str = 'add --config.data.source=csv') -> FolderListing:
  """Lists `root/<class>/**/<image>` by extension (any case); hidden files are passed over.

  Files in nested sub-folders, linked ones included (walk.py), belong to the top-level class
  folder. Nothing is decoded.

  Args:
    root: the folder.
    setting: the flag or field that named `root`, as errors name it.
    min_classes: 2 for a folder to train on; 1 for held-out images judged by a model (they
      may lack some of its classes).
    table_fix: what the error suggests when `root` is a manifest file instead of a folder.

  Raises:
    NotFoundError: `root` is not a directory (not_a_folder).
    InvalidValueError: `root` has fewer than `min_classes` class folders, two
      folders whose names are the same text, or a class folder that links to another one or
      to a folder containing the root.
  """
  if not os.path.isdir(root):
    raise not_a_folder(root, setting=setting, table_fix=table_fix)
  root = os.path.abspath(root)
  entries = list(os.scandir(root))
  folders = {}
  for entry in entries:
    if entry.is_dir() and not entry.name.startswith('.'):
      name = files.text_name(entry.name)
      if name in folders:
        raise errors.InvalidValueError(
            f'Class folders {folders[name]!r} and {entry.name!r} under {root} both read as '
            f'class {name!r}: they spell it differently, {ascii(folders[name])} and '
            f'{ascii(entry.name)} (one in Unicode NFC as Linux writes it, one in NFD as macOS '
            'does, for instance); merge them into one folder.')
      folders[name] = entry.name
  class_names = sorted(folders)
  if len(class_names) < min_classes:
    # One class trains a model that answers it for everything (validation accuracy 1.0).
    need = 'a classifier needs at least two' if min_classes > 1 else 'it needs one'
    raise errors.InvalidValueError(
        f'{setting}={root!r} has {len(class_names)} class folder(s) '
        f'({", ".join(map(repr, class_names)) or "none"}); {need}. '
        'Lay the images out as root/<class>/<image>, one folder per class.')
  loose = sorted(entry.name for entry in entries
                 if not entry.is_dir() and not entry.name.startswith('.'))
  if loose:
    logging.warning('%d files directly under %s belong to no class folder and are left out '
                    '(%s); move them into a class folder to train on them.', len(loose),
                    root, ', '.join(loose[:5]) + (', ...' if len(loose) > 5 else ''))
  tops = [os.path.join(root, folders[name]) for name in class_names]
  trees = walk.Walker(root).walk(tops)
  paths, labels, links = [], [], []
  ignored = collections.Counter()
  hidden = sum(entry.name.startswith('.') for entry in entries)
  for label, (top, tree) in enumerate(zip(tops, trees)):
    refused = [link for link in tree.links if link.path == top and link.reason]
    if refused:
      raise errors.InvalidValueError(
          f'Class folder {top} links to {refused[0].target}: {refused[0].reason}. Remove the '
          'link or point it at a folder of its own.')
    ignored.update(tree.not_images)
    hidden += tree.hidden
    paths += tree.images
    labels += [label] * len(tree.images)
    links += tree.links
  listing = FolderListing(root, tuple(class_names), tuple(paths), np.asarray(labels, np.int32),
                          dict(ignored), hidden, tuple(links))
  walk.log_links(listing.links, root)
  return listing


def scan_folder(root: str, *, max_image_pixels: int, on_bad_image: str = 'skip',
                cache_path: str | None = None, **listing) -> FolderScan:
  """Lists `root` and decodes every candidate image once to find the ones training can read.

  Args:
    root: the folder, `root/<class>/**/<image>`.
    max_image_pixels: config.data.max_image_pixels: images with more pixels are left out,
      refused from their headers before they are decoded; 0 = no limit.
    on_bad_image: 'skip' leaves unusable files out (they are in the result's `skipped`);
      'fail' raises BadImagesError naming them.
    cache_path: a JSON file keeping the verdicts under the listing's fingerprint (the run's
      workdir holds it); an unchanged folder is then not decoded again. None = always decode.
    **listing: list_folder's setting, min_classes and table_fix.

  Raises:
    BadImagesError: on_bad_image='fail' and some files cannot be used.
    InvalidValueError: class folders without any usable image (named), or what list_folder
      raises.
    NotFoundError: `root` is not a directory.
  """
  if on_bad_image not in ('skip', 'fail'):
    raise errors.InvalidValueError(
        f"on_bad_image={on_bad_image!r} is not valid; use 'skip' or 'fail'.")
  started = time.time()
  listing = list_folder(root, **listing)
  relative = [listing.relative(path) for path in listing.files]
  failures, largest, from_cache = scan.verdicts(
      listing.files, relative, root=listing.root, fingerprint=listing.fingerprint(),
      max_image_pixels=max_image_pixels, cache_path=cache_path)
  keep = np.array([path not in failures for path in relative], bool)
  scanned = FolderScan(
      class_names=listing.class_names,
      files=tuple(np.asarray(listing.files, object)[keep]),
      labels=listing.labels[keep],
      skipped=tuple((path, failures[path]) for path in relative if path in failures),
      ignored=listing.ignored, hidden=listing.hidden, from_cache=from_cache,
      seconds=time.time() - started, links=walk.links_summary(listing.links, listing.root),
      max_image_pixels=max_image_pixels, largest_image_pixels=largest)
  _check(scanned, listing, on_bad_image=on_bad_image, cache_path=cache_path)
  logging.info('Folder scan of %s: %d usable images in %d classes, %d unusable, %d '
               'non-image and %d hidden files ignored (%.1f s).', root, len(scanned.files),
               len(scanned.class_names), len(scanned.skipped), sum(scanned.ignored.values()),
               scanned.hidden, scanned.seconds)
  return scanned


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
