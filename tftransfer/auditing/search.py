"""Exact nearest-neighbour search by cosine similarity, in blocks of matrix products.

Each block of rows is multiplied with every embedding at once (`tf.linalg.matmul`, all
cores) and only its `k` best columns are kept (`tf.math.top_k`), so memory stays at
block x N similarities while time grows as N^2 x D: 50,000 images of 256 features are
2.6e11 multiply-adds, seconds on two CPU cores (the audit's log and
docs/audit_and_report.md give the measured times). Beyond a few hundred thousand images an
approximate index (FAISS, ScaNN) would be the next step; the audit's callers take neighbours
from this one function.
"""

import numpy as np
import tensorflow as tf

_BLOCK = 1024  # rows per matrix product: 1024 x 50,000 float32 similarities are 200 MB


def normalise(vectors: np.ndarray) -> np.ndarray:
  """float32 [N, D] rows scaled to unit L2 norm (all-zero rows stay zero)."""
  vectors = np.asarray(vectors, np.float32)
  norms = np.linalg.norm(vectors, axis=1, keepdims=True)
  return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def nearest_neighbours(embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
  """The `k` most cosine-similar other rows of every row.

  Args:
    embeddings: float32 [N, D], unit-norm rows (see `normalise`).
    k: neighbours per row (capped at N - 1).

  Returns:
    (int64 indices [N, k], float32 similarities [N, k]), best first; a row is never its own
    neighbour.
  """
  count = len(embeddings)
  k = min(k, count - 1)
  if k <= 0:
    return np.zeros([count, 0], np.int64), np.zeros([count, 0], np.float32)
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


def pair_similarity(embeddings: np.ndarray, pairs: np.ndarray) -> np.ndarray:
  """float32 [M]: the cosine similarity of each pair (i, j) of `pairs` (int [M, 2]) of
  unit-norm `embeddings` [N, D]."""
  similarities = np.empty(len(pairs), np.float32)
  for start in range(0, len(pairs), _BLOCK * 64):
    first, second = pairs[start:start + _BLOCK * 64].T
    similarities[start:start + _BLOCK * 64] = np.einsum('md,md->m', embeddings[first],
                                                        embeddings[second])
  return similarities
