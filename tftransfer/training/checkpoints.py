"""Checkpoints: what one holds, where each worker saves, and when every worker saves or stops.

A checkpoint holds the whole classifier (backbone and head, every weight and BatchNorm
statistic), the global step, and each training phase's optimizer state. The global step is
the run's position: the phase and epoch follow from it, so a killed run resumes where its
newest checkpoint left it. `checkpoint_of` is the one definition; training saves it and
restore.py reads it back.

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

from tftransfer import runtime
from tftransfer.training import interrupts
from tftransfer.workdir import Workdir


def checkpoint_of(model: keras.Model, step: tf.Variable,
                  optimizers: Mapping[str, keras.optimizers.Optimizer] | None = None
                  ) -> tf.train.Checkpoint:
  """The checkpoint of a run: `model` (images -> logits), the global `step` and, when
  training, each phase's optimizer by phase name.

  Optimizers are stored without float16's loss-scale wrapper, so a run can resume under
  another precision (the dynamic loss scale then restarts, and adapts within a few steps).
  """
  return tf.train.Checkpoint(
      model=model, step=step,
      **{f'{name}_optimizer': getattr(optimizer, 'inner_optimizer', optimizer)
         for name, optimizer in (optimizers or {}).items()})


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
      keep: checkpoints kept in the directory.
    """
    self.checkpoint, self.run, self.rt = checkpoint, run, rt
    self.every_secs = every_secs
    self.directory = run.checkpoint_dir if rt.is_chief else tempfile.mkdtemp(
        prefix='tftransfer_worker_checkpoints_')
    self.manager = tf.train.CheckpointManager(checkpoint, self.directory, max_to_keep=keep)
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
