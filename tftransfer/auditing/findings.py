"""The audit's findings from per-image arrays: what audit.json holds (pure NumPy).

    {'counts': {...},                      every number the summary prints
     'exact_duplicates': [group, ...],     group = {'images': [image, ...], 'label_conflict',
     'near_duplicates': [group, ...],                'splits', 'cross_split', ...}: exact
                                           ones say 'same_bytes', near ones 'similarity'
                                           and 'thresholds' per signal
     'label_errors': [suspect, ...],       image + 'suggested', 'self_confidence', 'margin',
                                           'confidence' (probability the label is wrong)
                                           and the 'threshold' it passed; most likely first
                                           (flagged outliers are listed as outliers only)
     'hard_or_ambiguous': [suspect, ...],  another class preferred without the evidence
     'outliers': [image, ...],             image + 'z' (and its 'threshold'),
                                           'centroid_similarity', 'neighbour_similarity'
     'not_judged': {finding: why, ...},    only when some are not: 'label_errors',
                                           'outliers', 'backbone_near_duplicates'
                                           (UNTRAINED_BACKBONE, label_errors.judge's
                                           reasons, crowded)
     'neighbour_search': 'exact' or        how neighbours were searched (search.method)
       'approximate',
     'label_model': {'name', 'why'},       which label model judged labels and why
                                           (label_errors.choose_model); with features only
     'in_training': {...},                 the in-training audit's scope (share.Scope):
                                           'images', 'audited' (a random sample when
                                           fewer), 'seconds' of its share, 'why'
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


# A rule for rare findings that flags more than this fraction of the images is not
# describing them: where all images look alike to the backbone (one kind of picture, or a
# backbone trained on these very labels, which gathers each class together), the thresholds
# calibrated on pretrained CIFAR-10 features pair or set apart much of the data. Measured:
# the quickstart's textures audited with their own trained backbone, 99.8 % of the images
# in a backbone near pair and 12.5 % outliers; tests/auditing/test_run.py's generated folder
# (smooth gradients with a disc) with pretrained MobileNet, 50 % backbone-paired. Such
# findings are not judged, and not_judged says why. Copies are not crowding: the backbone's
# pairs count only images with CROWDED_PARTNERS or more partners that are neither exact
# copies of them nor alike in thumbnail layout (whatever the colours: a burst of brightened
# copies), and outliers are judged this way only with features trained on these labels (a
# folder with 7 % junk images keeps them).
MAX_FLAGGED_FRACTION = 0.05
CROWDED_PARTNERS = 3


def crowded(flagged: int, total: int, what: str) -> str | None:
  """Why a finding flagged on `flagged` of `total` images is not judged, or None when at
  most MAX_FLAGGED_FRACTION of them are flagged."""
  if total == 0 or flagged <= MAX_FLAGGED_FRACTION * total:
    return None
  return (f'not judged: the backbone\'s features make {flagged:,} of {total:,} images '
          f'({100 * flagged / total:.1f} %) {what}, more than the '
          f'{100 * MAX_FLAGGED_FRACTION:.0f} % a rule for rare findings can mean: to this '
          'backbone the images look alike (one kind of picture, such as textures, scans or '
          'product shots; or a backbone trained on these labels, which gathers each class '
          'together), while the thresholds were calibrated on pretrained features of CIFAR-10')


def _near_pairs(embeddings, descriptors, neighbour_indices, settings, exact):
  """(near-duplicate pairs, {signal: threshold}, why backbone pairs are not judged or None)
  among each image's nearest neighbours by either signal (pixels alone when `embeddings` is
  None, a backbone with random weights, or when the backbone would pair too many: crowded)."""
  candidates = duplicates.candidate_pairs(*neighbour_indices)
  layout = descriptors_lib.aligned_similarity(descriptors, candidates)
  signals = {'pixels': (descriptors_lib.pixel_similarity(
      descriptors, candidates, max_colour_distance=settings.near_duplicate_colour_distance,
      aligned=layout), settings.near_duplicate_pixel_similarity)}
  not_judged = None
  if embeddings is not None:
    similarity = search.pair_similarity(embeddings, candidates)
    # Pairs whose thumbnails align too (in any colours) are copies, not crowding.
    alike = list(duplicates.near_pairs(
        candidates, {'backbone': (np.where(layout < settings.near_duplicate_pixel_similarity,
                                           similarity, -1), settings.near_duplicate_similarity)},
        exact))
    partners = np.bincount(np.asarray(alike, np.int64).reshape(-1), minlength=len(embeddings))
    not_judged = crowded(int(np.sum(partners >= CROWDED_PARTNERS)), len(embeddings),
                         f'backbone near duplicates of {CROWDED_PARTNERS} or more others')
    if not_judged is None:
      signals['backbone'] = (similarity, settings.near_duplicate_similarity)
  return (duplicates.near_pairs(candidates, signals, exact),
          {signal: threshold for signal, (_, threshold) in signals.items()}, not_judged)


# Why an audit with an untrained backbone lists no label errors, outliers or backbone
# near-duplicates (issue 28, kind 7: random features flagged most of a small folder).
UNTRAINED_BACKBONE = (
    "not judged: the backbone has random weights (model.weights='none'), so its features "
    'say nothing about the images; exact duplicates and pixel near-duplicates are judged as '
    'usual. After a training whose selected epoch fine-tuned the backbone, tftransfer audit '
    '--workdir=W judges these with its trained backbone')
FEATURE_FINDINGS = ('label_errors', 'outliers')  # the findings that rest on features alone


# How the summary names each label model (label_errors.LABEL_MODELS).
LABEL_MODEL_NAMES = {'logistic_regression': 'logistic regression, out of fold',
                     'ridge_regression': 'ridge regression, leave one out'}
# The counts that come from the label model, left out where labels are not judged.
LABEL_COUNTS = ('label_errors_flagged', 'label_errors_estimated', 'hard_or_ambiguous',
                'label_model_accuracy', 'label_noise_fit')


def _judged_by_features(items: Items, features: np.ndarray, embeddings: np.ndarray,
                        neighbours, settings, seed: int, features_saw_labels: bool,
                        label_model_seconds: float | None
                        ) -> tuple[dict, dict, float, dict, dict]:
  """(findings lists: label errors, hard or ambiguous images and outliers; their counts; the
  label model's seconds; {finding: why it is not judged} for label errors and outliers;
  {'name': the label model, 'why': why that one})."""
  started = time.time()
  judgement = label_errors.judge(
      features, items.labels, len(items.class_names), settings=settings, seed=seed,
      max_seconds=label_model_seconds)
  seconds = time.time() - started
  scores = judgement.scores
  outliers = outliers_lib.score(embeddings, items.labels, len(items.class_names),
                                neighbours[1])
  is_outlier = outliers.flags(z=settings.outlier_z)
  not_judged = {'outliers': features_saw_labels and crowded(int(is_outlier.sum()),
                                                           len(is_outlier), 'outliers'),
                'label_errors': judgement.not_judged}
  if not_judged['outliers']:
    is_outlier = np.zeros_like(is_outlier)
  # An outlier belongs to no class: it is listed as one, not given a suggested label.
  suspects = np.flatnonzero(judgement.flagged & ~is_outlier)
  suspects = suspects[np.argsort(-judgement.confidence[suspects], kind='stable')]
  hard = np.flatnonzero(judgement.hard & ~is_outlier)
  hard = hard[np.argsort(scores.self_confidence[hard], kind='stable')]
  outlying = np.flatnonzero(is_outlier)
  outlying = outlying[np.argsort(outliers.z[outlying], kind='stable')]
  # A flagged image passed the cut at the estimated count: the least confidence flagged.
  cut = round(float(judgement.confidence[judgement.flagged].min(initial=1.0)), 4)
  listed = settings.max_listed

  def label_row(i, **extra):
    return {**items.image(i), 'suggested': items.class_names[scores.suggested[i]],
            'self_confidence': round(float(scores.self_confidence[i]), 4),
            'margin': round(float(scores.margin[i]), 4), **extra}
  lists = {
      'label_errors': [label_row(i, confidence=round(float(judgement.confidence[i]), 4),
                                 threshold=cut) for i in suspects[:listed]],
      'hard_or_ambiguous': [label_row(i) for i in hard[:listed]],
      'outliers': [{**items.image(i), 'z': round(float(outliers.z[i]), 2),
                    'threshold': -settings.outlier_z,
                    'centroid_similarity': round(float(outliers.centroid_similarity[i]), 4),
                    'neighbour_similarity': round(float(outliers.neighbour_similarity[i]), 4)}
                   for i in outlying[:listed]]}
  counts = {} if not_judged['outliers'] else {'outliers_flagged': int(is_outlier.sum())}
  if not judgement.not_judged:
    counts.update(label_errors_flagged=len(suspects),
                  label_errors_estimated=judgement.estimate, hard_or_ambiguous=len(hard),
                  label_model_accuracy=round(scores.accuracy, 4),
                  label_noise_fit={'temperature': round(judgement.temperature, 4),
                                   'noise_rate': round(judgement.noise_rate, 5)})
  return (lists, counts, seconds, {kind: why for kind, why in not_judged.items() if why},
          {'name': judgement.model, 'why': judgement.model_why})


def audit(items: Items, descriptors: Descriptors, features: np.ndarray | None,
          settings: ml_collections.ConfigDict, *, seed: int,
          features_saw_labels: bool = False,
          label_model_seconds: float | None = None) -> dict:
  """Finds duplicates, leaks, likely label errors and outliers (see the module docstring).

  Args:
    items: the images.
    descriptors: their hashes and thumbnail descriptors (descriptors.compute).
    features: float32 [N, D], their pooled backbone features; None for a backbone with
      random weights: then only exact and pixel near-duplicates (and the leaks they show)
      are judged, and 'not_judged' says why the rest is not (UNTRAINED_BACKBONE).
    settings: config.audit.
    seed: seeds the label model's folds.
    features_saw_labels: the backbone was trained on these labels (a finished run's
      fine-tuned backbone): then outliers too are not judged when crowded.
    label_model_seconds: what the label model may take (the in-training audit's share of
      the run): with audit.label_model='auto', the first label model whose estimated cost
      fits it (label_errors.choose_model). None = no limit.
  """
  seconds = {}
  started = time.time()
  embeddings = None if features is None else search.normalise(features)
  exact_max = settings.exact_search_max_images
  neighbours = None if features is None else search.nearest_neighbours(
      embeddings, settings.neighbours, exact_max=exact_max)
  thumbnail_neighbours = search.nearest_neighbours(descriptors.thumbnails, settings.neighbours,
                                                   exact_max=exact_max)
  seconds['neighbour_search'] = time.time() - started

  exact = duplicates.exact_groups(descriptors)
  pairs, thresholds, backbone_not_judged = _near_pairs(
      embeddings, descriptors, (thumbnail_neighbours[0],) + (
          () if neighbours is None else (neighbours[0],)), settings, exact)
  near = duplicates.near_groups(pairs, thresholds)
  if features is None:
    lists = {'label_errors': [], 'hard_or_ambiguous': [], 'outliers': []}
    feature_counts, seconds['label_model'], not_judged, label_model = {}, 0.0, {}, None
  else:
    lists, feature_counts, seconds['label_model'], not_judged, label_model = (
        _judged_by_features(items, features, embeddings, neighbours, settings, seed,
                            features_saw_labels, label_model_seconds))
  if backbone_not_judged:
    not_judged['backbone_near_duplicates'] = backbone_not_judged

  def near_extra(group):
    # Each signal's lowest similarity over the pairs that linked the group.
    found = [pairs[(a, b)] for a in group for b in group if (a, b) in pairs]
    return {'similarity': {signal: min(pair[signal] for pair in found)
                           for signal in found[0]},
            'thresholds': {signal: thresholds[signal] for signal in found[0]}}

  findings = {
      'exact_duplicates': [_group(items, group,
                                  same_bytes=duplicates.same_bytes(descriptors, group))
                           for group in exact],
      'near_duplicates': [_group(items, group, **near_extra(group)) for group in near],
      **lists,
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
  elif not_judged:
    findings['not_judged'] = not_judged
  findings['settings'] = {key: settings[key] for key in sorted(settings.keys())
                          if key != 'in_training'}
  findings['neighbour_search'] = search.method(len(items.paths), exact_max)
  if label_model:
    findings['label_model'] = label_model
  findings['seconds'] = {key: round(value, 2) for key, value in seconds.items()}
  logging.info('Audit of %d images: neighbour search %.1f s (%s), label model %.1f s%s.',
               len(items.paths), seconds['neighbour_search'], findings['neighbour_search'],
               seconds['label_model'],
               f" ({label_model['name'].replace('_', ' ')}: {label_model['why']})"
               if label_model else '')
  return findings


def summary(findings: dict) -> str:
  """The findings' counts as a few lines of text, for the command's output and logs."""
  counts = findings['counts']
  scope = findings.get('in_training') or {}
  lines = [
      f"Audited {counts['images']} images "
      f"({', '.join(f'{n} {s}' for s, n in counts['images_per_split'].items())})"
      + (f", a random sample of the run's {scope['images']:,}: its findings are the sample's "
         '(tftransfer-audit audits every image)' if scope.get('audited', 0) < scope.get(
             'images', 0) else '') + '.',
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
  if 'backbone_near_duplicates' in not_judged:
    lines.insert(3, f"Backbone near duplicates: {not_judged['backbone_near_duplicates']}; "
                 'the near duplicates above are pixel ones.')
  if 'label_errors' in not_judged:
    lines.append(f"Label errors: {not_judged['label_errors']}.")
  else:
    estimate = counts['label_errors_estimated']
    model = (findings.get('label_model') or {}).get('name', 'logistic_regression')
    lines.append(
        f"Label errors: estimated {estimate['count']} (90 % interval {estimate['low']}-"
        f"{estimate['high']}); {counts['label_errors_flagged']} likeliest flagged; "
        f"{counts['hard_or_ambiguous']} hard or ambiguous images (another class preferred, "
        f'without the evidence to call the label wrong); label model ({LABEL_MODEL_NAMES[model]}) '
        f"accuracy {counts['label_model_accuracy']:.3f}.")
  lines.append(f"Outliers: {not_judged['outliers']}." if 'outliers' in not_judged else
               f"Outliers: {counts['outliers_flagged']}.")
  return '\n'.join(lines)


def _exclusion_confidence(findings: dict, label_error_confidence: float | None) -> float:
  """The probability of being wrong from which exclusions list a label error: the given
  one, or the audit's audit.label_error_exclusion_confidence."""
  return (findings['settings']['label_error_exclusion_confidence']
          if label_error_confidence is None else label_error_confidence)


