"""The audit of a run's data, as `tftransfer-audit` and training run it: gather, audit, write.

    audit_workdir(W, ...)  the command: the data of W's run (or of a config, before any
                           training), a test folder if given; embeddings from the run's
                           trained backbone when it has one, else the pretrained weights
    in_training(...)       during training: the head phase's features of the pretrained
                           backbone, computed anyway, so the audit adds a decode pass, the
                           neighbour search and the label model, within its share of the
                           run (share.py: a random sample beyond what fits)

Both write audit.json (findings.py documents its shape) and audit_thumbnails.png into the
workdir; training also puts the findings into data_report.json under 'audit'.
"""

import io
import os
import time
from typing import Callable

from absl import logging
import ml_collections
import numpy as np
import tensorflow as tf

from tftransfer import config as config_lib, errors, plan as plan_lib, restore, runtime
from tftransfer import workdir as workdir_lib
from tftransfer.auditing import descriptors as descriptors_lib, findings as findings_lib
from tftransfer.auditing import share as share_lib, thumbnails
from tftransfer.data import dataset, exclusions, features as features_lib, manifest_source
from tftransfer.data import sources
from tftransfer.data.dataset import Split
from tftransfer.model import backbones
from tftransfer.workdir import Workdir

AUDIT_FILE = workdir_lib.AUDIT
THUMBNAILS_FILE = workdir_lib.AUDIT_THUMBNAILS
_VERSION = 1  # of audit.json's shape


def _splits(data: dataset.Data, test: Split | None) -> list[tuple[str, Split]]:
  """(name, split) of each split in audit order; a split without examples (the validation
  split of a run without validation) is left out."""
  splits = [('train', data.train), ('val', data.val)] + ([('test', test)] if test else [])
  return [(name, split) for name, split in splits if split.num_examples]


def _items(splits: list[tuple[str, Split]], indices: list[np.ndarray] | None = None
           ) -> tuple[list[str], list[str]]:
  """(path or name of each image, its split's name) in audit order; an image without a
  file is named by its split and its index there (`indices`: each split's images' indices
  in the whole split, when `splits` are a sample)."""
  paths, names = [], []
  for k, (name, split) in enumerate(splits):
    if split.paths is not None:
      paths += [os.path.abspath(path) for path in split.paths]
    else:
      paths += [f'{name}[{index}]' for index in (
          range(split.num_examples) if indices is None else indices[k])]
    names += [name] * split.num_examples
  return paths, names


def audit_data(data: dataset.Data, *, extract: Callable[[tf.Tensor], tf.Tensor],
               image_size: int, batch_size: int, settings: ml_collections.ConfigDict,
               seed: int, test: Split | None = None, features=None,
               trained_backbone: bool = True, features_saw_labels: bool = False,
               features_seconds: float | None = None,
               scope: Callable[[float], share_lib.Scope] | None = None) -> dict:
  """Audits the train and validation splits of `data` (and `test`, if given).

  Args:
    data: the loaded data.
    extract: float32 images [B, S, S, 3] in 0-255 -> float32 pooled features [B, D].
    image_size: S.
    batch_size: images per feature batch.
    settings: config.audit.
    seed: seeds the label model's folds and the sample.
    test: a held-out split with the same classes, audited for leaks too.
    features: ((train features [N_train, D], labels [N_train]), (val features, labels)),
      already computed with `extract` in the splits' order (the head phase's), so they are
      not computed again.
    trained_backbone: False when `extract` has random weights (backbone_is_trained): no
      features are computed and only the findings that do not rest on them are judged.
    features_saw_labels: `extract` is a backbone fine-tuned on these labels (findings.audit).
    features_seconds: the wall seconds in which `features` were computed.
    scope: images/s of the feature pass (the given features', else the audit's own) -> what
      the audit covers (share.in_training_scope): a random sample of that many images, and
      the label model's seconds (findings.audit's label_model_seconds). None = every image,
      no limit.

  Returns:
    The findings (findings.py); with `scope`, 'in_training' holds it (Scope.to_json).
  """
  splits = _splits(data, test)
  started = time.time()
  # The given features are (train, validation)'s, an empty split's among them; none are
  # computed for a backbone with random weights.
  computed = [part for part, split in zip(features or (), (data.train, data.val))
              if split.num_examples] if trained_backbone else []
  if scope and trained_backbone and len(computed) < len(splits):
    logging.info('Data audit: no head phase computed features, so the audit computes its own '
                 'of every image first, a pass not held to its share of the run.')
  for name, split in splits[len(computed):] if trained_backbone else ():
    computed.append(features_lib.compute_features(
        extract, split, image_size=image_size, batch_size=batch_size,
        what=f'Audit backbone features of the {name} images'))
  feature_seconds = time.time() - started
  # The feature pass's speed: the head phase's, else the audit's own.
  given = sum(len(labels) for _, labels in features or ())
  own = sum(len(labels) for _, labels in computed) - (given if trained_backbone else 0)
  speed = (given / features_seconds if given and features_seconds else
           own / feature_seconds if own and feature_seconds else 0.0)
  covered = scope(speed) if scope and speed > 0 else None
  indices = None
  if covered and covered.audited < covered.images:
    logging.info('Data audit of %s.', covered.why)
    splits, computed, indices = _sample(splits, computed, covered.audited, seed=seed)
  paths, split_names = _items(splits, indices)
  started = time.time()
  described = descriptors_lib.Descriptors.concatenate(
      [descriptors_lib.compute(split, crop=settings.near_duplicate_crop,
                               what=f'Audit decode pass of the {name} images')
       for name, split in splits])
  decode_seconds = time.time() - started
  labels = (np.concatenate([labels for _, labels in computed]) if trained_backbone else
            np.concatenate([_labels(split) for _, split in splits]))
  class_names = data.class_names
  if labels.ndim == 2:
    labels, class_names = tag_sets(labels, class_names)
  items = findings_lib.Items(tuple(paths), labels.astype(np.int64), np.asarray(split_names),
                             tuple(class_names))
  if not trained_backbone:
    logging.info('Data audit: %s.', findings_lib.UNTRAINED_BACKBONE)
  findings = findings_lib.audit(
      items, described,
      np.concatenate([values for values, _ in computed]) if trained_backbone else None,
      settings, seed=seed, features_saw_labels=features_saw_labels,
      label_model_seconds=covered.label_model_seconds if covered else None)
  if covered:
    findings['in_training'] = {**covered.to_json(),
                               'feature_pass_images_per_second': round(speed, 1)}
  if data.multi_label:
    findings = _without_label_errors(findings)
  findings['seconds'].update(decode_and_hash=round(decode_seconds, 2),
                             features=round(feature_seconds, 2))
  return findings


