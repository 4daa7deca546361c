"""Exclusion lists: image files a run leaves out of a folder without touching the folder.

One path a line, relative to the folder root (or absolute); a line starting with '#' is a
comment, so a writer can say why each file is listed (`tftransfer-audit --write_exclusions`
puts the reason above each path). `config.data.exclude_file` names such a list; the folder
source drops the files before splitting, and data_report.json records what was dropped.
"""

import dataclasses
import os

from absl import logging
import numpy as np
import tensorflow as tf

from tftransfer import errors, files

# How many excluded paths data_report.json names (it counts all of them).
_MAX_NAMED = 100


@dataclasses.dataclass(frozen=True)
class Exclusions:
  """What an exclusion list removed from a folder's usable images."""
  list_file: str  # absolute path of the list
  excluded: tuple[str, ...]  # paths relative to the root that were left out
  not_found: tuple[str, ...]  # listed paths that are not usable images of the folder

  def summary(self) -> dict:
    """The exclusions as data_report.json records them."""
    return {'file': self.list_file, 'num_excluded': len(self.excluded),
            'excluded': list(self.excluded[:_MAX_NAMED]),
            'num_not_found': len(self.not_found),
            'not_found': list(self.not_found[:_MAX_NAMED])}


def read_list(list_file: str, root: str) -> list[str]:
  """The listed paths, made absolute against `root` (comments and blank lines dropped).

  Raises:
    errors.NotFoundError: `list_file` does not exist.
  """
  if not tf.io.gfile.exists(list_file):
    raise errors.NotFoundError(
        f'config.data.exclude_file={list_file!r} does not exist. Write one with '
        '`tftransfer-audit --write_exclusions=FILE`, or leave the field empty.')
  with tf.io.gfile.GFile(list_file, 'rb') as f:
    lines = f.read().decode('utf-8', 'surrogateescape').splitlines()
  paths = [line.rstrip('\r') for line in lines]
  return [os.path.normpath(os.path.join(root, path)) for path in paths
          if path.strip() and not path.lstrip().startswith('#')]


def apply(list_file: str, root: str, paths, labels: np.ndarray):
  """Drops the listed files from a folder's usable images.

  Args:
    list_file: the exclusion list.
    root: the folder root the list's relative paths start from (absolute).
    paths: the usable image paths (absolute), one per example.
    labels: int32 [N], their labels.

  Returns:
    (kept paths as a tuple, their int32 labels [M], Exclusions).

  Raises:
    errors.NotFoundError: `list_file` does not exist.
  """
  listed = read_list(list_file, root)
  wanted = set(listed)
  keep = np.array([os.path.normpath(path) not in wanted for path in paths], bool)
  present = {os.path.normpath(path) for path in paths}
  relative = lambda path: os.path.relpath(path, root)
  excluded = tuple(relative(path) for path, kept in zip(paths, keep) if not kept)
  not_found = tuple(relative(path) for path in dict.fromkeys(listed) if path not in present)
  logging.info('Leaving out %d images listed in %s (config.data.exclude_file)%s.',
               len(excluded), list_file,
               f'; {len(not_found)} listed paths are not usable images of {root}'
               if not_found else '')
  return (tuple(np.asarray(paths, object)[keep]), labels[keep],
          Exclusions(os.path.abspath(list_file), excluded, not_found))


def write_list(list_file: str, root: str, entries: list[tuple[str, str]], *,
               header: str) -> None:
  """Writes an exclusion list atomically.

  Args:
    list_file: where to write it.
    root: the folder root; paths under it are written relative to it.
    entries: (absolute path, why it is listed), in the order to write.
    header: the first comment line(s), e.g. what wrote the list.
  """
  lines = [f'# {line}' for line in header.splitlines()]
  for path, reason in entries:
    inside = os.path.normpath(path).startswith(os.path.normpath(root) + os.sep)
    lines += [f'# {reason}', os.path.relpath(path, root) if inside else path]
  files.write_text(list_file, '\n'.join(lines) + '\n')