def unlisted(findings: dict, *, label_error_confidence: float | None = None) -> str | None:
  """What the lists leave out of the flagged images (audit.max_listed caps them) that the
  exclusions would take (label errors at `label_error_confidence`, as `exclusions`), or
  None."""
  counts, missing = findings['counts'], []
  confident = _exclusion_confidence(findings, label_error_confidence)
  listed = findings['label_errors']
  # Listed most likely wrong first: if the last is below the bar, so is every unlisted one.
  label_errors_cut = bool(listed) and listed[-1]['confidence'] < confident
  for kind, count in (('label_errors', 'label_errors_flagged'), ('outliers', 'outliers_flagged')):
    if kind == 'label_errors' and label_errors_cut:
      continue
    if counts.get(count, 0) > len(findings[kind]):
      missing.append(f"{counts[count] - len(findings[kind]):,} of the {counts[count]:,} "
                     f"flagged {kind.replace('_', ' ')}")
  if not missing:
    return None
  return (f"{' and '.join(missing)} are not listed (audit.max_listed="
          f"{findings['settings']['max_listed']}); to list them, raise audit.max_listed: "
          '--config.audit.max_listed=N with --config, or in the run\'s config.json for a run\'s '
          'workdir')


def exclusions(findings: dict, *, label_error_confidence: float | None = None
               ) -> list[tuple[str, str]]:
  """(path, why) of every training-data file a run could leave out to drop the findings.

  Of each duplicate group (exact and near) one image stays, the same one where groups
  overlap; none stays of a group whose labels conflict, nor of a group holding a test image
  (its train and validation copies are the leak). Then the listed label errors whose
  probability of being wrong is at least `label_error_confidence` (None: the audit's
  audit.label_error_exclusion_confidence, 0.5 = more likely wrong than right), and the
  listed outliers. Test images are never listed: they are not training data.
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
  confident = _exclusion_confidence(findings, label_error_confidence)
  for suspect in findings['label_errors']:
    if suspect['split'] != 'test' and suspect['confidence'] >= confident:
      entries.setdefault(suspect['path'], f"likely label error: given {suspect['label']}, "
                         f"suggested {suspect['suggested']}, probability wrong "
                         f"{suspect['confidence']:.2f}")
  for outlier in findings['outliers']:
    if outlier['split'] != 'test':
      entries.setdefault(outlier['path'], f"outlier (z {outlier['z']})")
  return list(entries.items())
