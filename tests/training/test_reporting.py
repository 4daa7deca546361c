"""Where training's results go: a partial epoch's row (a run capped inside it) is marked,
and the epoch's row on completion replaces it and covers the whole epoch."""

import numpy as np
import pytest

from tftransfer import plan as plan_lib
from tftransfer.training import reporting
from tftransfer.training.steps import Sums
from tftransfer.workdir import Workdir

HEAD = plan_lib.Phase('head', epochs=4, steps_per_epoch=5, first_step=0)


def _val():
  return Sums(loss=8.0, correct=6.0, count=10.0, class_correct=np.array([3.0, 3.0]),
              class_count=np.array([5.0, 5.0]))


def test_a_completed_epoch_averages_its_pieces_by_steps():
  partial = {'phase': 'head', 'epoch': 2, 'step': 7, 'seconds': 2.0, 'train_loss': 1.0,
             'train_accuracy': 0.5, 'partial': True}
  rest = {'phase': 'head', 'epoch': 2, 'step': 10, 'seconds': 3.0, 'train_loss': 2.0,
          'train_accuracy': 0.0, 'val_accuracy': 0.6}
  # Epoch 2 is steps 6-10: the partial row covers 2 of them, the rest 3.
  whole = reporting.whole_epoch(rest, partial, epoch_start=5)
  assert whole == {**rest, 'seconds': 5.0, 'train_loss': 1.6, 'train_accuracy': 0.2}


def test_a_partial_epochs_row_is_marked_and_replaced_when_the_epoch_completes(tmp_path):
  run = Workdir(str(tmp_path / 'run'))
  reporter = reporting.Reporter(run, is_chief=True)

  def epoch_end(epoch, step, loss, **kwargs):
    return reporter.epoch_end(phase=HEAD, epoch=epoch, step=step, val=_val(), seconds=1.0,
                              train=Sums(loss=loss * 8 * 5, correct=0.0, count=8.0 * 5),
                              train_seconds=0.5, learning_rate=1e-3, **kwargs)

  assert 'partial' not in epoch_end(0, 5, 1.0)
  assert epoch_end(1, 7, 1.0, partial=True)['partial'] is True  # capped at step 7
  assert [(row['step'], row.get('partial')) for row in run.read_metrics()] == [
      (5, None), (7, True)]
  completed = epoch_end(1, 10, 2.0)  # continued: steps 8-10 end the epoch
  rows = run.read_metrics()
  assert [(row['step'], row.get('partial')) for row in rows] == [(5, None), (10, None)]
  assert rows[-1] == completed
  assert completed['train_loss'] == pytest.approx((1.0 * 2 + 2.0 * 3) / 5)
  assert (completed['seconds'], completed['wall_seconds']) == (2.0, 3.0)
