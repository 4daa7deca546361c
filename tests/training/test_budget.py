"""A time budget's estimates (pure functions; the decisions taken with them are
test_pacing.py's), and one budgeted run: a budget spent before training still trains and
judges one head epoch, and the run says the budget cut it."""

import json

import pytest

from tftransfer import plan as plan_lib
from tftransfer.training import budget, loop, pacing
from tests.helpers import tiny_config


def test_estimates_scale_with_pixels_and_fit_epochs():
  small = budget.estimate(1000.0, measured_size=96, image_size=96, num_train=9000,
                          num_val=1000)
  large = budget.estimate(1000.0, measured_size=96, image_size=192, num_train=9000,
                          num_val=1000)
  assert large.finetune_epoch == pytest.approx(4 * small.finetune_epoch)
  assert small.finetune_epoch == pytest.approx((9000 * plan_lib.TRAIN_COST + 1000) / 1000)
  assert small.features == pytest.approx(10.0)
  seconds = 10 + budget.TRACE_SECONDS + 3.5 * small.finetune_epoch
  assert small.finetune_epochs(seconds, head_seconds=0) == 3
  assert small.finetune_epochs(10 + budget.TRACE_SECONDS + 1, head_seconds=0) == 1
  assert small.finetune_epochs(10 + budget.TRACE_SECONDS, head_seconds=0) == 0


def test_the_largest_candidate_size_that_fits_is_chosen():
  sizes = budget.candidate_sizes('mobilenet', 224)
  assert sizes == [96, 128, 160, 192, 224]
  assert budget.candidate_sizes('inception_v3', 299) == [96, 128, 160, 192, 224, 256, 299]
  assert budget.candidate_sizes('mobilenet', 32) == [32]
  # 1000 img/s at 96 px: a fine-tuning epoch of 9000 + 1000 images costs 29.8 s there; at
  # 160 px 82.8 s, 4 of which fit in 400 s after 27.8 s of features and 30 s of tracing; at
  # 192 px 119 s, only 2.
  chosen, why = budget.choose_image_size(1000.0, sizes=sizes, num_train=9000, num_val=1000,
                                         seconds=400, head_seconds=0, min_finetune_epochs=3)
  assert chosen.image_size == 160 and 'about 4 fine-tuning epochs of 83 s' in why
  fallback, _ = budget.choose_image_size(1000.0, sizes=sizes, num_train=9000, num_val=1000,
                                         seconds=10, head_seconds=0, min_finetune_epochs=3)
  assert fallback.image_size == 96


def test_fine_tuning_is_replanned_from_measured_steps():
  # 100 steps an epoch at 0.2 s and 5 s for each epoch's end: 25 s an epoch. 40 steps done
  # (8 s) and 92 s left: 100 s of phase, 4 epochs.
  assert budget.epochs_after_measurement(seconds_left=92, steps_done=40, seconds_per_step=0.2,
                                         steps_per_epoch=100, epoch_end_seconds=5) == 4
  # Slower than planned, with no time left: the epoch under way is still finished.
  assert budget.epochs_after_measurement(seconds_left=0, steps_done=140, seconds_per_step=1.0,
                                         steps_per_epoch=100, epoch_end_seconds=5) == 2
  assert budget.seconds_left(100.0, 50.0) == pytest.approx(97.0 - 10.0 - 50.0)


def test_a_budget_spent_before_training_still_trains_and_judges_one_head_epoch(tmp_path):
  # 0.6 s: gone before the first step (start-up, data, features). The result must still be a
  # trained, evaluated head, not the untrained one, and the run must say the budget cut it.
  final = loop.train_and_evaluate(
      tiny_config(train__time_budget_minutes=0.01, train__head_epochs=3,
                  train__finetune_epochs=2), str(tmp_path / 'run'))
  assert final['selected']['phase'] == 'head' and final['selected']['epoch'] == 1
  assert [stop['phase'] for stop in final['stopped_early']] == ['head', 'finetune']
  assert all('time budget' in stop['reason'] for stop in final['stopped_early'])
  rows = [json.loads(line) for line in (tmp_path / 'run' / 'metrics.jsonl').open()]
  assert [(row['phase'], row['epoch']) for row in rows] == [('head', 1)]
  assert final['step'] == rows[-1]['step'] == 5  # the steps trained, not the plan's


@pytest.mark.slow
def test_a_budget_that_ends_a_phase_inside_an_epoch_leaves_a_whole_row(tmp_path,
                                                                        monkeypatch):
  # Out of time at step 7, inside head epoch 2 (steps 6-10): the phase ends there for good, so
  # its evaluation is the phase's last epoch, a candidate for selection, not a partial row
  # (the mark of a run capped by train.max_steps, which a continued run completes).
  monkeypatch.setattr(pacing, 'out_of_time', lambda plan, *, step, epoch_end, **_: (
      'the time budget is spent' if step == 7 < epoch_end else ''))
  final = loop.train_and_evaluate(
      tiny_config(train__head_epochs=4, train__finetune_epochs=0, train__steps_per_loop=1),
      str(tmp_path / 'run'))
  rows = [json.loads(line) for line in (tmp_path / 'run' / 'metrics.jsonl').open()]
  assert [(row['step'], row.get('partial')) for row in rows] == [(5, None), (7, None)]
  assert [(stop['step'], stop['epochs_done']) for stop in final['stopped_early']] == [(7, 2)]
