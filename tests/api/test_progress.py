"""What a run from Python shows: bars in a notebook, the log lines in a script, and Keras
callbacks that see whole epochs only."""

from absl import logging
import keras

from tftransfer.api import progress


def test_a_script_shows_the_runs_log_lines_and_a_notebook_its_bars():
  # A plain script never parses absl's flags, so absl shows warnings only: a trial trained
  # for minutes with no line at all.
  assert progress.run_verbosity(bars=False, verbosity=logging.WARNING,
                                configured=False) == logging.INFO
  # --verbosity given (an absl app) or a level set otherwise is the caller's choice.
  assert progress.run_verbosity(bars=False, verbosity=logging.WARNING,
                                configured=True) == logging.WARNING
  assert progress.run_verbosity(bars=False, verbosity=logging.DEBUG,
                                configured=False) == logging.DEBUG
  # Bars hold the INFO lines back; warnings still show.
  assert progress.run_verbosity(bars=True, verbosity=logging.INFO,
                                configured=True) == logging.WARNING


class Recorder(keras.callbacks.Callback):
  def __init__(self):
    super().__init__()
    self.epochs = []

  def on_epoch_end(self, epoch, logs=None):
    self.epochs.append((epoch, logs['step']))


def test_a_partial_epochs_row_reaches_no_callback():
  # Capped by max_steps at step 7 inside head epoch 2, then continued: epoch 2 ends once.
  recorder = Recorder()
  display = progress.Display([recorder], bars=False)
  for row in ({'phase': 'head', 'epoch': 1, 'step': 5, 'val_accuracy': 0.5},
              {'phase': 'head', 'epoch': 2, 'step': 7, 'val_accuracy': 0.6, 'partial': True},
              {'phase': 'head', 'epoch': 2, 'step': 10, 'val_accuracy': 0.7}):
    display.epoch_end(row)
  assert recorder.epochs == [(0, 5), (1, 10)]
