"""Scoring several labels an image (multilabel.py): the numbers metrics.json, the thresholds
and the report's worst errors are made of, checked by hand on small cases."""

import numpy as np
import pytest

from tftransfer import errors, multilabel
from tftransfer.auditing import run as audit_run
from tftransfer.training import rules


def test_average_precision_by_hand():
  # Label 0: positives ranked 1st and 3rd of 4 -> AP = (1/1 + 2/3) / 2. Label 1: no positive.
  probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.1, 0.4]])
  targets = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
  macro, micro, per_label = multilabel.average_precision(probabilities, targets)
  assert per_label[0] == pytest.approx((1 + 2 / 3) / 2) and np.isnan(per_label[1])
  assert macro == pytest.approx(per_label[0])  # labels without positives are left out
  # Micro: the 8 pairs ranked together, positives at ranks 1 and 3 of them.
  assert micro == pytest.approx((1 + 2 / 3) / 2)


def test_thresholds_maximise_f1_and_keep_the_default_for_rare_labels():
  scores = np.array([0.9, 0.8, 0.7, 0.6, 0.55, 0.3, 0.2, 0.1, 0.05, 0.02])
  positive = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
  rare = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0])  # fewer than MIN_POSITIVES positives
  low = scores / 20  # every score under THRESHOLD_FLOOR
  thresholds = multilabel.choose_thresholds(np.stack([scores, scores, low], 1),
                                            np.stack([positive, rare, positive], 1))
  assert thresholds[0] == pytest.approx((0.55 + 0.3) / 2)  # midway: all five, nothing else
  assert thresholds[1] == multilabel.DEFAULT_THRESHOLD
  assert thresholds[2] == multilabel.THRESHOLD_FLOOR


def test_metrics_at_thresholds_by_hand():
  probabilities = np.array([[0.9, 0.6], [0.2, 0.7], [0.6, 0.1]])
  targets = np.array([[1, 0], [0, 1], [0, 0]])
  at = multilabel.at_thresholds(probabilities, targets, np.array([0.5, 0.5]))
  # Label 0: predicted for images 0 and 2, given to 0 -> precision 1/2, recall 1.
  # Label 1: predicted for 0 and 1, given to 1 -> precision 1/2, recall 1.
  assert at['precision'].tolist() == [0.5, 0.5] and at['recall'].tolist() == [1.0, 1.0]
  assert at['micro_precision'] == pytest.approx(2 / 4) and at['micro_recall'] == 1.0
  assert at['exact_match'] == pytest.approx(1 / 3)  # images 0 and 2 have a wrong label
  at = multilabel.at_thresholds(probabilities, targets, np.array([0.7, 0.65]))
  assert at['exact_match'] == pytest.approx(1.0)


def test_worst_label_errors_are_the_costliest_wrong_pairs():
  probabilities = np.array([[0.99, 0.4], [0.3, 0.02], [0.6, 0.5]])
  targets = np.array([[0, 0], [1, 1], [1, 0]])
  errors_found = multilabel.worst_label_errors(probabilities, targets, np.array([0.5, 0.5]), 3)
  assert [(image, label, kind) for image, label, kind, _ in errors_found] == [
      (0, 0, 'false positive'),   # -log(1 - 0.99) = 4.6
      (1, 1, 'false negative'),   # -log(0.02) = 3.9
      (1, 0, 'false negative')]   # -log(0.3) = 1.2; (2, 1) at 0.5 >= 0.5 is a false positive
  assert errors_found[1][3] == pytest.approx(-np.log(0.02))
  assert len(multilabel.worst_label_errors(probabilities, targets, np.array([0.5, 0.5]),
                                           10)) == 4


def test_a_select_metric_the_task_does_not_measure_is_refused():
  rules.check_select_metric('multi_label', 'val_map')
  rules.check_select_metric('single_label', 'val_balanced_accuracy')
  with pytest.raises(errors.InvalidValueError, match=r"train.select_metric='val_map' is not "
                     'measured for a single_label run; use one of val_accuracy'):
    rules.check_select_metric('single_label', 'val_map')
  with pytest.raises(errors.InvalidValueError, match='val_balanced_accuracy'):
    rules.check_select_metric('multi_label', 'val_balanced_accuracy')


def test_the_audit_compares_multi_label_images_by_their_set_of_labels():
  ids, names = audit_run.tag_sets(np.array([[1, 0, 1], [0, 0, 0], [1, 0, 1], [0, 1, 0]]),
                                  ('cat', 'dog', 'sky'))
  assert ids[0] == ids[2] and len(set(ids.tolist())) == 3
  assert sorted(names) == ['(no label)', 'cat|sky', 'dog']
  assert names[ids[0]] == 'cat|sky'
