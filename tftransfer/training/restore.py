"""A trained model brought back from a workdir: what export, evaluation and benchmarks start from.

The model is rebuilt from the run's `config.json` and `data.json` with random weights, then
every weight is restored from a checkpoint: by default the run's selected (best) epoch. It
is built under the float32 policy whatever precision the run trained in: mixed-precision
checkpoints hold float32 variables, and float32 compute makes exported outputs float32 and
reproducible on any device.
"""

import dataclasses
import os

import keras
import ml_collections
import tensorflow as tf

from tftransfer import config as config_lib, errors
from tftransfer.data import sources
from tftransfer.model import transfer
from tftransfer.training import checkpoints
from tftransfer.workdir import Workdir


@dataclasses.dataclass(frozen=True)
class TrainedModel:
  """A run's classifier with the facts needed to serve or evaluate it."""
  model: keras.Model  # images in 0-255, [B, image_size, image_size, 3] -> float32 logits
  config: ml_collections.ConfigDict  # the run's resolved configuration
  class_names: tuple[str, ...]  # in label order
  checkpoint: str  # the checkpoint the weights came from
  step: int  # training steps behind those weights
  final_metrics: dict | None  # final_metrics.json, None for an unfinished run

  @property
  def image_size(self) -> int:
    return self.config.model.image_size


CHECKPOINTS = ('best', 'last')  # or a global step number


def _choose_checkpoint(run: Workdir, which: str | int) -> str:
  """The checkpoint path of `which`: 'best' (the selected epoch's; the newest for runs that
  kept none), 'last' (the newest) or a step number (a kept checkpoint of that step)."""
  latest = tf.train.latest_checkpoint(run.checkpoint_dir)
  if latest is None:
    raise errors.NotFoundError(f'{run.checkpoint_dir} holds no checkpoint: the run in '
                               f'{run.path} has not saved one yet.')
  if which == 'last':
    return latest
  best, record = checkpoints.best_checkpoint(run)
  if which == 'best':
    return best or latest
  kept = {int(path.rsplit('-', 1)[-1]): path for path in
          tf.train.get_checkpoint_state(run.checkpoint_dir).all_model_checkpoint_paths}
  if record:
    kept.setdefault(record['step'], best)
  step = int(which)
  if step not in kept:
    raise errors.NotFoundError(
        f'--checkpoint={which}: the run in {run.path} keeps checkpoints of steps '
        f'{sorted(kept)} only; use one of them, best or last.')
  return kept[step]


def restore(workdir: str, *, checkpoint: str | int = 'best',
            allow_unfinished: bool = False) -> TrainedModel:
  """Rebuilds a run's model and restores one of its checkpoints.

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
  if str(checkpoint) not in CHECKPOINTS and not str(checkpoint).isdigit():
    raise errors.InvalidValueError(
        f'--checkpoint={checkpoint!r} must be best, last or a step number.')
  run = Workdir(workdir, create=False)
  if not run.exists('config.json'):
    raise errors.NotFoundError(
        f'--workdir={workdir!r} holds no training run (no config.json). Pass the workdir '
        'given to `tftransfer-train --workdir`.')
  # Fields added since the run was trained take their defaults.
  saved = run.read_json('config.json')
  config = config_lib.default_config()
  config.update(saved)
  if 'max_image_pixels' not in saved.get('data', {}):
    # A run from before data.max_image_pixels: its only limit was the serving one.
    config.data.max_image_pixels = saved.get('export', {}).get('max_image_pixels', 0)
  class_names = tuple(run.read_json('data.json')['class_names'])
  path = _choose_checkpoint(run, checkpoint)
  final_metrics = run.read_json('final_metrics.json')
  if final_metrics is None and not allow_unfinished:
    raise errors.InvalidValueError(
        f'The run in {run.path} is unfinished (no final_metrics.json; newest checkpoint '
        f'{os.path.basename(tf.train.latest_checkpoint(run.checkpoint_dir))}). Finish it by '
        're-running its train command, or pass --allow_unfinished to use the newest '
        'checkpoint as it is.')
  policy = keras.mixed_precision.dtype_policy()
  keras.mixed_precision.set_global_policy('float32')
  try:
    model = transfer.build_model(
        backbone=config.model.backbone, num_classes=len(class_names),
        image_size=config.model.image_size, width=config.model.width, weights='none',
        dropout=config.model.dropout, pooling=config.model.pooling)
  finally:
    keras.mixed_precision.set_global_policy(policy)
  step = tf.Variable(0, dtype=tf.int64)
  # Every model weight must come back; the optimizers in the checkpoint are not needed.
  checkpoints.checkpoint_of(model.model, step).restore(
      path).assert_existing_objects_matched().expect_partial()
  return TrainedModel(model=model.model, config=config, class_names=class_names,
                      checkpoint=path, step=int(step), final_metrics=final_metrics)


def run_data(workdir: str, config: ml_collections.ConfigDict) -> sources.Data:
  """The data a run trained on, split as it was: its validation split holds the images the
  run held out, its training split the ones it learned from.

  Raises:
    errors.InvalidValueError: the data changed since the run was trained (its validation split
      could now hold training images).
  """
  run = Workdir(workdir, create=False)
  # The run's scan cache: an unchanged folder is not decoded again.
  data = sources.load(config.data, seed=config.seed, scan_cache=run.file('folder_scan.json'))
  changes = run.data_changes(data.summary())
  if changes:
    raise errors.InvalidValueError(
        f'The data changed since {workdir} was trained ({"; ".join(changes)}), so its '
        'validation split would no longer be the images it held out (some may be training '
        'images). Use the data as it was, or judge a separate test folder (evaluate --data).')
  return data
