"""A time-budgeted run plans what fits, re-plans from measured steps, and ends in time even
when its steps are slower than any estimate (a fake slow step)."""

import json
import time

import pytest

from tftransfer.training import budget, loop, steps
from helpers import tiny_config


@pytest.fixture
def slow_steps(monkeypatch):
  """Every training step takes at least `seconds` longer than it computes."""
  def set_delay(seconds):
    make = steps.make_train_loop

    def slow_make(*args, **kwargs):
      train_loop = make(*args, **kwargs)

      def slow_loop(iterator, num_steps):
        time.sleep(seconds * int(num_steps))
        return train_loop(iterator, num_steps)
      return slow_loop
    monkeypatch.setattr(steps, 'make_train_loop', slow_make)
  return set_delay


def test_a_budgeted_run_ends_within_its_budget_on_slow_steps(tmp_path, slow_steps,
                                                              monkeypatch):
  monkeypatch.setattr(budget, 'TRACE_SECONDS', 5.0)  # a 32-px MobileNet-0.25 traces fast
  slow_steps(0.3)  # 5 steps an epoch: 1.5 s an epoch more than it computes
  minutes = 1.0
  workdir = tmp_path / 'run'
  started = time.time()
  final = loop.train_and_evaluate(
      tiny_config(train__time_budget_minutes=minutes, train__head_epochs=1,
                  train__finetune_epochs='auto', train__steps_per_loop=1), str(workdir))
  seconds = time.time() - started
  assert seconds <= 60 * minutes, seconds
  plan = json.loads((workdir / 'plan.json').read_text())
  planned, why = plan['decisions']['train.finetune_epochs']
  rows = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  finetune = [row for row in rows if row['phase'] == 'finetune']
  assert finetune, 'the budget left room for fine-tuning, which did not run'
  # Planned by estimate (which knows nothing of the sleep), then re-planned from measured
  # steps, or cut short when the next epoch would not fit: either way, in time.
  replanned = plan.get('finetune_replanned') and 'measured' in why
  cut = [stop for stop in final['stopped_early'] if 'time budget' in stop['reason']]
  assert replanned or cut, plan
  assert len(finetune) <= planned


def test_estimates_scale_with_pixels_and_fit_epochs():
  small = budget.estimate(1000.0, measured_size=96, image_size=96, num_train=9000,
                          num_val=1000)
  large = budget.estimate(1000.0, measured_size=96, image_size=192, num_train=9000,
                          num_val=1000)
  assert large.finetune_epoch == pytest.approx(4 * small.finetune_epoch)
  assert small.finetune_epoch == pytest.approx((9000 * budget.TRAIN_COST + 1000) / 1000)
  assert small.features == pytest.approx(10.0)
  seconds = 10 + budget.TRACE_SECONDS + 3.5 * small.finetune_epoch
  assert small.finetune_epochs(seconds, head_seconds=0) == 3
  assert small.finetune_epochs(10 + budget.TRACE_SECONDS + 1, head_seconds=0) == 1
  assert small.finetune_epochs(10 + budget.TRACE_SECONDS, head_seconds=0) == 0
  assert budget.epochs_that_fit(100, 30) == 3 and budget.epochs_that_fit(10, 30) == 0


def test_fine_tuning_is_replanned_from_measured_steps():
  # 100 steps an epoch at 0.2 s and 5 s for each epoch's end: 25 s an epoch. 40 steps done
  # (8 s) and 92 s left: 100 s of phase, 4 epochs.
  assert budget.epochs_after_measurement(seconds_left=92, steps_done=40, seconds_per_step=0.2,
                                         steps_per_epoch=100, epoch_end_seconds=5) == 4
  # Slower than planned, with no time left: the epoch under way is still finished.
  assert budget.epochs_after_measurement(seconds_left=0, steps_done=140, seconds_per_step=1.0,
                                         steps_per_epoch=100, epoch_end_seconds=5) == 2


def test_explicit_epochs_are_cut_short_to_end_in_time(tmp_path, slow_steps, monkeypatch):
  monkeypatch.setattr(budget, 'TRACE_SECONDS', 5.0)
  slow_steps(0.3)
  workdir = tmp_path / 'run'
  started = time.time()
  final = loop.train_and_evaluate(
      tiny_config(train__time_budget_minutes=0.75, train__head_epochs=1,
                  train__finetune_epochs=40, train__steps_per_loop=1), str(workdir))
  assert time.time() - started <= 45
  (stop,) = final['stopped_early']  # 40 epochs of 1.5 s and more do not fit in 45 s
  assert stop['phase'] == 'finetune' and 'time budget' in stop['reason']
  assert final['step'] == 5 + 40 * 5  # the run is finished, at its planned end


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
