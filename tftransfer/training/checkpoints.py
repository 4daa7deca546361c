"""Checkpoints: what one holds, where each worker saves, and when every worker saves or stops.

A checkpoint holds the whole classifier (backbone and head, every weight and BatchNorm
statistic), the global step, and each training phase's optimizer state. The global step is
the run's position: the phase and epoch follow from it, so a killed run resumes where its
newest checkpoint left it. `checkpoint_of` is the one definition; training saves it and
restore.py reads it back. The newest checkpoints are for resuming; the selected epoch's
(selection.py) is copied to checkpoints/best/ and is the run's result.

In a multi-worker run every worker must save (checkpointing is a collective) but only the
chief's files count: the others save into scratch directories removed when they finish. And
every worker must save and stop at the same step, so the decision is all-reduced instead of
each consulting its own clock and signals.
"""

import shutil
import signal
import tempfile
import time
from typing import Mapping

from absl import logging
import keras
import tensorflow as tf

from tftransfer import files, runtime
from tftransfer.training import interrupts
from tftransfer.workdir import Workdir


BEST_DIR = 'best'  # checkpoints/best/: the selected epoch's checkpoint and best.json
BEST_FILE = 'best.json'


def checkpoint_of(model: keras.Model, step: tf.Variable,
                  optimizers: Mapping[str, keras.optimizers.Optimizer] | None = None,
                  elapsed_seconds: tf.Variable | None = None) -> tf.train.Checkpoint:
  """The checkpoint of a run: `model` (images -> logits), the global `step` and, when
  training, each phase's optimizer by phase name and the seconds the run has spent (its
  time budget counts them across resumed sessions).

  Optimizers are stored without float16's loss-scale wrapper, so a run can resume under
  another precision (the dynamic loss scale then restarts, and adapts within a few steps).
  """
  extra = {} if elapsed_seconds is None else {'elapsed_seconds': elapsed_seconds}
  return tf.train.Checkpoint(
      model=model, step=step, **extra,
      **{f'{name}_optimizer': getattr(optimizer, 'inner_optimizer', optimizer)
         for name, optimizer in (optimizers or {}).items()})


def best_checkpoint(run: Workdir) -> tuple[str | None, dict | None]:
  """(path, record) of the run's selected checkpoint (checkpoints/best/), or (None, None)
  for a run that has none yet (or was trained before tftransfer kept one)."""
  record = run.read_json(f'checkpoints/{BEST_DIR}/{BEST_FILE}')
  if not record:
    return None, None
  return f'{run.checkpoint_dir}/{BEST_DIR}/{record["checkpoint"]}', record


class Checkpointer:
  """Saves one run's checkpoints and decides, with every worker, when to save and stop."""

  def __init__(self, checkpoint: tf.train.Checkpoint, *, run: Workdir, rt: runtime.Runtime,
               every_secs: float, keep: int):
    """
    Args:
      checkpoint: from `checkpoint_of`.
      run: the workdir; the chief saves into its checkpoints/ directory.
      rt: the runtime (strategy, chief or not, number of workers).
      every_secs: save mid-epoch once this many seconds passed since the last save; 0 = only
        when asked to (epoch ends, stops).
      keep: checkpoints kept in the directory; 0 = all.
    """
    self.checkpoint, self.run, self.rt = checkpoint, run, rt
    self.every_secs = every_secs
    self.directory = run.checkpoint_dir if rt.is_chief else tempfile.mkdtemp(
        prefix='tftransfer_worker_checkpoints_')
    self.manager = tf.train.CheckpointManager(checkpoint, self.directory,
                                              max_to_keep=keep or None)
    self.last_save = time.time()

  @property
  def step(self) -> int:
    return int(self.checkpoint.step.numpy())

  def restore_latest(self) -> str | None:
    """Restores the chief's newest checkpoint, if any; returns its path."""
    latest = tf.train.latest_checkpoint(self.run.checkpoint_dir)
    if latest:
      self.checkpoint.restore(latest).assert_existing_objects_matched()
    return latest

  def save(self) -> None:
    self.manager.save(checkpoint_number=self.step)
    self.last_save = time.time()

  def keep_as_best(self, record: dict) -> None:
    """Copies the newest checkpoint (just saved at an epoch's end) to checkpoints/best/ and
    points best.json at it with `record` (the epoch's metrics). The copy is complete before
    best.json names it, so a kill at any moment leaves a consistent selection."""
    if not self.rt.is_chief:
      return
    latest = self.manager.latest_checkpoint
    name = latest.rsplit('/', 1)[-1]  # ckpt-N
    best_dir = f'{self.run.checkpoint_dir}/{BEST_DIR}'
    tf.io.gfile.makedirs(best_dir)
    for path in tf.io.gfile.glob(f'{latest}.*'):
      tf.io.gfile.copy(path, f'{best_dir}/{path.rsplit("/", 1)[-1]}', overwrite=True)
    files.write_json(f'{best_dir}/{BEST_FILE}', {**record, 'checkpoint': name})
    for path in tf.io.gfile.glob(f'{best_dir}/ckpt-*'):
      if not path.rsplit('/', 1)[-1].startswith(f'{name}.'):
        tf.io.gfile.remove(path)

  def at_boundary(self, *, always: bool, total_steps: int,
                  stop_request: interrupts.StopRequest) -> None:
    """Between steps: saves if `always` or due, and stops (after saving) if asked to.

    A save is due when `every_secs` have passed on the chief's clock; a stop when a signal
    asked this process (or, in a multi-worker run, any worker) to stop before `total_steps`.

    Raises:
      interrupts.Interrupted: a stop was requested; the checkpoint is saved.
    """
    due = bool(self.every_secs) and self.rt.is_chief and (
        time.time() - self.last_save > self.every_secs)
    stop = stop_request.signum is not None and self.step < total_steps
    if self.rt.num_workers > 1:
      due, stop = (self._any_worker(tf.constant([float(due), float(stop)])).numpy() > 0
                   ).tolist()
    if always or due or stop:
      self.save()
    if stop:
      signum = stop_request.signum
      cause = signal.Signals(signum).name if signum else 'another worker\'s stop request'
      message = (f'Stopped by {cause} at step {self.step} of {total_steps}, after saving a '
                 'checkpoint; re-run the same command to resume from it.')
      logging.warning(message)
      raise interrupts.Interrupted(message, signum)

  @tf.function
  def _any_worker(self, flags):
    """The flags summed over every worker (> 0 where any worker set them)."""
    strategy = self.rt.strategy
    return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(flags)),
                           axis=None)

  def close(self) -> None:
    """Removes a non-chief worker's scratch checkpoints."""
    if not self.rt.is_chief:
      shutil.rmtree(self.directory, ignore_errors=True)
