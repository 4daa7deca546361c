"""Keeping a run to its time budget while it trains (budget.py plans before training).

    replan_if_due   once a budgeted fine-tuning phase has measured steps, sets its 'auto'
                    length to what fits at the measured speed (the schedule follows)
    out_of_time     whether the time left covers the steps up to an epoch's end and the
                    epoch's evaluation; the loop ends the phase when it does not
"""

import dataclasses

from absl import logging

from tftransfer import config as config_lib
from tftransfer.training import budget as budget_lib, planning
from tftransfer.training.phases import Phase
from tftransfer.training.state import RunState


def _eval_seconds(run: RunState, phase: Phase) -> float:
  """About how long an epoch's end (evaluation, checkpoint) takes: the longest measured, or
  by the step's speed when longer."""
  per_step = run.clock.seconds_per_step(phase.name) or 0.0
  per_image = per_step / run.config.train.batch_size / budget_lib.TRAIN_COST
  return max(run.data.val.num_examples * per_image, run.clock.epoch_end_seconds)


def replan_if_due(run: RunState, phase: Phase) -> None:
  """Once a budgeted fine-tuning phase has MEASURE_STEPS timed steps, sets its epochs (when
  they were 'auto') to what fits the time left at the measured speed."""
  why = run.setup.auto_decisions.get('train.finetune_epochs', (None, ''))[1]
  if (not run.budget or phase.name != 'finetune' or 'by estimate' not in why or run.replanned
      or run.clock.measured_steps(phase.name) < min(budget_lib.MEASURE_STEPS,
                                                    phase.steps_per_epoch)):
    return
  per_step = run.clock.seconds_per_step(phase.name)
  end_seconds = _eval_seconds(run, phase)
  epochs = budget_lib.epochs_after_measurement(
      seconds_left=run.budget.left(), steps_done=run.current_step - phase.first_step,
      seconds_per_step=per_step, steps_per_epoch=phase.steps_per_epoch,
      epoch_end_seconds=end_seconds)
  _set_finetune_epochs(run, phase, epochs, (
      f'{per_step * 1000:.0f} ms a step measured: {epochs} epochs of about '
      f'{phase.steps_per_epoch * per_step + end_seconds:.0f} s fit the budget'))


def _set_finetune_epochs(run: RunState, phase: Phase, epochs: int, why: str) -> None:
  new = dataclasses.replace(phase, epochs=epochs)
  run.phases = [new if p.name == phase.name else p for p in run.phases]
  run.total_steps = new.end_step if not run.config.train.max_steps else min(
      new.end_step, run.config.train.max_steps)
  run.reporter.total_steps = run.total_steps
  run.schedules[phase.name].set_total_steps(epochs * phase.steps_per_epoch)
  run.replanned = True
  config = config_lib.mutable_copy(run.config)
  config.train.finetune_epochs = epochs
  run.setup = dataclasses.replace(run.setup, config=config, auto_decisions={
      **run.setup.auto_decisions, 'train.finetune_epochs': (epochs, why)})
  logging.info('Time budget: fine-tuning re-planned to %d epochs (%s).', epochs, why)
  if run.setup.runtime.is_chief:
    run.workdir.save_experiment(config, run.data.summary())
    planning.save(run.workdir, run.setup, finetune_replanned=True)


def out_of_time(run: RunState, phase: Phase, epoch_end: int) -> str:
  """Why the phase must end before the steps up to `epoch_end` ('' = it need not): the
  budget left would not cover them and the epoch's evaluation (by measured speed; before
  any measurement, only when no time is left at all)."""
  if not run.budget or run.current_step >= epoch_end:
    return ''
  if not run.rows:
    # Nothing evaluated yet: the run's first epoch always trains (on features, a head epoch
    # takes seconds), so a budget spent on start-up never leaves an untrained head as the
    # result; the run then ends after it, over its budget, and says so.
    return ''
  left = run.budget.left()
  per_step = run.clock.seconds_per_step(phase.name)
  needed = 0.0 if per_step is None else (
      (epoch_end - run.current_step) * per_step + _eval_seconds(run, phase))
  if left > 0 and needed <= left:
    return ''
  if per_step is None:
    return 'the time budget is spent'
  return (f'the time budget leaves {max(left, 0):.0f} s, the rest of this epoch and its '
          f'evaluation need about {needed:.0f} s')
