"""Nearest-neighbour search by cosine similarity: exact up to a size, approximate above.

Exact: each block of rows is multiplied with every embedding at once
(`tf.linalg.matmul`, all cores) and only its `k` best columns are kept (`tf.math.top_k`),
so memory stays at block x N similarities while time grows as N^2 x D (measured here by
scripts/measure_search.py: 0.6 s for 10,000 embeddings of 256 features, 12 s for 50,000,
182 s for 200,000; about 76 minutes for 1,000,000 by N^2).

Approximate: a FAISS HNSW graph (hierarchical navigable small world, Malkov & Yashunin
2018; `faiss.IndexHNSWFlat` with inner products, which are cosines on unit-norm rows),
whose build and search grow as N log N and whose memory is the embeddings plus
`HNSW_LINKS` x 2 links per row (no N x N matrix): 71 s for 200,000, 761 s for 1,000,000.
It can miss a neighbour the exact search
finds; the near duplicates the audit looks for are each other's nearest neighbours by a
wide margin and are found: `scripts/measure_search.py` gives its recall of the exact
search's neighbours and of the audit's near-duplicate pairs (docs/audit_and_report.md).
The graph is built on all cores, in an order that varies from run to run, so neighbours
beyond the exact size can differ slightly between two audits of the same data.

`method` decides which of the two a search uses (config.audit.exact_search_max_images);
the audit's callers take neighbours from `nearest_neighbours`.
"""

import numpy as np
import tensorflow as tf

_BLOCK = 1024  # rows per matrix product: 1024 x 50,000 float32 similarities are 200 MB

# HNSW settings (FAISS's parameter names), chosen by scripts/measure_search.py: links per
# node, candidates kept while building and while searching (at least 2k are searched).
HNSW_LINKS = 32
HNSW_BUILD_CANDIDATES = 64
HNSW_SEARCH_CANDIDATES = 128

EXACT, APPROXIMATE = 'exact', 'approximate'


def normalise(vectors: np.ndarray) -> np.ndarray:
  """float32 [N, D] rows scaled to unit L2 norm (all-zero rows stay zero)."""
  vectors = np.asarray(vectors, np.float32)
  norms = np.linalg.norm(vectors, axis=1, keepdims=True)
  return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def method(count: int, exact_max: int | None) -> str:
  """EXACT for `count` rows up to `exact_max` (None: always), else APPROXIMATE."""
  return EXACT if exact_max is None or count <= exact_max else APPROXIMATE


def nearest_neighbours(embeddings: np.ndarray, k: int, *,
                       exact_max: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """The `k` most cosine-similar other rows of every row.

  Args:
    embeddings: float32 [N, D], unit-norm rows (see `normalise`).
    k: neighbours per row (capped at N - 1).
    exact_max: rows up to which the search is exact (None: always exact); above it, an
      approximate FAISS HNSW search (see the module docstring).

  Returns:
    (int64 indices [N, k], float32 similarities [N, k]), best first; a row is never its own
    neighbour.
  """
  count = len(embeddings)
  k = min(k, count - 1)
  if k <= 0:
    return np.zeros([count, 0], np.int64), np.zeros([count, 0], np.float32)
  if method(count, exact_max) == APPROXIMATE:
    return _approximate(np.ascontiguousarray(embeddings, np.float32), k)
  every = tf.constant(embeddings, tf.float32)
  indices, similarities = [], []
  for start in range(0, count, _BLOCK):
    block = every[start:start + _BLOCK]
    scores = tf.linalg.matmul(block, every, transpose_b=True)
    rows = tf.range(tf.shape(block)[0])
    # The row itself scores -2, below any cosine, so it is never its own neighbour.
    scores = tf.tensor_scatter_nd_update(
        scores, tf.stack([rows, rows + start], axis=1), tf.fill(tf.shape(rows), -2.0))
    best = tf.math.top_k(scores, k=k)
    indices.append(best.indices.numpy().astype(np.int64))
    similarities.append(best.values.numpy())
  return np.concatenate(indices), np.concatenate(similarities)


def _approximate(embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
  import faiss  # pylint: disable=import-outside-toplevel (only above the exact size)
  index = faiss.IndexHNSWFlat(embeddings.shape[1], HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
  index.hnsw.efConstruction = HNSW_BUILD_CANDIDATES
  index.add(embeddings)
  index.hnsw.efSearch = max(HNSW_SEARCH_CANDIDATES, 2 * (k + 1))
  similarities, indices = index.search(embeddings, k + 1)
  return without_self(indices.astype(np.int64), similarities, k)


def without_self(indices: np.ndarray, similarities: np.ndarray,
                 k: int) -> tuple[np.ndarray, np.ndarray]:
  """Each row's `k` best neighbours other than itself, from a search that returned k + 1
  (int [N, k + 1] indices, float [N, k + 1] similarities, best first; -1 where a search
  found fewer): the row's own index, or else its last result, is dropped; a result the
  search did not find is the row itself at similarity -1 (candidate pairs skip it)."""
  rows = np.arange(len(indices))[:, None]
  drop = indices == rows
  drop[~drop.any(axis=1), -1] = True
  drop &= np.cumsum(drop, axis=1) == 1  # one per row: a row found twice keeps one copy
  kept_indices = indices[~drop].reshape(len(indices), k)
  kept_similarities = similarities[~drop].reshape(len(indices), k).astype(np.float32)
  missing = kept_indices < 0
  kept_indices[missing] = np.broadcast_to(rows, kept_indices.shape)[missing]
  kept_similarities[missing] = -1.0
  return kept_indices, kept_similarities


def pair_similarity(embeddings: np.ndarray, pairs: np.ndarray) -> np.ndarray:
  """float32 [M]: the cosine similarity of each pair (i, j) of `pairs` (int [M, 2]) of
  unit-norm `embeddings` [N, D]."""
  similarities = np.empty(len(pairs), np.float32)
  for start in range(0, len(pairs), _BLOCK * 64):
    first, second = pairs[start:start + _BLOCK * 64].T
    similarities[start:start + _BLOCK * 64] = np.einsum('md,md->m', embeddings[first],
                                                        embeddings[second])
  return similarities
