"""Exact and near duplicates as groups of image indices.

Exact: the same file bytes, or the same decoded pixels (descriptors.py hashes both).
Near: a pair of images whose pooled backbone features, or whose thumbnail descriptors, are
at least a calibrated cosine similarity apart (config.audit.near_duplicate_similarity and
near_duplicate_pixel_similarity); candidates are each image's nearest neighbours
(search.py). Groups are the connected components of the pairs (union-find), so three
copies of one photo form one group however the pairs were found.
"""

import numpy as np

from tftransfer.auditing.descriptors import Descriptors


def _components(count: int, pairs) -> list[list[int]]:
  """Connected components of size >= 2 of the graph on `count` nodes with edges `pairs`,
  each sorted, ordered by their smallest member."""
  parent = np.arange(count)

  def root(node):
    while parent[node] != node:
      parent[node] = parent[parent[node]]
      node = parent[node]
    return node

  for first, second in pairs:
    a, b = root(first), root(second)
    if a != b:
      parent[max(a, b)] = min(a, b)
  members = {}
  for node in {int(node) for pair in pairs for node in pair}:
    members.setdefault(root(node), []).append(node)
  return sorted((sorted(group) for group in members.values() if len(group) > 1),
                key=lambda group: group[0])


def _equal_pairs(keys: np.ndarray, *, ignore=None) -> list[tuple[int, int]]:
  """(first, other) index pairs linking every run of equal keys (`ignore` = no key)."""
  order = np.argsort(keys, kind='stable')
  ordered = keys[order]
  same = ordered[1:] == ordered[:-1]
  if ignore is not None:
    same &= ordered[1:] != ignore
  return [(int(order[i]), int(order[i + 1])) for i in np.flatnonzero(same)]


def exact_groups(descriptors: Descriptors) -> list[list[int]]:
  """Groups of images with the same bytes or the same decoded pixels."""
  pairs = (_equal_pairs(descriptors.byte_hashes, ignore=0)
           + _equal_pairs(descriptors.pixel_hashes))
  return _components(len(descriptors.pixel_hashes), pairs)


def near_pairs(neighbour_lists, exact: list[list[int]]) -> dict[tuple[int, int], dict]:
  """Pairs of near duplicates that are not already exact duplicates of each other.

  Args:
    neighbour_lists: {signal name: (indices [N, k], similarities [N, k], threshold)}, e.g.
      'backbone' and 'pixels'.
    exact: the exact groups (pairs inside one are left out).

  Returns:
    {(i, j) with i < j: {signal: similarity, ...}} for every signal at or above its
    threshold.
  """
  exact_of = {}
  for number, group in enumerate(exact):
    for index in group:
      exact_of[index] = number
  pairs = {}
  for signal, (indices, similarities, threshold) in neighbour_lists.items():
    rows, columns = np.nonzero(similarities >= threshold)
    for row, column in zip(rows, columns):
      other = int(indices[row, column])
      pair = (min(int(row), other), max(int(row), other))
      if pair[0] in exact_of and exact_of.get(pair[1]) == exact_of[pair[0]]:
        continue
      pairs.setdefault(pair, {})[signal] = round(float(similarities[row, column]), 4)
  return pairs


def near_groups(count: int, pairs: dict[tuple[int, int], dict]) -> list[list[int]]:
  """Groups of near duplicates: the connected components of `pairs`."""
  return _components(count, list(pairs))
