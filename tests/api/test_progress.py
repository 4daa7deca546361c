"""What a notebook shows while a run trains: Keras callbacks see whole epochs only."""

import keras

from tftransfer.api import progress


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
