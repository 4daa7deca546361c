"""Finding the image files under a folder, symbolic links to folders included.

A class folder is often assembled from links (`cat/more -> /elsewhere/cats`), and a class
folder may itself be a link. Every linked folder is followed, wherever it is, and each real
folder is listed once: a link to a folder already listed (a second link to it, or the real
folder beside it) or to a folder that contains it or the root (a cycle, which would list
everything again) is skipped. Real folders are walked before class folders that are links,
and those before links inside class folders, so which copy is listed does not depend on
names or on the order of the classes. Links to files are used as the files they point to; links
that point nowhere are skipped. Every link followed or skipped, and why, is recorded for the
scan report.
"""

import collections
import dataclasses
import os

from absl import logging

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.gif', '.bmp', '.webp')
# Links a log line names; the scan report lists all.
_MAX_LOGGED = 20


@dataclasses.dataclass(frozen=True)
class Link:
  """A symbolic link met on the walk (or a folder reached a second time through one)."""
  path: str  # as listed, under the walked folder
  target: str  # where it resolves to (absolute), or what it names when that does not exist
  reason: str  # why it was skipped; '' = followed


@dataclasses.dataclass
class Tree:
  """What one walk found."""
  images: list[str] = dataclasses.field(default_factory=list)  # sorted paths
  not_images: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  hidden: int = 0  # hidden files and folders (names starting with '.') passed over
  links: list[Link] = dataclasses.field(default_factory=list)


def _contains(folder: str, path: str) -> bool:
  return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class Walker:
  """Walks folders under one root, listing every real folder at most once across walks."""

  def __init__(self, root: str):
    self.root = os.path.realpath(root)
    self.listed = {}  # real path of every folder walked -> the path it was listed under

  def _skip_reason(self, path: str, real: str) -> str:
    if _contains(real, self.root) or _contains(real, os.path.realpath(os.path.dirname(path))):
      return 'it links to a folder containing it (a cycle)'
    if real in self.listed:
      return f'the same folder as {self.listed[real]}, already listed'
    return ''

  def walk(self, tops: list[str]) -> list[Tree]:
    """The images under each of `tops` at any depth, by extension (any case), following
    links: first every real folder under any top, then the tops that are links (a class
    folder defines its class more than a link inside another does), then the other links.

    A top that is a link is skipped (its tree left empty, the reason in its `links`) when it
    leads to a folder already listed or to one containing the root.
    """
    trees = [Tree() for _ in tops]
    pending = [[] for _ in tops]  # links to folders met inside each top
    linked = [os.path.islink(top) and os.path.realpath(top) != self.root for top in tops]
    for top, tree, links, is_link in zip(tops, trees, pending, linked):
      if not is_link:
        self._walk_real(top, tree, links)
    for top, tree, links, is_link in zip(tops, trees, pending, linked):
      if is_link:
        self._follow(top, tree, links)
    for tree, links in zip(trees, pending):
      while links:
        self._follow(links.pop(0), tree, links)
      tree.images.sort()
    return trees

  def _follow(self, link: str, tree: Tree, pending: list[str]) -> None:
    target = os.path.realpath(link)
    reason = self._skip_reason(link, target)
    tree.links.append(Link(link, target, reason))
    if not reason:
      self._walk_real(link, tree, pending)

  def _walk_real(self, top: str, tree: Tree, pending: list[str]) -> None:
    """Walks `top` without descending into links, which are added to `pending`."""
    for parent, subdirs, names in os.walk(top):
      self.listed[os.path.realpath(parent)] = parent
      tree.hidden += sum(name.startswith('.') for name in subdirs + names)
      kept = []
      for name in sorted(subdirs):
        path = os.path.join(parent, name)
        if name.startswith('.'):
          continue
        if os.path.islink(path):
          pending.append(path)
        elif os.path.realpath(path) in self.listed:  # reached before through a link
          tree.links.append(Link(path, os.path.realpath(path), self._skip_reason(
              path, os.path.realpath(path))))
        else:
          kept.append(name)
      subdirs[:] = kept
      for name in names:
        path = os.path.join(parent, name)
        if name.startswith('.'):
          continue
        if os.path.islink(path) and not os.path.exists(path):
          tree.links.append(Link(path, os.readlink(path), 'its target does not exist'))
          continue
        extension = os.path.splitext(name)[1].lower()
        if extension in IMAGE_EXTENSIONS:
          tree.images.append(path)
        else:
          tree.not_images[extension] += 1


def walk_images(directory: str) -> Tree:
  """The images under `directory`, walked as the root of its own listing."""
  return Walker(directory).walk([directory])[0]


def links_summary(links, root: str) -> dict:
  """The links followed and skipped (with why), paths relative to `root`, as the scan report
  lists them."""
  def relative(path):
    return os.path.relpath(path, root)
  return {'followed': [{'link': relative(link.path), 'target': link.target}
                       for link in links if not link.reason],
          'skipped': [{'link': relative(link.path), 'target': link.target,
                       'reason': link.reason} for link in links if link.reason]}


def log_links(links, root: str) -> None:
  """Logs the links followed (INFO) and skipped (WARNING) under `root`."""
  summary = links_summary(links, root)
  if summary['followed']:
    logging.info('Followed %d linked folders under %s: %s', len(summary['followed']), root,
                 ', '.join(f'{row["link"]} -> {row["target"]}'
                           for row in summary['followed'][:_MAX_LOGGED]))
  if summary['skipped']:
    logging.warning('Skipped %d links under %s:\n  %s', len(summary['skipped']), root,
                    '\n  '.join(f'{row["link"]} -> {row["target"]}: {row["reason"]}'
                                for row in summary['skipped'][:_MAX_LOGGED]))
