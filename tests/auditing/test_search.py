"""Nearest-neighbour search: the approximate index (FAISS HNSW) above the exact size finds
what the exact search finds, and neither returns a row as its own neighbour."""

import numpy as np
import pytest

from tftransfer.auditing import duplicates, search


def _clustered(count, dim, rng, copies):
  """Unit rows around 20 directions; rows [0, copies) are near copies of rows
  [copies, 2 * copies) (cosine about 0.998) and rows [2 * copies, 3 * copies) exact ones."""
  centres = rng.normal(size=(20, dim))
  rows = centres[rng.integers(0, 20, count)] + 0.6 * rng.normal(size=(count, dim))
  rows[:copies] = rows[copies:2 * copies] + 0.03 * rng.normal(size=(copies, dim))
  rows[2 * copies:3 * copies] = rows[3 * copies:4 * copies]
  return search.normalise(rows)


def test_method_is_exact_up_to_the_size_and_approximate_above():
  assert search.method(50_000, 50_000) == search.EXACT
  assert search.method(50_001, 50_000) == search.APPROXIMATE
  assert search.method(10**7, None) == search.EXACT


@pytest.mark.parametrize('dim', [64, 256])  # the thumbnails' and MobileNet-0.25's features
def test_the_approximate_search_finds_the_exact_neighbours_and_every_copy(dim):
  rng = np.random.default_rng(0)
  count, copies, k = 6000, 100, 10
  embeddings = _clustered(count, dim, rng, copies)
  exact, exact_similarity = search.nearest_neighbours(embeddings, k)
  approximate, similarity = search.nearest_neighbours(embeddings, k, exact_max=0)

  assert approximate.shape == (count, k) and similarity.dtype == np.float32
  assert not (approximate == np.arange(count)[:, None]).any()
  recall = np.mean([len(set(a) & set(e)) / k for a, e in zip(approximate, exact)])
  assert recall >= 0.95
  # Every planted near and exact copy is its original's nearest neighbour both ways.
  for first in (0, 2 * copies):
    originals = np.arange(first + copies, first + 2 * copies)
    assert (approximate[first:first + copies, 0] == originals).all()
  # Similarities are the rows' cosines, best first.
  np.testing.assert_allclose(similarity, np.einsum(
      'nd,nkd->nk', embeddings, embeddings[approximate]), atol=1e-5)
  assert (np.diff(similarity, axis=1) <= 1e-6).all()
  # The near-duplicate candidates the audit judges are the exact search's.
  pairs = {tuple(p) for p in duplicates.candidate_pairs(exact)[
      search.pair_similarity(embeddings, duplicates.candidate_pairs(exact)) >= 0.99]}
  found = {tuple(p) for p in duplicates.candidate_pairs(approximate)}
  assert len(pairs) >= 2 * copies and pairs <= found
  assert exact_similarity[:, 0].min() > -1


def test_without_self_drops_the_row_wherever_it_is_and_marks_what_was_not_found():
  indices = np.array([[0, 5, 6], [7, 1, 8], [4, 9, 3], [3, -1, -1]])
  similarities = np.array([[1, .9, .8], [1, 1, .7], [.9, .8, .7], [1, -3e38, -3e38]])
  kept, kept_similarities = search.without_self(indices, similarities, 2)
  assert kept.tolist() == [[5, 6], [7, 8], [4, 9], [3, 3]]
  assert kept_similarities.tolist() == [[np.float32(.9), np.float32(.8)], [1, np.float32(.7)],
                                        [np.float32(.9), np.float32(.8)], [-1, -1]]
  # The last row found only itself: candidate pairs never pair a row with itself.
  assert 3 not in duplicates.candidate_pairs(kept)