def _subset(split: Split, keep: np.ndarray) -> Split:
  """The examples of `split` where `keep` (bool [N]) is set, in their order."""
  kept = tf.constant(keep)

  def read(shard_index, num_shards):
    return split.read(shard_index, num_shards).enumerate().filter(
        lambda index, example: tf.gather(kept, index)).map(lambda index, example: example)
  return Split(read=read, class_counts=(), size=int(keep.sum()),
               paths=None if split.paths is None else tuple(
                   path for path, chosen in zip(split.paths, keep) if chosen))


def _sample(splits: list[tuple[str, Split]], features: list, count: int, *, seed: int):
  """(splits, features, each split's kept indices) cut to a random `count` of their images
  (seeded), each split's in its order; `features` ([(values, labels)] per split, or []) cut
  alike."""
  sizes = [split.num_examples for _, split in splits]
  keep = np.zeros(sum(sizes), bool)
  keep[np.random.default_rng(seed).choice(len(keep), count, replace=False)] = True
  parts = np.split(keep, np.cumsum(sizes)[:-1])
  return ([(name, _subset(split, part)) for (name, split), part in zip(splits, parts)],
          [(values[part], labels[part]) for (values, labels), part in zip(features, parts)],
          [np.flatnonzero(part) for part in parts])


def _labels(split: Split) -> np.ndarray:
  """int32 [N] (multi-hot [N, L]) labels of `split` in its order, without a backbone."""
  batches = split.dataset().map(lambda image, label: label).batch(1024)
  return np.concatenate([np.asarray(batch) for batch in batches.as_numpy_iterator()])


def backbone_is_trained(weights: str, *, selected_phase: str | None = None) -> bool:
  """Whether the audit's backbone features mean anything.

  Args:
    weights: the run's model.weights ('none' = random initial weights).
    selected_phase: for a finished run, whose backbone.weights.h5 the audit uses, the phase
      of its selected epoch: a 'finetune' epoch's backbone was trained; a head epoch's is
      still the initial one (random with weights='none').
  """
  return weights != 'none' or selected_phase == 'finetune'


def tag_sets(multi_hot: np.ndarray, label_names) -> tuple[np.ndarray, tuple[str, ...]]:
  """Multi-label images as the audit compares them: each distinct set of labels one class.

  Args:
    multi_hot: 0/1 [N, num_labels].
    label_names: the labels' names.

  Returns:
    (int64 [N] each image's tag-set id, the tag sets' names: their labels joined by '|',
    '(no label)' for the empty set). Two copies of an image with different sets are a label
    conflict, as two copies with different classes are.
  """
  sets, ids = np.unique(np.asarray(multi_hot) > 0.5, axis=0, return_inverse=True)
  names = tuple('|'.join(name for name, given in zip(label_names, row) if given)
                or '(no label)' for row in sets)
  return ids.reshape(-1).astype(np.int64), names


