"""The audit's findings from per-image arrays: what audit.json holds (pure NumPy).

    {'counts': {...},                      every number the summary prints
     'exact_duplicates': [group, ...],     group = {'images': [image, ...], 'label_conflict',
     'near_duplicates': [group, ...],                'splits', 'cross_split', ...}: exact
                                           ones say 'same_bytes', near ones 'similarity'
     'label_errors': [suspect, ...],       image + 'suggested', 'self_confidence', 'margin'
                                           (flagged outliers are listed as outliers only)
     'outliers': [image, ...],             image + 'z', 'centroid_similarity',
                                           'neighbour_similarity'
     'settings': {...}}                    the thresholds used
    image = {'path', 'split', 'label'}

Paths are absolute so a report can show each image beside the others of its finding.
"""

import dataclasses
import time

from absl import logging
import ml_collections
import numpy as np

from tftransfer.auditing import descriptors as descriptors_lib, duplicates, label_errors
from tftransfer.auditing import outliers as outliers_lib, search
from tftransfer.auditing.descriptors import Descriptors

SPLITS = ('train', 'val', 'test')  # the order splits are listed in


@dataclasses.dataclass(frozen=True)
class Items:
  """The audited images: one entry per image, in the order of every per-image array."""
  paths: tuple[str, ...]  # absolute file paths, or '<split>[<index>]' for file-less sources
  labels: np.ndarray  # int [N]
  splits: np.ndarray  # str [N], one of SPLITS
  class_names: tuple[str, ...]

  def image(self, index: int) -> dict:
    return {'path': self.paths[index], 'split': str(self.splits[index]),
            'label': self.class_names[self.labels[index]]}


def _group(items: Items, members: list[int], **extra) -> dict:
  splits = sorted({str(items.splits[i]) for i in members}, key=SPLITS.index)
  return {'images': [items.image(i) for i in members],
          'label_conflict': len({int(items.labels[i]) for i in members}) > 1,
          'splits': splits, 'cross_split': len(splits) > 1, **extra}


def _with_copy_elsewhere(items: Items, groups, split: str, others: tuple[str, ...]) -> int:
  """Images of `split` that share a group with an image of one of `others`."""
  found = set()
  for group in groups:
    group_splits = {str(items.splits[i]) for i in group}
    if group_splits & set(others):
      found.update(i for i in group if items.splits[i] == split)
  return len(found)


def _near_pairs(embeddings, descriptors, neighbour_indices, settings, exact):
  """(near-duplicate pairs, {signal: threshold}) among each image's nearest neighbours by
  either signal (pixels alone when `embeddings` is None: a backbone with random weights)."""
  candidates = duplicates.candidate_pairs(*neighbour_indices)
  signals = {'pixels': (descriptors_lib.aligned_similarity(descriptors, candidates),
                        settings.near_duplicate_pixel_similarity)}
  if embeddings is not None:
    signals['backbone'] = (search.pair_similarity(embeddings, candidates),
                           settings.near_duplicate_similarity)
  return (duplicates.near_pairs(candidates, signals, exact),
          {signal: threshold for signal, (_, threshold) in signals.items()})


# Why an audit with an untrained backbone lists no label errors, outliers or backbone
# near-duplicates (issue 28, kind 7: random features flagged most of a small folder).
UNTRAINED_BACKBONE = (
    "not judged: the backbone has random weights (model.weights='none'), so its features "
    'say nothing about the images; exact duplicates and pixel near-duplicates are judged as '
    'usual. After a training whose selected epoch fine-tuned the backbone, tftransfer audit '
    '--workdir=W judges these with its trained backbone')
FEATURE_FINDINGS = ('label_errors', 'outliers')  # the findings that rest on features alone


