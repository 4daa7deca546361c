"""The label model's decisions, on arrays: the noise fit, each label's probability of being
wrong, the estimated count, and when it refuses to judge (milliseconds to seconds, no
TensorFlow)."""

import ml_collections
import numpy as np
import pytest

from tftransfer import config as config_lib
from tftransfer.auditing import label_errors


def _settings():
  return ml_collections.ConfigDict(config_lib.default_config().audit.to_dict())


def _softmax(logits):
  return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def _draw(rng, probabilities):
  return np.array([rng.choice(probabilities.shape[1], p=row) for row in probabilities])


def _clusters(rng, *, classes=4, per_class=100, separation=4.0, dims=16):
  """Gaussian clusters: features float32 [N, dims], labels int [N]."""
  centres = rng.normal(size=(classes, dims)) * separation / np.sqrt(dims)
  labels = np.repeat(np.arange(classes), per_class)
  return (centres[labels] + rng.normal(size=(len(labels), dims))).astype(np.float32), labels


def test_the_noise_fit_recovers_the_temperature_and_the_noise_rate():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(8000, 6)) * 3
  labels = _draw(rng, _softmax(logits))
  clean = labels.copy()
  noisy = rng.random(len(labels)) < 0.1
  labels[noisy] = rng.integers(0, 6, noisy.sum())  # random classification noise, e = 0.1
  t, noise = label_errors.fit_noise(_softmax(2 * logits), labels)  # over-confident by 2
  assert t == pytest.approx(2.0, rel=0.15) and noise == pytest.approx(0.1, abs=0.03)
  t, noise = label_errors.fit_noise(_softmax(logits), clean)
  assert t == pytest.approx(1.0, rel=0.15) and noise < 0.01


def test_the_estimate_counts_wrong_labels_with_an_interval_that_holds_them():
  rng = np.random.default_rng(2)
  probabilities = _softmax(rng.normal(size=(8000, 5)) * 4)
  labels = _draw(rng, probabilities)
  wrong = rng.choice(len(labels), 400, replace=False)
  labels[wrong] = (labels[wrong] + rng.integers(1, 5, len(wrong))) % 5
  estimate = label_errors.estimated_errors(probabilities, labels,
                                           *label_errors.fit_noise(probabilities, labels))
  assert estimate['low'] <= 400 <= estimate['high'] and estimate['high'] - estimate['low'] < 200


def test_error_confidence_is_bayes_rule_under_the_noise_model():
  probabilities = np.array([[0.98, 0.01, 0.01], [0.5, 0.4, 0.1]])
  confidence = label_errors.error_confidence(probabilities, np.array([2, 1]), 1.0, 0.03)
  assert confidence[0] == pytest.approx(0.01 / (0.97 * 0.01 + 0.01))
  assert confidence[1] == pytest.approx(0.01 / (0.97 * 0.4 + 0.01)) and confidence[1] < 0.05


def test_clean_labels_are_not_flagged_and_flipped_ones_are_most_likely_first():
  rng = np.random.default_rng(3)
  features, labels = _clusters(rng, per_class=150)
  clean = label_errors.judge(features, labels, 4, settings=_settings(), seed=0)
  assert clean.not_judged is None and clean.flagged.sum() <= 3
  flipped = labels.copy()
  moved = rng.choice(len(labels), 24, replace=False)
  flipped[moved] = (labels[moved] + rng.integers(1, 4, len(moved))) % 4
  judged = label_errors.judge(features, flipped, 4, settings=_settings(), seed=0)
  found = np.flatnonzero(judged.flagged)
  assert judged.estimate['low'] <= 24 <= judged.estimate['high']
  assert len(found) == judged.estimate['count']
  assert np.isin(found, moved).mean() >= 0.7 and np.isin(moved, found).mean() >= 0.7
  # Every flagged image is at least as likely wrong as every judged image left unflagged.
  assert judged.confidence[found].min() >= judged.confidence[~judged.flagged].max()


def test_the_ridge_classifier_scores_each_image_without_it():
  from sklearn import linear_model, preprocessing
  rng = np.random.default_rng(7)
  features, labels = _clusters(rng, classes=3, per_class=12, dims=5)
  labels[-1] = 4  # a class of one image; class 3 has none
  probabilities = label_errors.ridge_probabilities(features, labels, 5)
  standardised = preprocessing.StandardScaler().fit_transform(features)
  alpha = label_errors.RIDGE_ALPHA
  targets = np.where(np.eye(5)[labels][:, [0, 1, 2, 4]] > 0, 1.0, -1.0)
  for i in range(len(labels)):
    others = np.arange(len(labels)) != i
    left_out = linear_model.Ridge(alpha=alpha).fit(standardised[others], targets[others])
    scores = left_out.predict(standardised[i:i + 1])[0]
    logits = np.log(probabilities[i, [0, 1, 2, 4]])
    # softmax(scores / t): log-probabilities are the scores scaled, plus a constant.
    scale = (logits[0] - logits[1]) / (scores[0] - scores[1])
    np.testing.assert_allclose(logits - logits[0], scale * (scores - scores[0]), atol=1e-3)
    assert scale > 0 and probabilities[i, 3] == 0
  np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_the_ridge_classifier_flags_flipped_labels_too():
  rng = np.random.default_rng(3)
  features, labels = _clusters(rng, per_class=150)
  settings = _settings()
  settings.label_model = 'ridge_regression'
  flipped = labels.copy()
  moved = rng.choice(len(labels), 24, replace=False)
  flipped[moved] = (labels[moved] + rng.integers(1, 4, len(moved))) % 4
  judged = label_errors.judge(features, flipped, 4, settings=settings, seed=0)
  found = np.flatnonzero(judged.flagged)
  assert judged.model == 'ridge_regression' and judged.not_judged is None
  assert np.isin(found, moved).mean() >= 0.7 and np.isin(moved, found).mean() >= 0.7
  clean = label_errors.judge(features, labels, 4, settings=settings, seed=0)
  assert clean.flagged.sum() <= 3


