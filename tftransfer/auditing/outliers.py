"""Outliers: images far from every class and from every other image.

Two scores of each image's unit-norm pooled backbone features, each turned into a robust
z-score (the median absolute deviation times 1.4826 estimates the standard deviation
without the outliers' pull):
  centroid similarity   the largest cosine similarity to a class centroid (the normalised
                        mean of the class's embeddings, by the given labels): low for an
                        image of a kind no class holds, even when several such images are
                        alike (25 noise images are each other's nearest neighbours);
  neighbour similarity  the mean cosine similarity of its k nearest neighbours
                        (k = config.audit.neighbours): low for an image unlike any other,
                        even one between classes.
An image's outlier z is the lower of the two; it is flagged when that lies more than
config.audit.outlier_z below 0. (The centroid score follows the distance-to-class-mean
detectors of Lee et al., "A Simple Unified Framework for Detecting Out-of-Distribution
Samples and Adversarial Attacks", NeurIPS 2018, with cosine in place of Mahalanobis.)
"""

import dataclasses

import numpy as np

_MAD_TO_SIGMA = 1.4826  # the normal distribution's standard deviation / its MAD


@dataclasses.dataclass(frozen=True)
class OutlierScores:
  """Per-image outlier scores; low = far."""
  neighbour_similarity: np.ndarray  # float32 [N]
  centroid_similarity: np.ndarray  # float32 [N]
  z: np.ndarray  # float32 [N], the lower robust z of the two

  def flags(self, *, z: float) -> np.ndarray:
    """bool [N]: images whose outlier z lies more than `z` below 0."""
    return self.z < -z


def neighbour_similarity(neighbour_similarities: np.ndarray) -> np.ndarray:
  """float32 [N]: the mean similarity of each image's nearest neighbours ([N, k] in)."""
  if neighbour_similarities.shape[1] == 0:
    return np.ones(len(neighbour_similarities), np.float32)
  return neighbour_similarities.mean(axis=1).astype(np.float32)


def centroid_similarity(embeddings: np.ndarray, labels: np.ndarray,
                        num_classes: int) -> np.ndarray:
  """float32 [N]: each unit-norm embedding's largest cosine similarity to a class centroid.

  Args:
    embeddings: float32 [N, D], unit-norm rows.
    labels: int [N] in [0, num_classes), the given labels the centroids are taken by.
    num_classes: C; a class without images has no centroid.
  """
  present = np.flatnonzero(np.bincount(labels, minlength=num_classes))
  if len(present) == 0:
    return np.ones(len(embeddings), np.float32)
  centroids = np.stack([embeddings[labels == label].mean(axis=0) for label in present])
  norms = np.linalg.norm(centroids, axis=1, keepdims=True)
  centroids = np.divide(centroids, norms, out=np.zeros_like(centroids), where=norms > 0)
  return (embeddings @ centroids.T).max(axis=1).astype(np.float32)


def robust_z(values: np.ndarray) -> np.ndarray:
  """(value - median) / (1.4826 x median absolute deviation); 0 when the MAD is 0."""
  median = np.median(values)
  spread = _MAD_TO_SIGMA * np.median(np.abs(values - median))
  if spread == 0:
    return np.zeros_like(values, dtype=np.float32)
  return ((values - median) / spread).astype(np.float32)


def score(embeddings: np.ndarray, labels: np.ndarray, num_classes: int,
          neighbour_similarities: np.ndarray) -> OutlierScores:
  """Both scores and the combined z (see the module docstring).

  Args:
    embeddings: float32 [N, D], unit-norm rows.
    labels: int [N], the given labels.
    num_classes: C.
    neighbour_similarities: float32 [N, k], each image's nearest neighbours' similarities.
  """
  neighbours = neighbour_similarity(neighbour_similarities)
  centroids = centroid_similarity(embeddings, labels, num_classes)
  return OutlierScores(neighbours, centroids,
                       np.minimum(robust_z(neighbours), robust_z(centroids)))