def _judged_by_features(items: Items, features: np.ndarray, embeddings: np.ndarray,
                        neighbours, settings, seed: int) -> tuple[list, list, dict, float]:
  """(label-error suspects, outliers, their counts, the label model's seconds); without a
  class of two images no label-error counts (the caller says they are not judged)."""
  started = time.time()
  # The label model judges each image by a fit on other images of its class: with no class
  # of two images (a run without validation on one image a class) there are none.
  judged = np.bincount(items.labels).max(initial=0) >= 2
  if judged:
    probabilities = label_errors.out_of_fold_probabilities(
        features, items.labels, len(items.class_names), folds=settings.folds,
        regularization=settings.regularization, seed=seed)
  else:
    probabilities = np.eye(len(items.class_names), dtype=np.float32)[items.labels]
  labels = label_errors.score(probabilities, items.labels)
  seconds = time.time() - started
  outliers = outliers_lib.score(embeddings, items.labels, len(items.class_names),
                                neighbours[1])
  is_outlier = outliers.flags(z=settings.outlier_z)
  # An outlier belongs to no class: it is listed as one, not given a suggested label.
  suspects = np.flatnonzero(labels.flagged & ~is_outlier)
  suspects = suspects[np.argsort(labels.self_confidence[suspects], kind='stable')]
  outlying = np.flatnonzero(is_outlier)
  outlying = outlying[np.argsort(outliers.z[outlying], kind='stable')]
  listed = settings.max_listed
  return ([{**items.image(i), 'suggested': items.class_names[labels.suggested[i]],
            'self_confidence': round(float(labels.self_confidence[i]), 4),
            'margin': round(float(labels.margin[i]), 4)} for i in suspects[:listed]],
          [{**items.image(i), 'z': round(float(outliers.z[i]), 2),
            'centroid_similarity': round(float(outliers.centroid_similarity[i]), 4),
            'neighbour_similarity': round(float(outliers.neighbour_similarity[i]), 4)}
           for i in outlying[:listed]],
          {**({'label_errors_flagged': len(suspects),
               'label_model_accuracy': round(labels.accuracy, 4)} if judged else {}),
           'outliers_flagged': int(is_outlier.sum())}, seconds)


def audit(items: Items, descriptors: Descriptors, features: np.ndarray | None,
          settings: ml_collections.ConfigDict, *, seed: int) -> dict:
  """Finds duplicates, leaks, likely label errors and outliers (see the module docstring).

  Args:
    items: the images.
    descriptors: their hashes and thumbnail descriptors (descriptors.compute).
    features: float32 [N, D], their pooled backbone features; None for a backbone with
      random weights: then only exact and pixel near-duplicates (and the leaks they show)
      are judged, and 'not_judged' says why the rest is not (UNTRAINED_BACKBONE).
    settings: config.audit.
    seed: seeds the label model's folds.
  """
  seconds = {}
  started = time.time()
  embeddings = None if features is None else search.normalise(features)
  neighbours = None if features is None else search.nearest_neighbours(embeddings,
                                                                      settings.neighbours)
  thumbnail_neighbours = search.nearest_neighbours(descriptors.thumbnails, settings.neighbours)
  seconds['neighbour_search'] = time.time() - started

  exact = duplicates.exact_groups(descriptors)
  pairs, thresholds = _near_pairs(embeddings, descriptors, (thumbnail_neighbours[0],) + (
      () if neighbours is None else (neighbours[0],)), settings, exact)
  near = duplicates.near_groups(pairs, thresholds)
  if features is None:
    suspects, outlying, feature_counts, seconds['label_model'] = [], [], {}, 0.0
  else:
    suspects, outlying, feature_counts, seconds['label_model'] = _judged_by_features(
        items, features, embeddings, neighbours, settings, seed)

  def near_extra(group):
    # Each signal's lowest similarity over the pairs that linked the group.
    found = [pairs[(a, b)] for a in group for b in group if (a, b) in pairs]
    return {'similarity': {signal: min(pair[signal] for pair in found)
                           for signal in found[0]}}

  findings = {
      'exact_duplicates': [_group(items, group,
                                  same_bytes=duplicates.same_bytes(descriptors, group))
                           for group in exact],
      'near_duplicates': [_group(items, group, **near_extra(group)) for group in near],
      'label_errors': suspects, 'outliers': outlying,
  }
  everything = exact + near
  findings['counts'] = {
      'images': len(items.paths),
      'images_per_split': {split: int(np.sum(items.splits == split)) for split in SPLITS
                           if np.any(items.splits == split)},
      'exact_groups': len(exact),
      'exact_extra_copies': sum(len(group) - 1 for group in exact),
      'exact_label_conflicts': sum(g['label_conflict'] for g in findings['exact_duplicates']),
      'exact_cross_split': sum(g['cross_split'] for g in findings['exact_duplicates']),
      'near_groups': len(near),
      'near_images': sum(len(group) for group in near),
      'near_label_conflicts': sum(g['label_conflict'] for g in findings['near_duplicates']),
      'near_cross_split': sum(g['cross_split'] for g in findings['near_duplicates']),
      'val_with_copy_in_train': _with_copy_elsewhere(items, everything, 'val', ('train',)),
      'test_with_copy_in_train_or_val': _with_copy_elsewhere(items, everything, 'test',
                                                             ('train', 'val')),
      **feature_counts,
  }
  if features is None:
    findings['not_judged'] = {kind: UNTRAINED_BACKBONE for kind in FEATURE_FINDINGS}
  elif 'label_model_accuracy' not in feature_counts:
    findings['not_judged'] = {'label_errors': LABELS_NOT_JUDGED}
  findings['settings'] = {key: settings[key] for key in sorted(settings.keys())
                          if key != 'in_training'}
  findings['seconds'] = {key: round(value, 2) for key, value in seconds.items()}
  logging.info('Audit of %d images: neighbour search %.1f s, label model %.1f s.',
               len(items.paths), seconds['neighbour_search'], seconds['label_model'])
  return findings