# Why a multi-label audit lists no label errors.
MULTI_LABEL_NOT_JUDGED = (
    'not judged: label-error detection is single-label only (its label model compares an '
    "image's one class with the others, and a set of labels is not one class); duplicates, "
    'conflicts between copies, leakage and outliers (within each set of labels) are judged '
    'as usual')


def _without_label_errors(findings: dict) -> dict:
  """`findings` of multi-label data with the label-error judgement taken out and said so."""
  counts = {key: value for key, value in findings['counts'].items()
            if key not in findings_lib.LABEL_COUNTS}
  return {**findings, 'label_errors': [], 'hard_or_ambiguous': [], 'counts': counts,
          # Single-label only comes first: no other reason would make it judge tag sets.
          'not_judged': {**findings.get('not_judged', {}),
                         'label_errors': MULTI_LABEL_NOT_JUDGED}}


def write(workdir: Workdir, findings: dict) -> None:
  """Writes audit.json and, when there are images to show, audit_thumbnails.png."""
  buffer = io.BytesIO()
  if thumbnails.write_sheet(findings, buffer):
    with tf.io.gfile.GFile(workdir.file(THUMBNAILS_FILE), 'wb') as f:
      f.write(buffer.getvalue())
    findings['thumbnails'] = THUMBNAILS_FILE
  workdir.write_json(AUDIT_FILE, findings)


def _run_config(run: Workdir, config: ml_collections.ConfigDict | None
                ) -> tuple[ml_collections.ConfigDict, int, bool]:
  """(config, image size, whether `run` holds a run): the run's config and planned size, or
  `config` and its size (the backbone's native one for 'auto') when the workdir holds no
  run."""
  if run.exists(workdir_lib.CONFIG):
    if config is not None:
      raise errors.InvalidValueError(
          f'--workdir={run.path} holds a training run; its config says what to audit. Drop '
          '--config, or pass a new --workdir to audit the data of a config.')
    saved = run.saved_config()
    plan = plan_lib.load(run)
    if plan is None:
      raise errors.InvalidValueError(
          f'The run in {run.path} stopped before it planned its training, so nothing says '
          'what to audit it with; re-run its train command first.')
    return saved, plan.image_size, True
  if config is None:
    raise errors.InvalidValueError(
        f'--workdir={run.path} holds no training run (no {workdir_lib.CONFIG}); pass '
        '--config=configs/X.py (and --config.data.path=...) to audit data before training.')
  config_lib.validate(config)
  size = config.model.image_size
  size = backbones.resolve_image_size(config.model.backbone,
                                      0 if size == config_lib.AUTO else size,
                                      config.model.get('preset', ''))
  backbones.check_weights(config.model.weights)
  return config, size, False


