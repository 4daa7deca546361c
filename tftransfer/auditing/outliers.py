"""Outliers: images far from every other image, by their nearest neighbours' similarity.

An image's score is the mean cosine similarity of its k nearest neighbours' pooled backbone
features (k = config.audit.neighbours): an image of a kind the data set does not hold has no
close neighbours in any class. It is flagged when the score lies more than
config.audit.outlier_z robust standard deviations below the median (the median absolute
deviation times 1.4826 estimates the standard deviation without the outliers' pull).
"""

import numpy as np

_MAD_TO_SIGMA = 1.4826  # the normal distribution's standard deviation / its MAD


def scores(neighbour_similarities: np.ndarray) -> np.ndarray:
  """float32 [N]: the mean similarity of each image's nearest neighbours ([N, k] in)."""
  if neighbour_similarities.shape[1] == 0:
    return np.ones(len(neighbour_similarities), np.float32)
  return neighbour_similarities.mean(axis=1).astype(np.float32)


def robust_z(values: np.ndarray) -> np.ndarray:
  """(value - median) / (1.4826 x median absolute deviation); 0 when the MAD is 0."""
  median = np.median(values)
  spread = _MAD_TO_SIGMA * np.median(np.abs(values - median))
  if spread == 0:
    return np.zeros_like(values, dtype=np.float32)
  return ((values - median) / spread).astype(np.float32)


def flags(outlier_scores: np.ndarray, *, z: float) -> np.ndarray:
  """bool [N]: scores more than `z` robust standard deviations below the median."""
  return robust_z(outlier_scores) < -z
