"""A run on disk brought back: its model from a checkpoint, its data, and folders judged by it.

Every command that reads a run (export, evaluate, report, audit, explain, the notebook API)
comes here; the workdir's files themselves are workdir.py, the run's plan plan.py.

    build_model(config, plan, num_classes)   the classifier a config and its plan describe,
                                             the one builder training and restoring share
    restore(W)                               W's model with a checkpoint's weights (by default
                                             its selected, best epoch), in float32
    run_data(W, config)                      the data W trained on, split as it was
    require_validation(W, uses, fix)         refuses what measures on W's validation split
                                             when W trained without one (val_fraction=0)
    judged_data(path, class_names)           a folder or manifest of images judged by a model:
                                             its classes matched to the model's by name
                                             (data/dataset.py's class_labels, the one rule)

A restored model is built under the float32 policy whatever precision the run trained in:
mixed-precision checkpoints hold float32 variables, and float32 compute makes exported
outputs float32 and reproducible on any device.
"""

import dataclasses
import os

import keras
import ml_collections
import numpy as np
import tensorflow as tf

from tftransfer import errors, plan as plan_lib, runtime, workdir as workdir_lib
from tftransfer.data import dataset, folders, manifest_source, manifests, sources
from tftransfer.model import transfer
from tftransfer.workdir import Workdir


@dataclasses.dataclass(frozen=True)
class TrainedModel:
  """A run's classifier with the facts needed to serve or evaluate it."""
  model: keras.Model  # images in 0-255, [B, image_size, image_size, 3] -> float32 logits
  config: ml_collections.ConfigDict  # the run's config with its plan's values resolved
  plan: plan_lib.Plan
  class_names: tuple[str, ...]  # in label order
  checkpoint: str  # the checkpoint the weights came from
  step: int  # training steps behind those weights
  final_metrics: dict | None  # final_metrics.json, None for an unfinished run
  # A multi-label run's threshold of each label (thresholds.json), in label order; None for
  # single-label runs (and multi-label ones not yet finished: 0.5 each is then used).
  thresholds: tuple[float, ...] | None = None

  @property
  def image_size(self) -> int:
    return self.plan.image_size

  @property
  def multi_label(self) -> bool:
    return self.plan.task == 'multi_label'

  def label_thresholds(self) -> np.ndarray:
    """float32 [num_classes]: the thresholds, 0.5 for a run without them."""
    return np.asarray(self.thresholds or (0.5,) * len(self.class_names), np.float32)


def build_model(config: ml_collections.ConfigDict, *, image_size: int, num_classes: int,
                weights: str | None = None) -> transfer.TransferModel:
  """The classifier of `config`'s model section at `image_size`, under the current Keras
  precision policy and tf.distribute scope.

  Args:
    config: a run's config (its model section is read).
    image_size: the planned input side in pixels.
    num_classes: the head's width.
    weights: the backbone's initial weights; None = config.model.weights.
  """
  model = config.model
  return transfer.build_model(
      backbone=model.backbone, num_classes=num_classes, image_size=image_size,
      width=model.width, weights=model.weights if weights is None else weights,
      dropout=model.dropout, pooling=model.pooling, head_init=model.head_init,
      head_init_stddev=model.head_init_stddev, preset=model.get('preset', ''))


def _saved_plan(run: Workdir) -> plan_lib.Plan:
  plan = plan_lib.load(run)
  if plan is None:
    raise errors.NotFoundError(f'The run in {run.path} has no plan yet: it stopped before '
                               'training began. Re-run its train command.')
  return plan


def restore(workdir: str, *, checkpoint: str | int = 'best',
            allow_unfinished: bool = False) -> TrainedModel:
  """Rebuilds a run's model (float32) and restores one of its checkpoints.

  Args:
    workdir: the training run's directory.
    checkpoint: 'best' (default: the epoch train.select_metric selected, the run's result),
      'last' (the newest checkpoint), or a global step whose checkpoint the run kept.
    allow_unfinished: restore a run that has no final_metrics.json yet.

  Raises:
    errors.NotFoundError: `workdir` holds no training run, no checkpoint, or none of that step.
    errors.InvalidValueError: the run is unfinished and `allow_unfinished` is False, or
      `checkpoint` is not best, last or a step number.
  """
  run = Workdir(workdir, create=False)
  config = run.saved_config()
  plan = _saved_plan(run)
  path = run.choose_checkpoint(checkpoint)
  final_metrics = run.read_json(workdir_lib.FINAL_METRICS)
  if final_metrics is None and not allow_unfinished:
    holder = run.training_holder()  # Read only for a refusal: it says why, and what to do.
    if holder is not None:
      raise errors.InvalidValueError(
          f'The run in {run.path} is training now (pid {holder.get("pid")} on host '
          f'{holder.get("host")}, since {holder.get("since")}): pass --allow_unfinished to '
          f'read its newest checkpoint ({os.path.basename(run.latest_checkpoint())}) as it '
          'is, or wait until it finishes.')
    raise errors.InvalidValueError(
        f'The run in {run.path} is unfinished (no {workdir_lib.FINAL_METRICS}; newest '
        f'checkpoint {os.path.basename(run.latest_checkpoint())}). Finish it by re-running its '
        'train command, or pass --allow_unfinished to use the newest checkpoint as it is.')
  class_names = tuple(run.read_json(workdir_lib.DATA)['class_names'])
  with runtime.keras_policy('float32'):
    model = build_model(config, image_size=plan.image_size, num_classes=len(class_names),
                        weights='none').model
  step = tf.Variable(0, dtype=tf.int64, trainable=False)
  # Every model weight must come back; the optimizers in the checkpoint are not needed.
  workdir_lib.checkpoint_of(model, step).restore(
      path).assert_existing_objects_matched().expect_partial()
  saved = run.read_json(workdir_lib.THRESHOLDS)
  thresholds = tuple(float(saved[name]) for name in class_names) if saved else None
  return TrainedModel(model=model, config=plan_lib.resolved_config(config, plan), plan=plan,
                      class_names=class_names, checkpoint=path, step=int(step.numpy()),
                      final_metrics=final_metrics, thresholds=thresholds)


