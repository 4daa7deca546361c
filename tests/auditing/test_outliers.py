"""Outlier scores on embeddings built to hold both kinds of outlier the two scores are for."""

import numpy as np

from tftransfer.auditing import outliers, search


def _around(direction, count, rng, spread=0.05):
  return direction + spread * rng.normal(size=(count, len(direction)))


def test_each_score_flags_the_outliers_the_other_cannot_see():
  rng = np.random.default_rng(0)
  axes = np.eye(64)
  # Each class holds two kinds of picture (two tight modes).
  class_0 = np.concatenate([_around(axes[0], 100, rng), _around(axes[1], 100, rng)])
  class_1 = np.concatenate([_around(axes[2], 100, rng), _around(axes[3], 100, rng)])
  # 15 alike images of no class (more than the 10 neighbours searched), filed under 1:
  # each other's nearest neighbours, far from both centroids.
  alike_strangers = _around(axes[4], 15, rng, spread=0.02)
  # One image halfway between class 0's two modes: on its centroid, near no image.
  between = ((axes[0] + axes[1]) / np.sqrt(2))[np.newaxis]
  # A class 0 picture filed under 1: far from its own class, a label error, not an outlier.
  mislabelled = _around(axes[0], 1, rng)
  embeddings = search.normalise(np.concatenate([class_0, class_1, alike_strangers, between,
                                                mislabelled]))
  labels = np.array([0] * 200 + [1] * 200 + [1] * 15 + [0, 1])
  neighbours = search.nearest_neighbours(embeddings, 10)[1]

  scores = outliers.score(embeddings, labels, 2, neighbours)
  flagged = np.flatnonzero(scores.flags(z=5.0))
  assert flagged.tolist() == list(range(400, 416))
  # Which score saw which: the strangers only by their centroid, the in-between image only by
  # its neighbours.
  strangers, middle = slice(400, 415), 415
  assert (outliers.robust_z(scores.centroid_similarity)[strangers] < -5).all()
  assert (outliers.robust_z(scores.neighbour_similarity)[strangers] > -5).all()
  assert outliers.robust_z(scores.neighbour_similarity)[middle] < -5
  assert outliers.robust_z(scores.centroid_similarity)[middle] > -5


def test_robust_z_ignores_the_outliers_pull():
  values = np.concatenate([np.linspace(0.7, 0.8, 101), [0.0, 0.0]]).astype(np.float32)
  z = outliers.robust_z(values)
  assert abs(z[50]) < 0.05  # the median image
  assert z[-1] < -15  # a plain standard deviation would put it near -7
  assert np.all(outliers.robust_z(np.ones(5, np.float32)) == 0)
