"""Image folders: `root/<class>/**/<image>` listed into sorted class names, files and labels."""

import dataclasses
import os

import numpy as np

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.gif', '.bmp', '.webp')


@dataclasses.dataclass(frozen=True)
class FolderListing:
  """The images found under a folder root, in a deterministic order."""
  class_names: tuple[str, ...]
  files: tuple[str, ...]
  labels: np.ndarray  # int32, index into class_names, one per file


def list_folder(root: str) -> FolderListing:
  """Lists `root/<class>/**/<image>`; classes sorted, hidden files and non-images ignored.

  Raises:
    FileNotFoundError: `root` is not a directory.
    ValueError: no class folders, or class folders without any image.
  """
  if not os.path.isdir(root):
    raise FileNotFoundError(
        f'config.data.path={root!r} is not a directory. Point it at a folder holding one '
        'sub-folder of images per class, e.g. --config.data.path=/data/flowers.')
  class_names = sorted(entry.name for entry in os.scandir(root)
                       if entry.is_dir() and not entry.name.startswith('.'))
  if not class_names:
    raise ValueError(f'config.data.path={root!r} has no class sub-folders; expected '
                     'root/<class>/<image>.')
  files, labels, empty = [], [], []
  for label, name in enumerate(class_names):
    found = sorted(images_under(os.path.join(root, name)))
    if not found:
      empty.append(name)
    files += found
    labels += [label] * len(found)
  if empty:
    raise ValueError(f'Class folders without any image under {root!r}: {", ".join(empty)}. '
                     'Add images or remove those folders.')
  return FolderListing(tuple(class_names), tuple(files), np.asarray(labels, np.int32))


def images_under(directory: str):
  """Yields the image files below `directory`, skipping hidden files and folders."""
  for parent, subdirs, names in os.walk(directory):
    subdirs[:] = [d for d in subdirs if not d.startswith('.')]
    for name in names:
      if not name.startswith('.') and name.lower().endswith(IMAGE_EXTENSIONS):
        yield os.path.join(parent, name)
