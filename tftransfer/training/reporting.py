"""Where training's results go: progress lines with an ETA, TensorBoard, metrics.jsonl rows
and final_metrics.json. Every worker logs; only the chief writes files.

    progress line   '<phase> epoch E/N step S/T: loss, acc, lr, img/s, about X s left'
    metrics.jsonl   one row per evaluated epoch (see `Reporter.epoch_end` for its keys)
    tensorboard/    train/* scalars at each progress line, val/* at each epoch end
"""

import hashlib
from typing import Callable

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from tftransfer import plan as plan_lib, workdir as workdir_lib
from tftransfer.clock import Reading
from tftransfer.training.steps import Sums
from tftransfer.workdir import Workdir


def weights_digest(model: keras.Model) -> str:
  """A short sha256 of every weight of `model`: equal digests mean bitwise-equal models."""
  digest = hashlib.sha256()
  for weight in model.weights:
    digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
  return digest.hexdigest()[:16]


def _val_metrics(val) -> dict:
  """A metrics row's val_* fields from validation sums or scores; {} for None (no
  validation)."""
  if val is None:
    return {}
  recall = [None if np.isnan(value) else round(float(value), 5) for value in val.recall]
  metrics = {'val_loss': round(val.mean_loss, 5), 'val_accuracy': round(val.accuracy, 5)}
  mean_average_precision = _map(val)
  if mean_average_precision:
    # Multi-label: accuracy is exact match (every label right at 0.5) and each label's
    # recall at 0.5; a mean of those recalls is no balanced accuracy.
    return {**metrics, 'val_label_recall': recall, **mean_average_precision}
  return {**metrics, 'val_balanced_accuracy': round(val.balanced_accuracy, 5),
          'val_recall': recall}


def _map(val) -> dict:
  """{'val_map': the mean average precision} of a multi-label evaluation; {} otherwise."""
  value = getattr(val, 'mean_average_precision', None)
  return {} if value is None else {'val_map': round(float(value), 5)}


def whole_epoch(row: dict, partial: dict, *, epoch_start: int) -> dict:
  """`row`, the end of an epoch a capped run began, made the whole epoch's: its training loss
  and accuracy averaged with the `partial` row's (which covers epoch_start to its step) by
  steps, its seconds added. Its images/sec stays this session's measurement."""
  before, after = partial['step'] - epoch_start, row['step'] - partial['step']

  def mean(key):
    return round((partial[key] * before + row[key] * after) / max(before + after, 1), 5)

  return {**row, 'seconds': round(partial['seconds'] + row['seconds'], 2),
          'train_loss': mean('train_loss'), 'train_accuracy': mean('train_accuracy')}


