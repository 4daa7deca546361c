"""The decisions taken between steps: re-plan, end a phase for time, end it for no progress.

Each is a pure function of the plan, a clock reading (clock.py), the global step and the
metrics rows, so it is tested in milliseconds with readings made by hand; the training loop
asks them at its step and epoch boundaries and applies what they return.

    replanned      once a budgeted fine-tuning phase has timed MEASURE_STEPS steps, the plan
                   with its 'auto' length set to what fits at the measured speed (or None)
    out_of_time    why the phase must end before the steps up to an epoch's end ('' = it
                   need not): the budget left would not cover them and the epoch's evaluation
    no_progress    why the phase must end after an epoch ('' = it need not): no better
                   select_metric in train.early_stopping_patience epochs
"""

from tftransfer import plan as plan_lib
from tftransfer.clock import Reading
from tftransfer.training import budget, selection


def epoch_end_seconds(reading: Reading, *, num_val: int, batch_size: int) -> float:
  """About how long an epoch's end (evaluation, checkpoint) takes: the longest measured, or
  by the step's speed when that is longer."""
  per_image = (reading.seconds_per_step or 0.0) / batch_size / plan_lib.TRAIN_COST
  return max(num_val * per_image, reading.epoch_end_seconds)


def replanned(plan: plan_lib.Plan, phase: str, *, step: int, reading: Reading, num_val: int,
              batch_size: int) -> plan_lib.Plan | None:
  """The plan with fine-tuning's 'auto' length set to what fits the time left at the
  measured speed, once `phase` ('finetune', under a budget, planned by estimate and not yet
  re-planned) has MEASURE_STEPS timed steps; None when there is nothing to re-plan."""
  if (not plan.budget_seconds or phase != 'finetune' or plan.replanned
      or 'train.finetune_epochs' not in plan.decisions):
    return None
  finetune = plan.phase(phase)
  if reading.measured_steps < min(budget.MEASURE_STEPS, finetune.steps_per_epoch):
    return None
  per_step = reading.seconds_per_step
  end_seconds = epoch_end_seconds(reading, num_val=num_val, batch_size=batch_size)
  epochs = budget.epochs_after_measurement(
      seconds_left=budget.seconds_left(plan.budget_seconds, reading.elapsed),
      steps_done=step - finetune.first_step, seconds_per_step=per_step,
      steps_per_epoch=finetune.steps_per_epoch, epoch_end_seconds=end_seconds)
  return plan.with_finetune_epochs(epochs, (
      f'{per_step * 1000:.0f} ms a step measured: {epochs} epochs of about '
      f'{finetune.steps_per_epoch * per_step + end_seconds:.0f} s fit the budget'))


def out_of_time(plan: plan_lib.Plan, *, step: int, epoch_end: int, reading: Reading,
                evaluated: bool, num_val: int, batch_size: int) -> str:
  """Why the phase must end before training the steps from `step` to `epoch_end` ('' = it
  need not): the budget left would not cover them and the epoch's evaluation (by measured
  speed; before any measurement, only when no time is left at all).

  Args:
    plan: the run's plan (its budget_seconds; 0 = no budget, never out of time).
    step: the global step now.
    epoch_end: the global step the epoch under way ends at.
    reading: the clock, with this phase's measured speed.
    evaluated: whether the run has evaluated any epoch yet. Until then the run's first
      epoch always trains (on features, a head epoch takes seconds), so a budget spent on
      start-up never leaves an untrained head as the result.
    num_val: validation examples (an epoch's end evaluates them).
    batch_size: the global batch size.
  """
  if not plan.budget_seconds or step >= epoch_end or not evaluated:
    return ''
  left = budget.seconds_left(plan.budget_seconds, reading.elapsed)
  per_step = reading.seconds_per_step
  needed = 0.0 if per_step is None else (
      (epoch_end - step) * per_step
      + epoch_end_seconds(reading, num_val=num_val, batch_size=batch_size))
  if left > 0 and needed <= left:
    return ''
  if per_step is None:
    return 'the time budget is spent'
  return (f'the time budget leaves {max(left, 0):.0f} s, the rest of this epoch and its '
          f'evaluation need about {needed:.0f} s')


def no_progress(rows: list[dict], *, phase: str, metric: str, patience: int) -> str:
  """Why `phase` must end now, after its latest epoch ('' = it need not): `patience` (> 0)
  of its epochs without a new best `metric` (train.early_stopping_patience; 0 = never).
  Never without validation (no row has `metric`): nothing measures an improvement."""
  if not any(metric in row for row in rows):
    return ''
  if patience and selection.epochs_without_improvement(rows, metric, phase) >= patience:
    return f'no better {metric} in {patience} epochs (train.early_stopping_patience)'
  return ''
