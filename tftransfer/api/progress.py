"""What a notebook shows while a run trains, and the Keras callbacks a notebook passes.

In Jupyter or Colab each phase is one bar that updates in place (tqdm: steps, epoch, loss,
accuracy, validation accuracy and the time left), and tftransfer's log lines are held back;
elsewhere (a script, a terminal) the run logs its usual INFO lines, as the train command
does, and draws no bar.

Keras callbacks get what a custom training loop can give them: `on_train_begin`, one
`on_epoch_end(epoch, logs)` per finished epoch of either phase with the epoch's metrics row
as `logs` (not for a partial epoch, where train.max_steps stopped the run: its row is in
clf.history, marked 'partial', until a continued run completes the epoch), and
`on_train_end(logs)` with the final metrics. Callbacks that need more (the
Keras model during training, batch-level hooks, control of the learning rate) are refused
before anything runs, naming tftransfer's own way to do what they do.
"""

import contextlib
import sys

from absl import flags, logging
import keras

from tftransfer import errors

# Keras callbacks that cannot work under tftransfer's loop, and what does their job.
REFUSED = {
    'ModelCheckpoint': "tftransfer keeps the best epoch's checkpoint itself (checkpoints/best/, "
                       'chosen by select_metric) and every epoch\'s with keep_checkpoints=0',
    'BackupAndRestore': 'the workdir is the run\'s whole state: create() with the same workdir '
                        'resumes it',
    'EarlyStopping': 'pass early_stopping_patience=N (and select_metric)',
    'ReduceLROnPlateau': 'the rate follows lr_schedule with warm-up; set head_lr, finetune_lr, '
                         'lr_schedule or warmup_fraction',
    'LearningRateScheduler': 'the rate follows lr_schedule with warm-up; set head_lr, '
                             'finetune_lr, lr_schedule or warmup_fraction',
    'TensorBoard': 'tftransfer writes TensorBoard logs to the workdir\'s tensorboard/ folder',
    'TerminateOnNaN': 'tftransfer stops on a non-finite loss itself (a DivergedError)',
    'ProgbarLogger': 'tftransfer draws its own progress bars in a notebook',
}
_BATCH_METHODS = ('on_batch_begin', 'on_batch_end', 'on_train_batch_begin',
                  'on_train_batch_end', 'on_test_batch_begin', 'on_test_batch_end',
                  'on_predict_batch_begin', 'on_predict_batch_end')


def in_notebook() -> bool:
  """Whether this process is a Jupyter or Colab kernel (an IPython shell with a kernel)."""
  ipython = sys.modules.get('IPython')
  shell = ipython.get_ipython() if ipython else None
  return shell is not None and hasattr(shell, 'kernel')


def check_callbacks(callbacks) -> list:
  """The callbacks, checked before anything runs.

  Raises:
    errors.InvalidValueError: a callback that is no keras.callbacks.Callback, one of REFUSED,
      or one that overrides a batch-level method (never called: tftransfer's loop runs
      steps_per_loop steps per call).
  """
  checked = list(callbacks or ())
  for callback in checked:
    if not isinstance(callback, keras.callbacks.Callback):
      raise errors.InvalidValueError(f'callbacks: {callback!r} is not a keras.callbacks.Callback.')
    kind = next((cls.__name__ for cls in type(callback).__mro__ if cls.__name__ in REFUSED),
                None)
    if kind:
      raise errors.InvalidValueError(f'callbacks: keras.callbacks.{kind} needs Keras\' own fit '
                                     f'loop; {REFUSED[kind]}.')
    batch = [name for name in _BATCH_METHODS
             if getattr(type(callback), name) is not getattr(keras.callbacks.Callback, name)]
    if batch:
      raise errors.InvalidValueError(
          f'callbacks: {type(callback).__name__} overrides {", ".join(batch)}, which '
          "tftransfer's loop never calls (it runs steps_per_loop steps per call); use "
          'on_epoch_end(epoch, logs), whose logs are the epoch\'s metrics row.')
  return checked


class Display:
  """Progress bars in a notebook (one per phase), Keras callbacks everywhere."""

  def __init__(self, callbacks: list, *, bars: bool):
    self.callbacks, self.bars = callbacks, bars
    self._bar, self._phase, self._epochs = None, None, 0
    self._postfix: dict = {}

  def begin(self) -> None:
    for callback in self.callbacks:
      callback.on_train_begin()

  def progress(self, line: dict) -> None:
    """A progress line of the run (training.reporting.Reporter.progress's values)."""
    if not self.bars:
      return
    done, total = line['phase_steps']
    if line['phase'] != self._phase:
      self._close_bar()
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      self._bar = tqdm(total=total, desc=line['phase'], unit='step', file=sys.stdout,
                       dynamic_ncols=True, leave=True)
      self._phase, self._postfix = line['phase'], {}
    self._bar.total = total  # a budget may re-plan the phase
    self._bar.n = done
    self._postfix.update(epoch=f'{line["epoch"]}/{line["epochs"]}', loss=f'{line["loss"]:.4f}',
                         acc=f'{line["accuracy"]:.4f}')
    self._bar.set_postfix(self._postfix, refresh=True)

  def epoch_end(self, row: dict) -> None:
    """An evaluated epoch's metrics row; callbacks see only whole epochs' (a partial
    epoch's row is no epoch: a continued run's row of that epoch replaces it)."""
    if not row.get('partial'):
      for callback in self.callbacks:
        callback.on_epoch_end(self._epochs, logs=dict(row))
      self._epochs += 1
    if self._bar is not None:
      if 'val_map' in row:  # multi-label: mean average precision, not exact match
        self._postfix['val_mAP'] = f'{row["val_map"]:.4f}'
      elif 'val_accuracy' in row:  # absent without validation (data.val_fraction=0)
        self._postfix['val_acc'] = f'{row["val_accuracy"]:.4f}'
      self._bar.set_postfix(self._postfix, refresh=True)

  def end(self, final: dict) -> None:
    self._close_bar()
    for callback in self.callbacks:
      callback.on_train_end(logs=dict(final))

  def _close_bar(self) -> None:
    if self._bar is not None:
      self._bar.close()
      self._bar = None

  @contextlib.contextmanager
  def logs(self):
    """The run's log lines as this display wants them (run_verbosity), restored after."""
    verbosity = logging.get_verbosity()
    logging.set_verbosity(run_verbosity(bars=self.bars, verbosity=verbosity,
                                        configured=flags.FLAGS.is_parsed()))
    try:
      yield
    finally:
      logging.set_verbosity(verbosity)
      self._close_bar()


def run_verbosity(*, bars: bool, verbosity: int, configured: bool) -> int:
  """The absl verbosity a run from Python logs at.

  Args:
    bars: progress bars draw (a notebook): INFO lines are held back, warnings still show.
    verbosity: the current absl verbosity.
    configured: whether absl's flags were parsed (an absl app, or --verbosity given).

  Returns:
    WARNING under bars; INFO in a script that never configured absl logging (absl shows
    warnings only before its flags are parsed, so the run would train for minutes in
    silence); else `verbosity` as the caller set it.
  """
  if bars:
    return logging.WARNING
  if not configured and verbosity == logging.WARNING:
    return logging.INFO
  return verbosity