class Reporter:
  """A run's log lines, TensorBoard scalars and metrics files."""

  def __init__(self, run: Workdir, *, is_chief: bool,
               on_progress: Callable[[dict], None] | None = None,
               on_epoch_end: Callable[[dict], None] | None = None):
    """
    Args:
      run: the workdir (the chief writes metrics.jsonl and final_metrics.json there).
      is_chief: whether this process writes files.
      on_progress: called with every progress line's values (see `progress`).
      on_epoch_end: called with every finished epoch's metrics row.
    """
    self.run, self.is_chief = run, is_chief
    self.on_progress, self.on_epoch_end = on_progress, on_epoch_end
    self.writer = (tf.summary.create_file_writer(run.tensorboard_dir) if is_chief
                   else tf.summary.create_noop_writer())

  def progress(self, *, plan: plan_lib.Plan, phase: str, step: int, steps: int, sums: Sums,
               seconds: float, learning_rate: float, reading: Reading) -> None:
    """Logs the `steps` steps since the previous progress line (`sums` over `seconds`), with
    the time left in the phase at the clock's measured speed (this line's until it has one)."""
    planned = plan.phase(phase)
    per_step = reading.seconds_per_step or seconds / max(steps, 1)
    line = {'phase': phase, 'epoch': planned.epoch_of(step - 1) + 1, 'epochs': planned.epochs,
            'step': step, 'total_steps': plan.total_steps,
            'phase_steps': (step - planned.first_step,
                            plan.phase_stop(phase) - planned.first_step),
            'loss': sums.mean_loss, 'accuracy': sums.accuracy, 'learning_rate': learning_rate,
            'images_per_sec': sums.count / seconds if seconds else 0.0,
            'seconds_left': (plan.phase_stop(phase) - step) * per_step}
    logging.info('%s epoch %d/%d step %d/%d: loss %.4f %s %.4f lr %.2e, %.0f img/s, '
                 'about %.0f s left in this phase.', phase, line['epoch'], line['epochs'],
                 step, line['total_steps'], line['loss'],
                 'exact match' if plan.task == 'multi_label' else 'acc', line['accuracy'],
                 learning_rate, line['images_per_sec'], line['seconds_left'])
    if self.on_progress:
      self.on_progress(line)
    images_per_sec = line['images_per_sec']
    with self.writer.as_default(step=step):
      tf.summary.scalar('train/loss', sums.mean_loss)
      tf.summary.scalar('train/accuracy', sums.accuracy)
      tf.summary.scalar('train/learning_rate', learning_rate)
      tf.summary.scalar('train/images_per_sec', images_per_sec)

  def epoch_end(self, *, phase, epoch: int, step: int, train: Sums, val: Sums,
                seconds: float, train_seconds: float, learning_rate: float,
                partial: bool = False) -> dict:
    """Logs an evaluated epoch and appends its metrics.jsonl row; returns the row.

    A `partial` epoch (train.max_steps stopped the run inside it) has 'partial': True in its
    row; the epoch's next row replaces it and covers the whole epoch (`whole_epoch`).

    Args:
      phase: the plan.Phase.
      epoch: 0-based epoch within the phase.
      step: the global step at the epoch's end.
      train: the epoch's training sums (with augmentation, dropout, label smoothing).
      val: the validation sums at the epoch's end; None without validation (the row then
        has no val_* keys).
      seconds: the epoch's wall time, evaluation included.
      train_seconds: the time spent in training steps alone (for images/sec).
      learning_rate: at the epoch's end.
      partial: whether the run stops before the epoch's end (train.max_steps).
    """
    previous = self.run.read_metrics()
    multi_label = 'val_map' in _map(val)
    row = {
        'phase': phase.name, 'epoch': epoch + 1, 'epochs': phase.epochs, 'step': step,
        'seconds': round(seconds, 2),
        'wall_seconds': round((previous[-1]['wall_seconds'] if previous else 0) + seconds, 2),
        'train_loss': round(train.mean_loss, 5), 'train_accuracy': round(train.accuracy, 5),
        **_val_metrics(val),
        'images_per_sec': round(train.count / train_seconds, 1) if train_seconds else None,
        'learning_rate': learning_rate, **({'partial': True} if partial else {}),
    }
    epoch_start = phase.first_step + epoch * phase.steps_per_epoch
    begun = previous[-1] if previous else {}
    if begun.get('partial') and (begun['phase'], begun['epoch']) == (phase.name, epoch + 1):
      row = whole_epoch(row, begun, epoch_start=epoch_start)
    done = f'done in {seconds:.1f} s' + (
        f', partial: train.max_steps stopped the run after {step - epoch_start} of its '
        f'{phase.steps_per_epoch} steps (not selected, not counted for patience; a higher cap '
        'completes it)' if partial else '')
    if val is None:
      logging.info('%s epoch %d/%d %s: train loss %.4f acc %.4f (no validation).',
                   phase.name, epoch + 1, phase.epochs, done, train.mean_loss, train.accuracy)
    elif multi_label:
      logging.info('%s epoch %d/%d %s: train loss %.4f exact match %.4f, val loss %.4f exact '
                   'match %.4f mAP %.4f.', phase.name, epoch + 1, phase.epochs, done,
                   train.mean_loss, train.accuracy, val.mean_loss, val.accuracy,
                   row['val_map'])
    else:
      logging.info('%s epoch %d/%d %s: train loss %.4f acc %.4f, val loss %.4f acc %.4f '
                   'balanced acc %.4f.', phase.name, epoch + 1, phase.epochs, done,
                   train.mean_loss, train.accuracy, val.mean_loss, val.accuracy,
                   val.balanced_accuracy)
    if self.is_chief:
      self.run.append_metrics(row)
    if self.on_epoch_end:
      self.on_epoch_end(row)
    with self.writer.as_default(step=step):
      if val is None:
        tf.summary.scalar('epoch_seconds', seconds)
        return self._flushed(row)
      tf.summary.scalar('val/loss', val.mean_loss)
      tf.summary.scalar('val/accuracy', val.accuracy)
      if multi_label:
        tf.summary.scalar('val/mean_average_precision', row['val_map'])
      else:
        tf.summary.scalar('val/balanced_accuracy', val.balanced_accuracy)
      tf.summary.scalar('epoch_seconds', seconds)
    return self._flushed(row)

  def _flushed(self, row: dict) -> dict:
    self.writer.flush()
    return row

  def final(self, *, best: dict | None, last: Sums, metric: str, step: int,
            weights_sha256: str, stopped_early: list[dict], extra: dict) -> dict:
    """Builds the final metrics (written to final_metrics.json by the chief) and returns them.

    The top-level val_* are the selected epoch's (`best`, the metrics row whose checkpoint is
    the run's result); 'last' holds the last epoch's; 'stopped_early' lists phases that ended
    before their planned epochs, and why. 'validated' is false for a run without validation
    (config.data.val_fraction=0): it has no val_* and its result is the last epoch.

    Args:
      best: the selected epoch's metrics row (None: the last evaluation stands in).
      last: the last model's validation sums; None without validation.
      metric: the select metric (config.train.select_metric).
      step: the final global step.
      weights_sha256: the last model's weights_digest (equal on every worker).
      stopped_early: [{'phase', 'step', 'epochs_done', 'reason'}, ...].
      extra: facts of the run to record beside the results (sizes, backbone, precision).
    """
    rows = self.run.read_metrics()
    validated = last is not None
    chosen = _val_metrics(last)
    last_metrics = {'step': step, **{key: value for key, value in chosen.items()
                                     if key not in ('val_recall', 'val_label_recall')}}
    if rows and rows[-1]['step'] == step:
      last_metrics.update(phase=rows[-1]['phase'], epoch=rows[-1]['epoch'])
    chosen = best or {**chosen, **last_metrics}
    if best:
      description = f'{chosen["phase"]} epoch {chosen["epoch"]}, best {metric}'
    elif validated:
      description = 'the last model'
    else:
      description = ('the last epoch' + (f' ({chosen["phase"]} epoch {chosen["epoch"]})'
                                         if 'epoch' in chosen else '')
                     + ': no validation (config.data.val_fraction=0)')
    final = {
        **{key: chosen[key] for key in ('val_accuracy', 'val_loss', 'val_balanced_accuracy',
                                        'val_recall', 'val_map', 'val_label_recall')
           if key in chosen},
        'selected': {'metric': metric if validated else None, 'description': description,
                     'step': chosen['step'],
                     **{key: chosen[key] for key in ('phase', 'epoch') if key in chosen}},
        'validated': validated, 'last': last_metrics, 'stopped_early': stopped_early,
        'step': step, 'wall_seconds': rows[-1]['wall_seconds'] if rows else 0.0,
        # Epochs begun: a partial one (the run capped inside it) counts.
        'epochs': len({(row['phase'], row['epoch']) for row in rows}),
        **extra, 'weights_sha256': weights_sha256,
    }
    logging.info('Final weights sha256 %s (identical on every worker of a run).',
                 final['weights_sha256'])
    if self.is_chief:
      self.run.write_json(workdir_lib.FINAL_METRICS, final)
    return final