def test_auto_fits_the_logistic_regression_unless_its_estimate_exceeds_the_time_left():
  sizes = dict(images=10_000, classes=1_000, dims=256, folds=5)
  expected = label_errors.logistic_regression_seconds(**sizes)
  assert expected == pytest.approx(label_errors.LOGISTIC_SECONDS_PER_IMAGE_CLASS_FOLD * 5e7)
  assert label_errors.choose_model('auto', **sizes, max_seconds=None)[0] == (
      'logistic_regression')
  assert label_errors.choose_model('auto', **sizes, max_seconds=expected)[0] == (
      'logistic_regression')
  model, why = label_errors.choose_model('auto', **sizes, max_seconds=expected / 2)
  assert model == 'ridge_regression'
  assert f'estimated {expected:.1f} s exceed the {expected / 2:.1f} s the in-training' in why
  assert '(10,000 images of 1,000 classes)' in why
  # Neither fits: nothing is judged in training.
  ridge = label_errors.ridge_regression_seconds(10_000, 1_000, 256)
  assert ridge == pytest.approx(10_000 * (label_errors.RIDGE_SECONDS_PER_IMAGE_FEATURE2 * 256 ** 2
                                          + label_errors.RIDGE_SECONDS_PER_IMAGE_CLASS * 1_000))
  model, why = label_errors.choose_model('auto', **sizes, max_seconds=ridge * 0.9)
  assert model == 'none' and why.startswith('not judged in training') and (
      'tftransfer-audit judges them after training' in why)
  # What costs under a second is fitted even when nothing is left, and says so.
  model, why = label_errors.choose_model('auto', images=100, classes=10, dims=256, folds=5,
                                         max_seconds=0)
  assert model == 'logistic_regression' and 'under 1 s, fitted whatever the share' in why
  # An explicit model is fitted whatever the time.
  assert label_errors.choose_model('logistic_regression', **sizes, max_seconds=0)[0] == (
      'logistic_regression')
  with pytest.raises(ValueError, match="label_model='svm'"):
    label_errors.choose_model('svm', **sizes, max_seconds=None)


def test_without_time_for_either_model_no_label_is_judged(monkeypatch):
  monkeypatch.setattr(label_errors, 'LOGISTIC_SECONDS_PER_IMAGE_CLASS_FOLD', 1.0)
  monkeypatch.setattr(label_errors, 'RIDGE_SECONDS_PER_IMAGE_CLASS', 1.0)
  rng = np.random.default_rng(3)
  features, labels = _clusters(rng, per_class=150)
  judged = label_errors.judge(features, labels, 4, settings=_settings(), seed=0,
                              max_seconds=5.0)
  assert judged.model == 'none' and judged.not_judged.startswith('not judged in training')
  assert not judged.flagged.any() and not judged.hard.any() and judged.estimate is None


def test_overlapping_classes_give_hard_images_not_label_errors():
  # Clusters that overlap: the model is often wrong about clean labels, but not confidently.
  rng = np.random.default_rng(4)
  features, labels = _clusters(rng, separation=1.5)  # out-of-fold accuracy 0.72
  judged = label_errors.judge(features, labels, 4, settings=_settings(), seed=0)
  assert judged.not_judged is None, judged.scores.accuracy
  assert judged.flagged.sum() <= 0.02 * len(labels) and judged.hard.sum() >= 10


def test_features_without_signal_are_not_judged():
  rng = np.random.default_rng(5)
  labels = np.repeat(np.arange(4), 100)
  features = rng.normal(size=(400, 16)).astype(np.float32)
  judged = label_errors.judge(features, labels, 4, settings=_settings(), seed=0)
  assert 'too near chance' in judged.not_judged and not judged.flagged.any()
  assert judged.estimate is None


def test_classes_too_small_to_judge():
  rng = np.random.default_rng(6)
  features, labels = _clusters(rng, per_class=8)
  judged = label_errors.judge(features, labels, 4, settings=_settings(), seed=0)
  assert 'largest class has 8 images' in judged.not_judged and not judged.flagged.any()


def _suspect(path, confidence, split='train'):
  return {'path': path, 'split': split, 'label': 'cat', 'suggested': 'dog',
          'confidence': confidence}


def test_exclusions_list_label_errors_only_when_more_likely_wrong_than_right():
  from tftransfer.auditing import findings as findings_lib
  findings = {'exact_duplicates': [], 'near_duplicates': [], 'outliers': [],
              'settings': {'label_error_exclusion_confidence': 0.5},
              'label_errors': [_suspect('a.jpg', 0.93), _suspect('b.jpg', 0.31),
                               _suspect('c.jpg', 0.99, split='test')]}
  listed = dict(findings_lib.exclusions(findings))
  assert list(listed) == ['a.jpg'] and 'probability wrong 0.93' in listed['a.jpg']
  assert [path for path, _ in findings_lib.exclusions(findings, label_error_confidence=0.0)
          ] == ['a.jpg', 'b.jpg']
