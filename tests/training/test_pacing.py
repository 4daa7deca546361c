"""Pacing decisions as pure functions of the plan, a clock reading, the step and the rows:
re-planning from measured steps, ending a phase for time or for no progress."""

import pytest

from tftransfer.clock import Reading
from tftransfer.training import budget, pacing
from tests.test_plan import make_plan

BUDGETED = make_plan(budget_seconds=600.0, head_epochs=2, finetune_epochs=4,
                     steps_per_epoch=100,
                     decisions={'train.finetune_epochs': (4, 'by estimate')})
SIZES = dict(num_val=1000, batch_size=64)


def reading(elapsed=0.0, per_step=None, steps=0, epoch_end=0.0):
  return Reading(elapsed=elapsed, seconds_per_step=per_step, measured_steps=steps,
                 epoch_end_seconds=epoch_end)


def test_no_budget_never_runs_out_of_time():
  plan = make_plan()
  assert pacing.out_of_time(plan, step=0, epoch_end=5, reading=reading(elapsed=1e9),
                            evaluated=True, **SIZES) == ''


def test_the_first_epoch_always_trains_even_with_the_budget_spent():
  assert pacing.out_of_time(BUDGETED, step=0, epoch_end=100, reading=reading(elapsed=1e4),
                            evaluated=False, **SIZES) == ''
  assert pacing.out_of_time(BUDGETED, step=100, epoch_end=200, reading=reading(elapsed=1e4),
                            evaluated=True, **SIZES) == 'the time budget is spent'


def test_an_epoch_that_would_not_fit_ends_the_phase():
  left = budget.seconds_left(600.0, 500.0)  # 72 s after the margin
  fits = reading(elapsed=500.0, per_step=0.5, steps=40, epoch_end=5.0)  # 50 s + 5 s
  assert pacing.out_of_time(BUDGETED, step=250, epoch_end=300, reading=fits, evaluated=True,
                            **SIZES) == ''
  slow = reading(elapsed=500.0, per_step=1.0, steps=40, epoch_end=5.0)  # 50 s + 5 s
  assert pacing.out_of_time(BUDGETED, step=250, epoch_end=300, reading=slow, evaluated=True,
                            **SIZES) == ''
  # 100 s of steps, and 1000 validation images at 2 / 64 / 3.2 s each (9.8 s, more than 5).
  slower = reading(elapsed=500.0, per_step=2.0, steps=40, epoch_end=5.0)
  reason = pacing.out_of_time(BUDGETED, step=250, epoch_end=300, reading=slower,
                              evaluated=True, **SIZES)
  assert reason == (f'the time budget leaves {left:.0f} s, the rest of this epoch and its '
                    'evaluation need about 110 s')


def test_an_epoch_end_costs_the_longest_measured_or_the_evaluation_by_speed():
  # 1000 validation images at 0.32 s a step of 64: an inference costs 0.32 / 64 / 3.2 s.
  assert pacing.epoch_end_seconds(reading(per_step=0.32), **SIZES) == pytest.approx(1.5625)
  assert pacing.epoch_end_seconds(reading(per_step=0.32, epoch_end=9.0), **SIZES) == 9.0


def test_fine_tuning_is_replanned_once_from_measured_steps():
  early = reading(elapsed=100.0, per_step=0.2, steps=budget.MEASURE_STEPS - 1)
  assert pacing.replanned(BUDGETED, 'finetune', step=239, reading=early, **SIZES) is None
  measured = reading(elapsed=100.0, per_step=0.2, steps=budget.MEASURE_STEPS, epoch_end=5.0)
  assert pacing.replanned(BUDGETED, 'head', step=240, reading=measured, **SIZES) is None
  plan = pacing.replanned(BUDGETED, 'finetune', step=240, reading=measured, **SIZES)
  # 472 s left (600 - 3 % - 10 s - 100 s elapsed) plus the 40 steps done (8 s): 480 s for
  # epochs of 100 * 0.2 + 5 = 25 s, so 19.
  assert plan.finetune_epochs == 19 and plan.replanned
  assert '200 ms a step measured: 19 epochs of about 25 s' in plan.decisions[
      'train.finetune_epochs'][1]
  assert pacing.replanned(plan, 'finetune', step=300, reading=measured, **SIZES) is None
  explicit = make_plan(budget_seconds=600.0, steps_per_epoch=100, decisions={})
  assert pacing.replanned(explicit, 'finetune', step=400, reading=measured, **SIZES) is None


def test_no_progress_ends_a_phase_after_patience_epochs():
  rows = [{'phase': 'head', 'step': 5, 'val_accuracy': 0.5},
          {'phase': 'finetune', 'step': 10, 'val_accuracy': 0.4},
          {'phase': 'finetune', 'step': 15, 'val_accuracy': 0.45}]
  assert pacing.no_progress(rows, phase='finetune', metric='val_accuracy', patience=0) == ''
  assert pacing.no_progress(rows, phase='finetune', metric='val_accuracy', patience=3) == ''
  assert pacing.no_progress(rows, phase='finetune', metric='val_accuracy', patience=2) == (
      'no better val_accuracy in 2 epochs (train.early_stopping_patience)')


def test_without_validation_no_phase_ends_for_lack_of_progress():
  # Issue 28 kind 4: a run without validation (data.val_fraction=0) has rows without val_*;
  # nothing measures an improvement, so early stopping must not end its phases.
  rows = [{'phase': 'head', 'step': 5, 'train_loss': 1.0},
          {'phase': 'finetune', 'step': 10, 'train_loss': 0.9},
          {'phase': 'finetune', 'step': 15, 'train_loss': 0.8}]
  assert pacing.no_progress(rows, phase='finetune', metric='val_accuracy', patience=1) == ''
