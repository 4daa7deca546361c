"""Calibration: ECE and the reliability bins against values computed by hand."""

import numpy as np
import pytest

from tftransfer.evaluation import calibration


def _probabilities(confidences_and_labels):
  """Rows whose top class is 0 with the given confidence; the rest spread evenly."""
  rows = []
  for confidence, _ in confidences_and_labels:
    rest = (1 - confidence) / 2
    rows.append([confidence, rest, rest])
  return np.asarray(rows), np.asarray([label for _, label in confidences_and_labels])


def test_ece_of_a_hand_made_set_equals_the_hand_computed_value():
  # 15 bins of width 1/15. Confidence 0.95 twice, one right: bin 14, accuracy 0.5 ->
  # 2/5 * |0.5 - 0.95| = 0.18. 0.55 twice, both right: bin 8, 2/5 * |1 - 0.55| = 0.18. 0.36
  # once, wrong: bin 5, 1/5 * 0.36 = 0.072. ECE = 0.432.
  probabilities, labels = _probabilities([(0.95, 0), (0.95, 1), (0.55, 0), (0.55, 0),
                                          (0.36, 2)])
  result = calibration.calibration(probabilities, labels)
  assert result.ece == pytest.approx(0.432)
  assert np.flatnonzero(result.counts).tolist() == [5, 8, 14]
  assert result.counts[[5, 8, 14]].tolist() == [1, 2, 2]
  assert result.accuracy[[5, 8, 14]] == pytest.approx([0.0, 1.0, 0.5])
  assert result.confidence[[5, 8, 14]] == pytest.approx([0.36, 0.55, 0.95])
  # Mean confidence 0.672 against accuracy 0.6 (3 of 5 right).
  assert result.mean_confidence == pytest.approx(0.672)
  assert result.overall_accuracy == pytest.approx(0.6)
  assert result.verdict == 'over-confident'


def test_bins_hold_their_upper_edge_and_under_confidence_is_named():
  # 4 bins: (0, .25], (.25, .5], (.5, .75], (.75, 1]; 0.5 belongs to the second.
  probabilities, labels = _probabilities([(0.5, 0), (0.5, 0), (0.75, 0), (0.8, 0)])
  result = calibration.calibration(probabilities, labels, num_bins=4)
  assert result.counts.tolist() == [0, 2, 1, 1]
  # Every prediction right: ECE = 2/4 * 0.5 + 1/4 * 0.25 + 1/4 * 0.2 = 0.3625.
  assert result.ece == pytest.approx(0.3625)
  assert result.verdict == 'under-confident'


def test_a_calibrated_set_has_zero_ece():
  probabilities, labels = _probabilities([(0.5, 0), (0.5, 1)])
  result = calibration.calibration(probabilities, labels)
  assert result.ece == pytest.approx(0.0)
  assert result.verdict == 'calibrated'
  with pytest.raises(ValueError, match='needs predictions'):
    calibration.calibration(probabilities[:0], labels[:0])