# Why an audit with no class of two images lists no label errors.
LABELS_NOT_JUDGED = ('not judged: no class has two images, and the label model judges an '
                     "image by the other images of its class")


def summary(findings: dict) -> str:
  """The findings' counts as a few lines of text, for the command's output and logs."""
  counts = findings['counts']
  lines = [
      f"Audited {counts['images']} images "
      f"({', '.join(f'{n} {s}' for s, n in counts['images_per_split'].items())}).",
      f"Exact duplicates: {counts['exact_groups']} groups, {counts['exact_extra_copies']} "
      f"extra copies; {counts['exact_label_conflicts']} with conflicting labels, "
      f"{counts['exact_cross_split']} across splits.",
      f"Near duplicates: {counts['near_groups']} groups of {counts['near_images']} images; "
      f"{counts['near_label_conflicts']} with conflicting labels, "
      f"{counts['near_cross_split']} across splits.",
      f"Leakage: {counts['val_with_copy_in_train']} validation images have an exact or near "
      'copy in train' + (f", {counts['test_with_copy_in_train_or_val']} test images one in "
                         'train or validation' if 'test' in counts['images_per_split'] else '')
      + '.',
  ]
  not_judged = findings.get('not_judged', {})
  lines.append(f"Likely label errors: {not_judged['label_errors']}." if 'label_errors' in
               not_judged else f"Likely label errors: {counts['label_errors_flagged']} (linear "
               f"model out-of-fold accuracy {counts['label_model_accuracy']:.3f}).")
  lines.append(f"Outliers: {not_judged['outliers']}." if 'outliers' in not_judged else
               f"Outliers: {counts['outliers_flagged']}.")
  return '\n'.join(lines)


def exclusions(findings: dict) -> list[tuple[str, str]]:
  """(path, why) of every training-data file a run could leave out to drop the findings.

  Of each duplicate group (exact and near) one image stays, the same one where groups
  overlap; none stays of a group whose labels conflict, nor of a group holding a test image
  (its train and validation copies are the leak). Then the likely label errors and the
  outliers listed in `findings`. Test images are never listed: they are not training data.
  """
  entries, kept = {}, set()
  for kind in ('exact_duplicates', 'near_duplicates'):
    what = kind.replace('_', ' ')[:-1]
    for group in findings[kind]:
      training = [image['path'] for image in group['images'] if image['split'] != 'test']
      if group['label_conflict']:
        why, keep = 'labels conflict', None
      elif len(training) < len(group['images']):
        why, keep = 'copy of a test image', None
      else:
        keep = next((path for path in training if path in kept), training[0])
        kept.add(keep)
        why = f'kept {keep}'
      for path in training:
        if path != keep:
          entries.setdefault(path, f'{what} ({why})')
  for suspect in findings['label_errors']:
    if suspect['split'] != 'test':
      entries.setdefault(suspect['path'], f"likely label error: given {suspect['label']}, "
                         f"suggested {suspect['suggested']}")
  for outlier in findings['outliers']:
    if outlier['split'] != 'test':
      entries.setdefault(outlier['path'], f"outlier (z {outlier['z']})")
  return list(entries.items())