def audit_workdir(workdir: str, *, config: ml_collections.ConfigDict | None = None,
                  test_dir: str | None = None, exclusions_file: str | None = None,
                  test_columns: dict | None = None,
                  label_error_confidence: float | None = None) -> dict:
  """Audits the data of the run in `workdir` (or of `config`); writes audit.json.

  Embeddings come from the run's selected backbone (backbone.weights.h5) when the run has
  finished, else from the config's pretrained weights.

  Args:
    workdir: a training run's directory, or any directory to write the audit to (then
      `config` names the data and backbone).
    config: with a workdir that holds no run: a training config.
    test_dir: a held-out image folder (or manifest) with some or all of the classes,
      audited for leaks too.
    exclusions_file: write the files a run could leave out here (data.exclude_file).
    test_columns: a test manifest's columns (manifests.read's keywords); None = the run's.
    label_error_confidence: the exclusions list the flagged label errors at least this
      likely wrong; None = config.audit.label_error_exclusion_confidence.

  Returns:
    The findings, as written to workdir/audit.json.

  Raises:
    errors.InvalidValueError: --config with a run's workdir, or neither; a test folder
      with a class the data lacks; exclusions for data that is not an image folder.
    errors.NotFoundError: missing data or weights.
  """
  run = Workdir(workdir)
  config, image_size, is_run = _run_config(run, config)
  if exclusions_file and config.data.source != 'folder':
    raise errors.InvalidValueError(
        f'--write_exclusions lists files of an image folder; the data is '
        f'config.data.source={config.data.source!r}.')
  data = sources.load(config.data, seed=config.seed,
                      scan_cache=run.file(workdir_lib.FOLDER_SCAN) if is_run else None)
  test = None
  if test_dir:
    test, _ = restore.judged_data(test_dir, data.class_names,
                                  max_pixels=config.data.max_image_pixels,
                                  setting='--test_dir',
                                  columns=test_columns or manifest_source.columns(config.data),
                                  multi_label=data.multi_label)
  weights, selected_phase = config.model.weights, None
  if is_run and run.exists(workdir_lib.FINAL_METRICS) and run.exists(workdir_lib.BACKBONE):
    weights = run.file(workdir_lib.BACKBONE)
    selected_phase = (run.read_json(workdir_lib.FINAL_METRICS).get('selected') or {}).get(
        'phase')
  logging.info('Auditing %s with %s features from %s at %d px.', data.description,
               config.model.backbone, weights, image_size)
  with runtime.keras_policy('float32'):
    model = restore.build_model(config, image_size=image_size,
                                num_classes=len(data.class_names), weights=weights)
  extract = tf.function(lambda images: model.features(images, training=False),
                        reduce_retracing=True)
  findings = audit_data(data, extract=extract, image_size=image_size,
                        batch_size=config.train.batch_size, settings=config.audit,
                        seed=config.seed, test=test,
                        trained_backbone=backbone_is_trained(
                            config.model.weights, selected_phase=selected_phase),
                        features_saw_labels=selected_phase == 'finetune')
  findings.update(version=_VERSION, data=data.description, test_dir=test_dir,
                  embeddings={'backbone': config.model.backbone, 'weights': weights,
                              'image_size': image_size})
  write(run, findings)
  if exclusions_file:
    header = (f'Written by tftransfer-audit --workdir={workdir}; pass it as '
              '--config.data.exclude_file to leave these files out.')
    left_out = findings_lib.unlisted(findings, label_error_confidence=label_error_confidence)
    if left_out:
      logging.warning('The exclusions are incomplete: %s.', left_out)
      header += f' Incomplete: {left_out}.'
    exclusions.write_list(exclusions_file, config.data.path, findings_lib.exclusions(
        findings, label_error_confidence=label_error_confidence), header=header)
  return findings


def in_training(ready) -> None:
  """The train command's 'features ready' hook: audits a training run's data once, into
  audit.json and data_report.json's 'audit'.

  Called at the start of each phase: the first call audits (with the head phase's features
  when it computed them, else computing its own with the run's pretrained backbone); later
  calls and resumed runs find audit.json and do nothing. It aims at audit.in_training_share
  of the run's estimated training time (share.in_training_scope: a random sample of the
  images beyond those that fit, the label model chosen to fit what is left). Only the chief
  audits; a multi-worker run, whose workers each hold a shard of the features, and a run
  under a time budget leave the audit to `tftransfer-audit`.

  Args:
    ready: a training.loop.FeaturesReady (workdir, config, plan, data, runtime,
      features_model, features).
  """
  workdir, config, plan, data = ready.workdir, ready.config, ready.plan, ready.data
  if not config.audit.in_training or not ready.runtime.is_chief:
    return
  if workdir.read_json(AUDIT_FILE) is not None:
    return
  if plan.budget_seconds:
    # The audit's neighbour searches and label model take minutes on large data sets,
    # which a time budget would rather spend training.
    logging.info('Data audit skipped under train.time_budget_minutes; run tftransfer-audit '
                 '--workdir=%s after training.', workdir.path)
    return
  if ready.runtime.num_workers > 1:
    logging.info('Data audit skipped in a multi-worker run (each worker holds a shard of '
                 'the features); run tftransfer-audit --workdir=%s after training.',
                 workdir.path)
    return
  started = time.time()
  extract = tf.function(lambda images: ready.features_model(images, training=False),
                        reduce_retracing=True)
  share = config.audit.in_training_share

  def scope(images_per_second):
    return share_lib.in_training_scope(
        images=data.train.num_examples + data.val.num_examples, share=share,
        training_seconds=plan.training_seconds(images_per_second=images_per_second,
                                               num_train=data.train.num_examples,
                                               num_val=data.val.num_examples))
  findings = audit_data(data, extract=extract, image_size=plan.image_size,
                        batch_size=config.train.batch_size, settings=config.audit,
                        seed=config.seed, features=ready.features,
                        features_seconds=ready.features_seconds, scope=scope,
                        trained_backbone=backbone_is_trained(config.model.weights))
  findings.update(version=_VERSION, data=data.description,
                  embeddings={'backbone': config.model.backbone,
                              'weights': config.model.weights,
                              'image_size': plan.image_size})
  write(workdir, findings)
  covered = findings.get('in_training')
  logging.info('Data audit (%.1f s%s, %s):\n%s', time.time() - started,
               f"; {covered['why']}" if covered else '', workdir.file(AUDIT_FILE),
               findings_lib.summary(findings))
  workdir.write_json(workdir_lib.DATA_REPORT, {**data.report(), 'audit': findings})
