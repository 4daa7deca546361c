"""Atomic writes: a reader sees the old file or directory, or the new one, never half of one.

    write_text, write_json   one file, through tf.io.gfile (local disks, GCS, ...): written
                             under a unique hidden name beside it, then renamed over it
    copy_local_file          the same for files a library can only write locally (HDF5)
    staged_directory         a directory (an export version, a TFRecord set) filled under a
                             hidden name beside its target and renamed to it when complete

Also here: text_name, the one form a file or folder name takes as text (class names), and
fitted_name, a name derived from a user's file name kept within the file system's limit.

A killed process leaves at worst a hidden temporary beside the target, never a target that
looks complete.
"""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from typing import Callable, Iterator
import unicodedata
import uuid

import tensorflow as tf

from tftransfer import errors


def text_name(name: str | bytes) -> str:
  """A file or folder name as text: valid UTF-8 as it is, other bytes as \\xNN escapes.

  A name that is not valid UTF-8 (cp1252's 0x93 from a Windows archive) reaches Python as
  os.fsdecode's lone surrogates ('caf\\udc93'), which JSON, labels.txt, TF Serving's outputs
  and plots cannot hold. Every class name is turned into text this one way (Python's
  'backslashreplace'): b'caf\\x93' -> 'caf\\\\x93', the same from bytes and from os.fsdecode's
  string. Valid UTF-8 is kept as text in Unicode normal form NFC (so 'cafe\u0301', as macOS
  writes it, and 'caf\u00e9' are one name).
  """
  if isinstance(name, str):
    name = name.encode('utf-8', 'surrogateescape')
  # One Unicode normal form, NFC: macOS writes 'café' decomposed (NFD), which prints the same
  # but compares unequal, so a folder copied from a Mac would be another class.
  return unicodedata.normalize('NFC', name.decode('utf-8', 'backslashreplace'))


# The longest file name, in bytes, of the file systems runs live on (ext4, XFS, Btrfs, APFS;
# NTFS counts 255 UTF-16 units, which 255 UTF-8 bytes never exceed).
NAME_MAX = 255
_HASH_HEX = 12  # hex digits of SHA-256 that keep shortened names apart


def fitted_name(stem: str, suffix: str = '', *, limit: int = NAME_MAX) -> str:
  """`stem + suffix` if it fits in `limit` bytes (UTF-8), else `stem` cut at a character
  boundary plus '~' and 12 hex digits of its SHA-256, then `suffix`: derived names (Grad-CAM
  overlays, staging directories) of a valid 250-byte file name stay valid, and two long
  stems with a common beginning stay two names.

  Args:
    stem: the part that may be shortened (str; undecodable bytes as surrogate escapes).
    suffix: kept whole, e.g. '.gradcam.png'.
    limit: bytes.
  """
  def size(text):
    return len(text.encode('utf-8', 'surrogateescape'))

  if size(stem + suffix) <= limit:
    return stem + suffix
  tag = '~' + hashlib.sha256(stem.encode('utf-8', 'surrogateescape')).hexdigest()[:_HASH_HEX]
  room, kept = limit - size(tag + suffix), ''
  for char in stem:
    if size(kept + char) > room:
      break
    kept += char
  return kept + tag + suffix


def _hidden_sibling(path: str, tag: str) -> str:
  """A unique hidden name in `path`'s directory (unique, so concurrent writers never collide),
  within NAME_MAX however long `path`'s own name is."""
  name = fitted_name(f'.{os.path.basename(path)}', f'.{tag}-{uuid.uuid4().hex}')
  return os.path.join(os.path.dirname(path), name)


def write_text(path: str, text: str) -> None:
  """Writes `text` (str) to `path` atomically, through tf.io.gfile.

  Raises:
    tf.errors.OpError: the filesystem refused the write or the rename.
  """
  temporary = _hidden_sibling(path, 'tmp')
  try:
    with tf.io.gfile.GFile(temporary, 'w') as f:
      f.write(text)
    tf.io.gfile.rename(temporary, path, overwrite=True)
  except BaseException:
    if tf.io.gfile.exists(temporary):
      tf.io.gfile.remove(temporary)
    raise


def write_json(path: str, value) -> None:
  """Writes `value` as indented, key-sorted JSON to `path` atomically."""
  write_text(path, json.dumps(value, indent=2, sort_keys=True) + '\n')


def copy_local_file(path: str, write: Callable[[str], None]) -> None:
  """Stores at `path` (any tf.io.gfile filesystem) a file that `write(local_path)` writes
  locally, e.g. Keras' HDF5 weights; atomically, like write_text."""
  with tempfile.TemporaryDirectory() as local:
    local_path = os.path.join(local, os.path.basename(path))
    write(local_path)
    temporary = _hidden_sibling(path, 'tmp')
    try:
      tf.io.gfile.copy(local_path, temporary, overwrite=True)
      tf.io.gfile.rename(temporary, path, overwrite=True)
    except BaseException:
      if tf.io.gfile.exists(temporary):
        tf.io.gfile.remove(temporary)
      raise


@contextlib.contextmanager
def staged_directory(target: str, *, overwrite: bool = False) -> Iterator[str]:
  """Yields an empty hidden directory beside `target` to fill; when the block succeeds it is
  renamed to `target`, otherwise removed. Local filesystems only (renaming a directory is not
  atomic, or not possible, on object stores).

  Not tempfile.mkdtemp: its directories are private (0700), and this one becomes the output,
  which other users (a TF Serving running as another user) must be able to read.

  Args:
    target: the directory to create. It may exist only as an empty directory, or when
      `overwrite` is set (it is then replaced, after the new one is complete).
    overwrite: replace an existing non-empty `target`.

  Raises:
    FileExistsError: `target` exists, is not empty, and `overwrite` is False (checked before
      the block runs and again when publishing).
  """
  target = os.path.abspath(target)
  _check_free(target, overwrite)
  os.makedirs(os.path.dirname(target), exist_ok=True)
  staging = _hidden_sibling(target, 'incomplete')
  os.mkdir(staging)
  try:
    yield staging
    _check_free(target, overwrite)
    _publish(staging, target)
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def _check_free(target: str, overwrite: bool) -> None:
  if overwrite or not os.path.exists(target):
    return
  if os.path.isdir(target) and not os.listdir(target):
    return
  raise errors.AlreadyExistsError(
      f'{target} already exists and is not empty; it is never overwritten '
      'in place (choose another name, or remove it first).')


def _publish(staging: str, target: str) -> None:
  """Renames `staging` to `target`, retiring whatever `target` held (checked by the caller)."""
  if not os.path.exists(target):
    os.rename(staging, target)
    return
  if os.path.isdir(target) and not os.listdir(target):
    os.rmdir(target)  # rename needs the name free
    os.rename(staging, target)
    return
  retired = _hidden_sibling(target, 'replaced')
  os.rename(target, retired)
  os.rename(staging, target)
  shutil.rmtree(retired)
