"""The audit's findings from per-image arrays (NumPy only): when a rule for rare findings
flags much of the data, it is not judged rather than listed."""

import numpy as np

from tftransfer import config as config_lib
from tftransfer.auditing import findings
from tftransfer.auditing.descriptors import Descriptors

CLASSES, PER_CLASS, DIM = 4, 60, 32


def _unit(rows):
  return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _audit(features, *, features_saw_labels=False, pixel_hashes=None, bursts=()):
  """Audits CLASSES x PER_CLASS images whose thumbnails are all different (and whose pixels
  are, unless `pixel_hashes` says which are the same), but for each image of `bursts` and
  the 3 after it: one thumbnail, in random colours."""
  rng = np.random.default_rng(1)
  count = len(features)
  labels = np.repeat(np.arange(CLASSES), PER_CLASS)
  thumbnails = _unit(rng.normal(size=(count, 64)))
  for first in bursts:
    thumbnails[first + 1:first + 4] = thumbnails[first]
  colours = rng.uniform(0, 255, size=(count, 3)).astype(np.float32)
  described = Descriptors(np.arange(1, count + 1, dtype=np.uint64),
                          np.arange(1, count + 1, dtype=np.uint64) if pixel_hashes is None
                          else pixel_hashes, thumbnails,
                          thumbnails[:, np.newaxis], colours, colours[:, np.newaxis])
  items = findings.Items(tuple(f'train[{i}]' for i in range(count)), labels,
                         np.array(['train'] * count), ('a', 'b', 'c', 'd'))
  return findings.audit(items, described, features, config_lib.default_config().audit,
                        seed=0, features_saw_labels=features_saw_labels)


def _classes(spread, rng):
  """float32 [CLASSES * PER_CLASS, DIM]: each class around its own direction."""
  centres = rng.normal(size=(CLASSES, DIM))
  return np.repeat(centres, PER_CLASS, axis=0) + spread * rng.normal(
      size=(CLASSES * PER_CLASS, DIM))


def test_crowded_allows_up_to_the_fraction_and_says_how_many_beyond_it():
  assert findings.crowded(50, 1000, 'outliers') is None
  why = findings.crowded(51, 1000, 'outliers')
  assert why.startswith('not judged') and '51 of 1,000 images (5.1 %) outliers' in why
  assert findings.crowded(0, 0, 'outliers') is None


def test_features_that_gather_each_class_judge_no_backbone_near_duplicates():
  rng = np.random.default_rng(0)
  collapsed = _classes(0.01, rng).astype(np.float32)  # a backbone trained on these labels
  found = _audit(collapsed)
  assert 'near duplicates of 3 or more others' in (
      found['not_judged']['backbone_near_duplicates'])
  assert found['near_duplicates'] == [] and found['counts']['val_with_copy_in_train'] == 0
  assert 'Backbone near duplicates: not judged' in findings.summary(found)


def test_features_trained_on_the_labels_that_set_much_apart_judge_no_outliers():
  rng = np.random.default_rng(0)
  features = _classes(0.6, rng)
  features[::10] = 3 * rng.normal(size=(len(features[::10]), DIM))  # 10 % far from all
  found = _audit(features.astype(np.float32), features_saw_labels=True)
  assert found['not_judged']['outliers'].startswith('not judged')
  assert found['outliers'] == [] and 'outliers_flagged' not in found['counts']
  assert 'Outliers: not judged' in findings.summary(found)
  # Pretrained features keep them: a folder can hold 10 % junk.
  kept = _audit(features.astype(np.float32))
  assert 'outliers' not in kept.get('not_judged', {})
  assert kept['counts']['outliers_flagged'] >= 20


def test_many_copies_do_not_crowd_the_backbone_out():
  rng = np.random.default_rng(0)
  features = _classes(0.6, rng)
  # 20 % of the images have a near copy, and another 20 % an exact copy (same pixels).
  features[1:48:2] = features[0:48:2] + 0.001 * rng.normal(size=(24, DIM))
  features[49:96:2] = features[48:96:2]
  hashes = np.arange(1, len(features) + 1, dtype=np.uint64)
  hashes[49:96:2] = hashes[48:96:2]
  found = _audit(features.astype(np.float32), pixel_hashes=hashes)
  assert 'backbone_near_duplicates' not in found.get('not_judged', {})
  assert found['counts']['near_groups'] == 24 and found['counts']['exact_groups'] == 24


def test_spread_features_judge_both_and_find_a_backbone_copy():
  rng = np.random.default_rng(0)
  features = _classes(0.6, rng)
  features[1] = features[0] + 0.001 * rng.normal(size=DIM)  # one near copy
  found = _audit(features.astype(np.float32))
  assert 'not_judged' not in found or not (
      {'outliers', 'backbone_near_duplicates'} & set(found['not_judged']))
  groups = [[image['path'] for image in group['images']] for group in found['near_duplicates']]
  assert groups == [['train[0]', 'train[1]']], groups
  group = found['near_duplicates'][0]
  assert group['thresholds']['backbone'] == 0.95 and group['similarity']['backbone'] > 0.99


def test_bursts_of_copies_alike_in_layout_do_not_crowd_the_backbone_out():
  rng = np.random.default_rng(0)
  features = _classes(0.6, rng)
  # 12 photos with 3 copies each (20 % of the images), in other brightness: their thumbnails
  # align, their colours do not.
  for first in range(0, 48, 4):
    features[first + 1:first + 4] = features[first] + 0.001 * rng.normal(size=(3, DIM))
  found = _audit(features.astype(np.float32), bursts=range(0, 48, 4))
  assert 'backbone_near_duplicates' not in found.get('not_judged', {})
  assert found['counts']['near_groups'] == 12 and found['counts']['near_images'] == 48


def test_unlisted_says_what_the_capped_lists_leave_out():
  found = {'counts': {'label_errors_flagged': 212, 'outliers_flagged': 3},
           'label_errors': [{'confidence': 0.9}] * 99 + [{'confidence': 0.6}],
           'outliers': [{}] * 3,
           'settings': {'max_listed': 100, 'label_error_exclusion_confidence': 0.5}}
  assert findings.unlisted(found).startswith(
      '112 of the 212 flagged label errors are not listed (audit.max_listed=100); to list '
      'them, raise audit.max_listed')
  # The exclusions take none of the unlisted when the last listed is below their bar.
  assert findings.unlisted(found, label_error_confidence=0.7) is None
  found['label_errors'] = [{'confidence': 0.9}] * 212
  assert findings.unlisted(found) is None
