"""A run's data-dependent decisions, made once its data is loaded: the 'auto' schedule
(schedule.py), what a time budget fits (budget.py) and class weights.

A resumed run re-reads what its first session decided (the workdir's plan.json), so its
schedules, resolution and weights do not change under it.
"""

import dataclasses

import numpy as np

from tftransfer import config as config_lib, errors
from tftransfer.data import sources
from tftransfer.training import budget as budget_lib, resolve, schedule
from tftransfer.workdir import Workdir

PLAN_FILE = 'plan.json'


def class_weights(counts, weighting: str, *, imbalance_ratio: float
                  ) -> tuple[np.ndarray | None, str, str]:
  """Loss weights per class: ('balanced' weights or None, resolved weighting, why).

  'balanced' weighs class c by n / (k * n_c) (n examples, k classes, n_c of class c), as
  scikit-learn's compute_class_weight('balanced'): the expected weight of an example is 1,
  so the loss keeps its scale. 'auto' = 'balanced' when the largest class has more than
  `imbalance_ratio` times the examples of the smallest (data.imbalance_warning_ratio).
  """
  counts = np.asarray(counts, np.float64)
  ratio = counts.max() / max(counts.min(), 1)
  if weighting == config_lib.AUTO:
    balanced = bool(imbalance_ratio) and ratio > imbalance_ratio
    weighting = 'balanced' if balanced else 'none'
    why = (f'classes {ratio:.1f} times apart in size, '
           f'{"more" if balanced else "not more"} than data.imbalance_warning_ratio='
           f'{imbalance_ratio:g}')
  else:
    why = 'as configured'
  if weighting == 'none':
    return None, weighting, why
  weights = counts.sum() / (len(counts) * np.maximum(counts, 1))
  return weights, weighting, why


def plan(setup: resolve.RunSetup, data: sources.Data, run_dir: Workdir,
         budget: budget_lib.Budget | None) -> resolve.RunSetup:
  """Resolves the data-dependent 'auto' fields of `setup.config` (schedule.FIELDS and
  train.class_weighting), with `budget` if given, or as the run's plan.json decided them.

  Raises:
    errors.InvalidValueError: the resolved schedule trains nothing, or an explicit image size
      is too small for the backbone.
  """
  config = config_lib.mutable_copy(setup.config)
  previous = (run_dir.read_json(PLAN_FILE) or {}).get('decisions')
  resolved = schedule.by_rules(config, data, previous=previous)
  decisions = dict(resolved.decisions)
  if budget and not previous:
    resolved, decisions = _fit_budget(config, data, resolved, decisions, budget)
  resolved.apply(config)
  if not config.train.head_epochs + config.train.finetune_epochs:
    raise errors.InvalidValueError(
        'config.train.head_epochs and finetune_epochs resolved to 0: nothing to train; set '
        'one of them (or a larger train.time_budget_minutes).')
  weighting = config.train.class_weighting
  if config_lib.is_auto(weighting) and previous and 'train.class_weighting' in previous:
    config.train.class_weighting, why = previous['train.class_weighting']
    decisions['train.class_weighting'] = (config.train.class_weighting,
                                          f'{why}; as planned when the run started')
  elif config_lib.is_auto(weighting):
    _, config.train.class_weighting, why = class_weights(
        data.train.class_counts, weighting, imbalance_ratio=config.data.imbalance_warning_ratio)
    decisions['train.class_weighting'] = (config.train.class_weighting, why)
  return dataclasses.replace(setup, config=config,
                             auto_decisions={**setup.auto_decisions, **decisions})


def _fit_budget(config, data: sources.Data, resolved: schedule.Schedule, decisions: dict,
                budget: budget_lib.Budget) -> tuple[schedule.Schedule, dict]:
  """Chooses resolution and fine-tuning epochs that fit `budget` (for the fields left 'auto'),
  by estimate; the fine-tuning epochs are planned again from measured steps later."""
  num_train, num_val = data.train.num_examples, data.val.num_examples
  head_seconds = resolved.head_epochs * 1.0  # an epoch on features costs about a second
  sizes = dict(backbone=config.model.backbone, width=config.model.width,
               batch_size=config.train.batch_size, num_train=num_train, num_val=num_val)
  if 'model.image_size' in decisions:
    cost, why = budget_lib.choose_image_size(
        **sizes, largest=resolved.image_size, seconds=budget.left(), head_seconds=head_seconds,
        min_finetune_epochs=resolved.finetune_epochs)
    decisions['model.image_size'] = (cost.image_size, why)
  else:
    cost = budget_lib.measure(**sizes, image_size=resolved.image_size)
  finetune_epochs = resolved.finetune_epochs
  if 'train.finetune_epochs' in decisions:
    finetune_epochs = cost.finetune_epochs(budget.left(), head_seconds)
    decisions['train.finetune_epochs'] = (finetune_epochs, (
        f'about {cost.finetune_epoch:.0f} s an epoch at {cost.image_size} px by estimate fit '
        f'the {budget.left():.0f} s left; planned again from the first measured steps'))
  return dataclasses.replace(resolved, image_size=cost.image_size,
                             finetune_epochs=finetune_epochs), decisions


def save(run_dir: Workdir, setup: resolve.RunSetup, **extra) -> None:
  """Writes plan.json: every 'auto' decision of `setup` and `extra` facts (early stops)."""
  existing = run_dir.read_json(PLAN_FILE) or {}
  run_dir.write_json(PLAN_FILE, {**existing, 'decisions': {
      field: list(decision) for field, decision in setup.auto_decisions.items()}, **extra})
