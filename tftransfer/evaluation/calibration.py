"""Calibration: do the model's probabilities mean what they say?

Guo, Pleiss, Sun and Weinberger 2017, "On Calibration of Modern Neural Networks" (ICML,
arXiv:1706.04599), section 2: predictions are put in M equal-width bins of confidence (the
top-1 probability), bin m holding confidences in ((m-1)/M, m/M]; the reliability diagram
plots each bin's accuracy against its mean confidence, and the expected calibration error is

    ECE = sum_m |B_m| / n * |accuracy(B_m) - confidence(B_m)|.

A model whose mean confidence exceeds its accuracy is over-confident; below, under-confident.
"""

import dataclasses

from matplotlib.figure import Figure
import numpy as np

# Guo et al.'s number of bins.
NUM_BINS = 15
# A model whose mean confidence is within this of its accuracy is called calibrated.
CALIBRATED_WITHIN = 0.01


@dataclasses.dataclass(frozen=True)
class Calibration:
  """Reliability-diagram data and the expected calibration error of a set of predictions."""
  bin_edges: np.ndarray  # float64 [M + 1], 0 to 1
  counts: np.ndarray  # int64 [M], predictions per bin
  accuracy: np.ndarray  # float64 [M], fraction correct per bin (0 where empty)
  confidence: np.ndarray  # float64 [M], mean confidence per bin (0 where empty)
  ece: float  # expected calibration error, 0 (calibrated) to 1
  mean_confidence: float  # over all predictions
  overall_accuracy: float  # over all predictions

  @property
  def verdict(self) -> str:
    """'over-confident', 'under-confident', or 'calibrated' when the mean confidence is
    within CALIBRATED_WITHIN of the accuracy."""
    gap = self.mean_confidence - self.overall_accuracy
    if abs(gap) < CALIBRATED_WITHIN:
      return 'calibrated'
    return 'over-confident' if gap > 0 else 'under-confident'


def calibration(probabilities: np.ndarray, labels: np.ndarray, *,
                num_bins: int = NUM_BINS) -> Calibration:
  """Bins the top-1 predictions of `probabilities` by confidence (Guo et al. 2017).

  Args:
    probabilities: float [N, num_classes], each row summing to 1 (softmax outputs).
    labels: int [N], the true classes.
    num_bins: M, the number of equal-width confidence bins.

  Raises:
    ValueError: no predictions, or num_bins < 1.
  """
  if not len(labels) or num_bins < 1:
    raise ValueError(f'Calibration needs predictions and at least one bin, got {len(labels)} '
                     f'predictions and num_bins={num_bins}.')
  probabilities = np.asarray(probabilities, np.float64)
  confidences = probabilities.max(axis=-1)
  correct = (probabilities.argmax(axis=-1) == np.asarray(labels)).astype(np.float64)
  # Bin m (0-based) holds (m/M, (m+1)/M]; a confidence of exactly 0 joins the first bin.
  bins = np.clip(np.ceil(confidences * num_bins).astype(np.int64) - 1, 0, num_bins - 1)
  counts = np.bincount(bins, minlength=num_bins)
  sums_correct = np.bincount(bins, weights=correct, minlength=num_bins)
  sums_confidence = np.bincount(bins, weights=confidences, minlength=num_bins)
  occupied = counts > 0
  accuracy = np.divide(sums_correct, counts, out=np.zeros(num_bins), where=occupied)
  confidence = np.divide(sums_confidence, counts, out=np.zeros(num_bins), where=occupied)
  ece = float(np.sum(counts / len(labels) * np.abs(accuracy - confidence)))
  return Calibration(np.linspace(0, 1, num_bins + 1), counts, accuracy, confidence, ece,
                     float(confidences.mean()), float(correct.mean()))


def plot_reliability(result: Calibration) -> Figure:
  """The reliability diagram: accuracy per confidence bin against the diagonal of perfect
  calibration, with the gap shaded, and below it how many predictions fall in each bin."""
  figure = Figure(figsize=(5.6, 5.2), dpi=100, layout='constrained')
  top, bottom = figure.subplots(2, 1, height_ratios=(3, 1), sharex=True)
  width = np.diff(result.bin_edges)
  left = result.bin_edges[:-1]
  occupied = result.counts > 0
  top.bar(left[occupied], result.accuracy[occupied], width[occupied], align='edge',
          color='#4878d0', edgecolor='white', label='accuracy')
  top.bar(left[occupied], (result.confidence - result.accuracy)[occupied], width[occupied],
          bottom=result.accuracy[occupied], align='edge', color='#ee854a', alpha=0.45,
          edgecolor='#ee854a', label='gap to mean confidence')
  top.plot([0, 1], [0, 1], color='gray', linestyle='--', label='perfect calibration')
  top.set_ylim(0, 1)
  top.set_ylabel('accuracy')
  top.legend(loc='upper left', fontsize=8)
  top.set_title(f'ECE {result.ece:.4f} ({len(width)} bins): {result.verdict}', fontsize=10)
  bottom.bar(left, result.counts, width, align='edge', color='#6acc64', edgecolor='white')
  bottom.set_xlim(0, 1)
  bottom.set_xlabel('confidence (top-1 probability)')
  bottom.set_ylabel('images')
  return figure
