"""Exact and near duplicates as groups of image indices.

Exact: the same file bytes, or the same decoded pixels (descriptors.py hashes both).
Near: a pair of images whose pooled backbone features, or whose thumbnails (allowing a
crop: descriptors.aligned_similarity), reach a calibrated cosine similarity
(config.audit.near_duplicate_similarity and near_duplicate_pixel_similarity, measured by
auditing/thresholds.py); candidates are each image's nearest neighbours by either
(search.py). Exact groups are the connected components of equal hashes (union-find), so
three copies of one file form one group however the pairs were found. Near groups are
complete-linkage clusters of the near pairs: every two members of a group are a near pair
themselves, so images that only resemble each other through a chain of intermediate
neighbours (textures, scans, product shots on white) do not merge into one large group.
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


def same_bytes(descriptors: Descriptors, group: list[int]) -> bool:
  """Whether every image of `group` is the same file content (else some are only the same
  pixels: a picture saved again, with other metadata or compression)."""
  return bool(descriptors.byte_hashes[group[0]]) and len(
      {int(descriptors.byte_hashes[index]) for index in group}) == 1


def candidate_pairs(*neighbour_indices: np.ndarray) -> np.ndarray:
  """int64 [M, 2]: each pair (i, j), i < j, where one is among the other's nearest
  neighbours in any of `neighbour_indices` (int [N, k] each), once, sorted."""
  pairs = []
  for indices in neighbour_indices:
    rows = np.repeat(np.arange(len(indices)), indices.shape[1])
    columns = indices.reshape(-1)
    pairs.append(np.stack([np.minimum(rows, columns), np.maximum(rows, columns)], axis=1))
  if not pairs:
    return np.zeros([0, 2], np.int64)
  every = np.concatenate(pairs).astype(np.int64)
  return np.unique(every[every[:, 0] != every[:, 1]], axis=0)


def near_pairs(candidates: np.ndarray, similarities: dict[str, tuple[np.ndarray, float]],
               exact: list[list[int]]) -> dict[tuple[int, int], dict]:
  """Pairs of near duplicates that are not already exact duplicates of each other.

  Args:
    candidates: int [M, 2], the pairs to judge (`candidate_pairs`).
    similarities: {signal name: (float [M] similarity of each candidate, threshold)}, e.g.
      'backbone' and 'pixels'.
    exact: the exact groups (pairs inside one are left out).

  Returns:
    {(i, j) with i < j: {signal: similarity, ...}} for the candidates at or above the
    threshold of at least one signal, with every signal's similarity.
  """
  exact_of = {}
  for number, group in enumerate(exact):
    for index in group:
      exact_of[index] = number
  near = np.zeros(len(candidates), bool)
  for values, threshold in similarities.values():
    near |= values >= threshold
  pairs = {}
  for row in np.flatnonzero(near):
    first, second = int(candidates[row, 0]), int(candidates[row, 1])
    if first in exact_of and exact_of.get(second) == exact_of[first]:
      continue
    pairs[(first, second)] = {signal: round(float(values[row]), 4)
                              for signal, (values, _) in similarities.items()}
  return pairs


def near_groups(pairs: dict[tuple[int, int], dict],
                thresholds: dict[str, float]) -> list[list[int]]:
  """Groups of near duplicates in which every two members are a near pair (complete linkage).

  Agglomerative clustering on the sparse graph of near pairs with complete linkage's
  condition at the thresholds (as scipy.cluster.hierarchy's 'complete' method cut there: the
  farthest two members of a group are still near): pairs are taken from the strongest down
  and two groups merge only when every pair across them is a near pair. So a group means
  "these images are copies of each other", not "these images are linked by a chain of
  resemblances". A pair's strength is its largest margin over a signal's threshold, as a
  fraction of the way from the threshold to 1 (signals differ in scale); ties go by index.

  Args:
    pairs: {(i, j) with i < j: {signal: similarity}}, as near_pairs returns.
    thresholds: {signal: the similarity at which a pair is near}, e.g. 'backbone', 'pixels'.

  Returns:
    The groups of two or more images, each sorted, ordered by their smallest member.
  """
  def strength(pair):
    return max((value - thresholds[signal]) / max(1e-9, 1 - thresholds[signal])
               for signal, value in pairs[pair].items())

  group_of, members = {}, {}
  for first, second in sorted(pairs, key=lambda pair: (-strength(pair), pair)):
    a, b = group_of.get(first, first), group_of.get(second, second)
    if a == b:
      continue
    left, right = members.get(a, [a]), members.get(b, [b])
    if all((min(i, j), max(i, j)) in pairs for i in left for j in right):
      merged = min(a, b)
      members[merged] = left + right
      members.pop(max(a, b), None)
      for index in members[merged]:
        group_of[index] = merged
  return sorted((sorted(group) for group in members.values()), key=lambda group: group[0])
