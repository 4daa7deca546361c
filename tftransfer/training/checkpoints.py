"""Saving checkpoints while training: where each worker saves, and when every worker saves
or stops.

What a checkpoint holds is `workdir.checkpoint_of`, the one definition that restore.py reads
back: the whole classifier, the global step (the run's position: phase and epoch follow from
it with the plan, so a killed run resumes where its newest checkpoint left it), each phase's
optimizer and the run's clock. The newest checkpoints are for resuming; the selected epoch's
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
from typing import Callable

from absl import logging
import tensorflow as tf

from tftransfer import files, runtime, workdir as workdir_lib
from tftransfer.training import interrupts
from tftransfer.workdir import Workdir


class Checkpointer:
  """Saves one run's checkpoints and decides, with every worker, when to save and stop."""

  def __init__(self, checkpoint: tf.train.Checkpoint, *, run: Workdir, rt: runtime.Runtime,
               every_secs: float, keep: int, now: Callable[[], float] = time.time,
               older: tf.train.Checkpoint | None = None):
    """
    Args:
      checkpoint: from `workdir.checkpoint_of`.
      run: the workdir; the chief saves into its checkpoints/ directory.
      rt: the runtime (strategy, chief or not, number of workers).
      every_secs: save mid-epoch once this many seconds passed since the last save; 0 = only
        when asked to (epoch ends, stops).
      keep: checkpoints kept in the directory; 0 = all.
      now: the run's clock (clock.Clock.now), seconds.
      older: the same checkpoint without the model's random states (`checkpoint_of`'s
        with_random_states=False), to resume a run whose checkpoints predate them.
    """
    self.checkpoint, self.run, self.rt, self.older = checkpoint, run, rt, older
    self.every_secs = every_secs
    self.directory = run.checkpoint_dir if rt.is_chief else tempfile.mkdtemp(
        prefix='tftransfer_worker_checkpoints_')
    self.manager = tf.train.CheckpointManager(checkpoint, self.directory,
                                              max_to_keep=keep or None)
    self._now = now
    self.last_save = now()

  @property
  def step(self) -> int:
    return int(self.checkpoint.step.numpy())

  def restore_latest(self) -> str | None:
    """Restores the chief's newest checkpoint, if any; returns its path."""
    latest = self.run.latest_checkpoint()
    if not latest:
      return None
    if self.older is None or workdir_lib.holds_random_states(latest):
      self.checkpoint.restore(latest).assert_existing_objects_matched()
    else:
      self.older.restore(latest).assert_existing_objects_matched()
      logging.info('%s holds no dropout random state (an older checkpoint): dropout draws '
                   'afresh from here.', latest)
    return latest

  def save(self) -> None:
    self.manager.save(checkpoint_number=self.step)
    self.last_save = self._now()

  def keep_as_best(self, record: dict) -> None:
    """Copies the newest checkpoint (just saved at an epoch's end) to checkpoints/best/ and
    points best.json at it with `record` (the epoch's metrics). The copy is complete before
    best.json names it, so a kill at any moment leaves a consistent selection."""
    if not self.rt.is_chief:
      return
    latest = self.manager.latest_checkpoint
    name = latest.rsplit('/', 1)[-1]  # ckpt-N
    best_dir = self.run.best_dir
    tf.io.gfile.makedirs(best_dir)
    for path in tf.io.gfile.glob(f'{latest}.*'):
      tf.io.gfile.copy(path, f'{best_dir}/{path.rsplit("/", 1)[-1]}', overwrite=True)
    files.write_json(f'{best_dir}/{workdir_lib.BEST_RECORD}', {**record, 'checkpoint': name})
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
        self._now() - self.last_save > self.every_secs)
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