def run_data(workdir: str, config: ml_collections.ConfigDict) -> dataset.Data:
  """The data a run trained on, split as it was: its validation split holds the images the
  run held out, its training split the ones it learned from.

  Raises:
    errors.InvalidValueError: the data changed since the run was trained (its validation split
      could now hold training images).
  """
  run = Workdir(workdir, create=False)
  # The run's scan cache: an unchanged folder is not decoded again.
  data = dataset.for_task(sources.load(config.data, seed=config.seed,
                                       scan_cache=run.file(workdir_lib.FOLDER_SCAN)),
                          config.model.task)
  changes = run.data_changes(data.summary())
  if changes:
    raise errors.InvalidValueError(
        f'The data changed since {workdir} was trained ({"; ".join(changes)}), so its '
        'validation split would no longer be the images it held out (some may be training '
        'images). Use the data as it was, or judge a separate test folder (evaluate --data).')
  return data


def require_validation(workdir: str, *, uses: str, fix: str) -> None:
  """Refuses, before any work, what measures on the validation split of the run in
  `workdir` when the run trained without one (config.data.val_fraction=0).

  Args:
    workdir: the training run.
    uses: what needs the split, e.g. 'to evaluate on'.
    fix: what to do instead, one sentence.

  Raises:
    errors.InvalidValueError: the run has no validation split.
  """
  summary = Workdir(workdir, create=False).read_json(workdir_lib.DATA) or {}
  size = summary.get('val_size', sum(summary.get('val_counts', [1])))
  if not size:
    raise errors.InvalidValueError(
        f'The run in {workdir} trained without validation (config.data.val_fraction=0), so '
        f'it has no validation split {uses}. {fix}')


def judged_data(path: str, class_names: tuple[str, ...], *, max_pixels: int,
                setting: str = '--data', columns: dict | None = None,
                multi_label: bool = False) -> tuple[dataset.Split, dict]:
  """Every usable image of `path`, a folder `path`/<class>/... or a manifest (a .csv, .tsv
  or .jsonl file read with `columns`, data/manifests.py), as one split labelled by the
  model's class order (the data may hold some of the model's classes), and its data report;
  `max_pixels` is the run's data.max_image_pixels. With `multi_label`, labels are multi-hot
  [len(class_names)] (a folder's image has the one label of its folder).

  Args:
    setting: the flag (or argument) that named `path`, as errors name it.
    columns: a manifest's image_column, label_column, label_delimiter, label_columns (a
      tuple) and split_column, as read(); None = the defaults. A split column's 'test' rows
      are judged when it has any, else every row.

  Raises:
    errors.NotFoundError: no such folder or manifest.
    errors.InvalidValueError: a class that is not one of the model's classes; a manifest
      row manifests.read refuses.
  """
  what = f'{setting}={path!r}'
  if path.lower().endswith(manifests.EXTENSIONS):
    return _manifest_data(path, class_names, max_pixels=max_pixels, what=what,
                          columns=columns or {}, multi_label=multi_label)
  scan = folders.scan_folder(path, max_image_pixels=max_pixels, on_bad_image='skip',
                             setting=setting, min_classes=1)
  labels = dataset.class_labels(scan.class_names, class_names, what=what)
  split = dataset.file_split(scan.files, labels[scan.labels], len(class_names),
                             max_pixels=max_pixels)
  if multi_label:
    split = dataset.multi_hot(split, len(class_names))
  report = {'description': f'image folder {path!r}', 'scan': scan.summary(), 'warnings': [],
            'split_sizes': {'judged': split.num_examples},
            'classes': [{'name': name, 'judged': count}
                        for name, count in zip(class_names, split.class_counts)]}
  return split, report


def _manifest_data(path: str, class_names: tuple[str, ...], *, max_pixels: int, what: str,
                   columns: dict, multi_label: bool) -> tuple[dataset.Split, dict]:
  manifest = manifests.read(path, **columns)
  rows = manifest.rows
  if any(row.split == 'test' for row in rows):
    rows = tuple(row for row in rows if row.split == 'test')
  usable, summary = manifest_source.usable_rows(
      dataclasses.replace(manifest, rows=rows), max_image_pixels=max_pixels,
      on_bad_image='skip', scan_cache=None)
  found = sorted({label for row in usable for label in row.labels})
  dataset.class_labels(found, class_names, what=what)  # raises for a label the model lacks
  index = {name: label for label, name in enumerate(class_names)}
  if multi_label:
    labels = np.zeros((len(usable), len(class_names)), np.float32)
    for position, row in enumerate(usable):
      labels[position, [index[label] for label in row.labels]] = 1
  else:
    several = [row for row in usable if len(row.labels) != 1]
    if several:
      raise errors.InvalidValueError(
          f'{what}: line {several[0].line} gives {list(several[0].labels)}, but the model is '
          'single-label: judge it on data with one label an image.')
    labels = np.asarray([index[row.labels[0]] for row in usable], np.int32)
  split = dataset.file_split([row.file for row in usable], labels, len(class_names),
                             max_pixels=max_pixels)
  report = {'description': f'manifest {path!r}', 'scan': summary, 'warnings': [],
            'split_sizes': {'judged': split.num_examples},
            'classes': [{'name': name, 'judged': count}
                        for name, count in zip(class_names, split.class_counts)]}
  return split, report
