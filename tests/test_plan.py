"""The plan: one frozen value whose phases, step totals and early stops are derived, never
copied; saved and loaded whole; written into a config only on request."""

import dataclasses
import json

import pytest

from tftransfer import config as config_lib, plan as plan_lib
from tftransfer.workdir import Workdir


def make_plan(**changes) -> plan_lib.Plan:
  """A plan of 3 head and 4 fine-tuning epochs of 5 steps."""
  values = dict(image_size=96, head_epochs=3, finetune_epochs=4, steps_per_epoch=5,
                mixup_alpha=0.0, class_weighting='none', freeze_batchnorm=True,
                head_on_features=True, precision='float32', jit_compile=False,
                strategy='one_device',
                decisions={'train.finetune_epochs': (4, 'by rule')})
  return plan_lib.Plan(**{**values, **changes})


def test_phases_are_laid_end_to_end_and_totals_derive_from_them():
  plan = make_plan()
  assert [(p.name, p.first_step, p.end_step) for p in plan.phases] == [
      ('head', 0, 15), ('finetune', 15, 35)]
  assert plan.total_steps == 35 and plan.phase_stop('finetune') == 35
  assert make_plan(max_steps=17).total_steps == 17
  assert make_plan(max_steps=17).phase_stop('head') == 15
  assert [p.name for p in make_plan(head_epochs=0).phases] == ['finetune']
  assert make_plan(head_epochs=0).phase('finetune').first_step == 0
  phase = plan.phase('finetune')
  assert (phase.epoch_of(15), phase.epoch_of(19), phase.epoch_of(20)) == (0, 0, 1)
  assert phase.epochs_done(22) == 2  # a begun epoch counts


def test_the_training_estimate_counts_epochs_on_images_at_the_train_step_cost():
  # 900 training and 100 validation images at 100 images/s: an epoch on images costs
  # (900 x TRAIN_COST + 100) / 100 s, the head on features its one pass of 10 s.
  epoch = (900 * plan_lib.TRAIN_COST + 100) / 100
  estimate = make_plan().training_seconds(images_per_second=100, num_train=900, num_val=100)
  assert estimate == pytest.approx(10 + 4 * epoch)
  on_images = make_plan(head_on_features=False).training_seconds(
      images_per_second=100, num_train=900, num_val=100)
  assert on_images == pytest.approx(7 * epoch)
  assert make_plan(finetune_epochs=0).training_seconds(
      images_per_second=200, num_train=900, num_val=100) == pytest.approx(5)
  # No head epochs: no head feature pass either.
  assert make_plan(head_epochs=0).training_seconds(
      images_per_second=100, num_train=900, num_val=100) == pytest.approx(4 * epoch)


def test_an_epoch_stops_a_full_epoch_later_or_where_its_phase_ended_never_at_the_cap():
  # A row evaluated before its epoch's stop is partial: only the step cap stops a run there.
  capped = make_plan(max_steps=17).phase('finetune')
  assert [capped.epoch_stop(epoch) for epoch in range(4)] == [20, 25, 30, 35]
  assert make_plan(max_steps=17).phase_stop('finetune') == 17 < capped.epoch_stop(0)
  # A phase ended early (out of time at step 22) ends its last epoch there: not partial.
  ended = make_plan().ended_early('finetune', 22, 'the time budget is spent').phase('finetune')
  assert (ended.epoch_stop(0), ended.epoch_stop(1)) == (20, 22)


def test_a_plan_is_replaced_not_changed():
  plan = make_plan()
  with pytest.raises(dataclasses.FrozenInstanceError):
    plan.finetune_epochs = 9
  longer = plan.with_finetune_epochs(6, 'measured')
  assert (plan.total_steps, longer.total_steps) == (35, 45)
  assert longer.replanned and not plan.replanned
  assert longer.decisions['train.finetune_epochs'] == (6, 'measured')


def test_ending_a_phase_early_moves_what_follows_and_keeps_the_steps_trained():
  plan = make_plan().ended_early('head', 10, 'no progress')
  head, finetune = plan.phases
  assert (head.end_step, finetune.first_step, finetune.end_step) == (10, 10, 30)
  assert plan.total_steps == 30
  (stop,) = plan.early_stops
  assert (stop.phase, stop.step, stop.epochs_done, stop.reason) == ('head', 10, 2,
                                                                      'no progress')
  assert head.planned_steps == 15  # the learning-rate schedule keeps its planned length
  # A phase ended before its first step: the run ends where it stands.
  ended = plan.ended_early('finetune', 10, 'the time budget is spent')
  assert ended.total_steps == 10 and ended.early_stops[-1].epochs_done == 0


def test_the_plan_round_trips_through_its_file(tmp_path):
  run = Workdir(str(tmp_path / 'run'))
  assert plan_lib.load(run) is None
  plan = make_plan(budget_seconds=60.0).ended_early('head', 10, 'why').with_finetune_epochs(
      2, 'measured')
  plan_lib.save(run, plan)
  assert plan_lib.load(run) == plan
  saved = json.loads((tmp_path / 'run' / 'plan.json').read_text())
  assert saved['decisions']['train.finetune_epochs'] == [2, 'measured']


def test_resolved_config_writes_the_plan_into_a_copy():
  config = config_lib.default_config()
  resolved = plan_lib.resolved_config(config, make_plan())
  assert (resolved.model.image_size, resolved.train.finetune_epochs) == (96, 4)
  assert resolved.train.freeze_batchnorm is True and resolved.train.mixed_precision == 'float32'
  assert config.model.image_size == config_lib.AUTO  # the config itself keeps 'auto'
  assert resolved.is_locked


def test_a_run_from_before_whole_plans_is_read_from_its_resolved_config(tmp_path):
  run = Workdir(str(tmp_path / 'run'))
  legacy = config_lib.default_config().to_dict()
  legacy['model']['image_size'] = 128
  legacy['train'].update(head_epochs=10, finetune_epochs=3, batch_size=8,
                         freeze_batchnorm='true', head_on_features='true',
                         jit_compile='false', mixed_precision='float32')
  legacy['distribute']['strategy'] = 'one_device'
  legacy['data']['mixup_alpha'] = 0.0
  run.write_json('config.json', legacy)
  run.write_json('data.json', {'class_names': ['a', 'b'], 'train_counts': [20, 20]})
  run.write_json('plan.json', {'decisions': {'model.image_size': [128, 'rule']}})
  plan = plan_lib.load(run)
  assert (plan.image_size, plan.steps_per_epoch, plan.total_steps) == (128, 5, 65)
  assert plan.freeze_batchnorm is True and plan.decisions['model.image_size'] == (128, 'rule')
