"""The one maker of a plan: rules for a new run, explicit values winning, a time budget's
estimates, and a resumed run keeping its first session's plan."""

import pytest

from tftransfer import config as config_lib, runtime
from tftransfer.training import budget, planning, rules
from tests.test_plan import make_plan


def _runtime(**changes):
  values = dict(strategy=None, strategy_name='one_device',
                precision=runtime.Precision.FLOAT32, jit_compile=False, is_chief=True,
                worker_index=0, num_workers=1,
                auto_decisions={'train.jit_compile': (False, 'CPU')})
  return runtime.Runtime(**{**values, **changes})


def _facts(num_train=40, num_val=10, counts=None, side=32):
  return planning.DataFacts(num_train, num_val, tuple(counts or (num_train // 2,) * 2),
                            lambda: side)


def _config(**fields):
  fields.setdefault('backbone', 'mobilenet')
  fields.setdefault('batch_size', 8)
  return config_lib.from_fields(**fields)


def no_speed(size):
  raise AssertionError('measured the speed without a budget')


def test_a_new_run_follows_the_rules_and_explicit_values_win():
  plan = planning.make_plan(_config(), _runtime(), _facts(), measure_speed=no_speed)
  assert (plan.image_size, plan.head_epochs, plan.finetune_epochs, plan.mixup_alpha) == (
      128, rules.head_epochs(40, 8)[0], rules.FINETUNE_EPOCHS['small'], 0.0)
  assert (plan.steps_per_epoch, plan.class_weighting) == (5, 'none')
  assert set(plan.decisions) >= set(planning.DATA_FIELDS) | {'train.jit_compile'}
  explicit = planning.make_plan(_config(finetune_epochs=3, image_size=64, mixup_alpha=0.2),
                                _runtime(), _facts())
  assert (explicit.finetune_epochs, explicit.image_size, explicit.mixup_alpha) == (3, 64, 0.2)
  assert 'train.finetune_epochs' not in explicit.decisions
  assert planning.make_plan(_config(image_size=0), _runtime(), _facts()).image_size == 224


def test_the_runtime_decides_batchnorm_and_features():
  plan = planning.make_plan(_config(weights='none'), _runtime(), _facts())
  assert plan.freeze_batchnorm is False and plan.head_on_features is True
  assert plan.decisions['train.freeze_batchnorm'] == (False,
                                                      'random initial statistics must learn')
  tpu = planning.make_plan(_config(), _runtime(strategy_name='tpu'), _facts())
  assert tpu.freeze_batchnorm is True and tpu.head_on_features is False


def test_class_weighting_follows_the_imbalance():
  assert planning.make_plan(_config(), _runtime(), _facts(
      num_train=220, counts=(200, 20))).class_weighting == 'none'  # 10x, not more
  assert planning.make_plan(_config(), _runtime(), _facts(
      num_train=210, counts=(200, 10))).class_weighting == 'balanced'
  weights = rules.class_weights([90, 10], 'balanced')
  assert weights.tolist() == pytest.approx([100 / (2 * 90), 100 / (2 * 10)])
  assert rules.class_weights([90, 10], 'none') is None


def test_a_budget_picks_the_largest_size_that_leaves_the_fine_tuning_it_wants():
  speeds = []

  def speed(size):
    speeds.append(size)
    return 1000.0  # images/sec at the smallest candidate

  config = _config(time_budget_minutes=5.0)
  plan = planning.make_plan(config, _runtime(), _facts(num_train=9000, num_val=1000),
                            measure_speed=speed)
  assert speeds == [96]
  sizes = budget.candidate_sizes('mobilenet', 128)
  expected, _ = budget.choose_image_size(
      1000.0, sizes=sizes, num_train=9000, num_val=1000,
      seconds=budget.seconds_left(300.0, 0.0), head_seconds=plan.head_epochs * 1.0,
      min_finetune_epochs=rules.FINETUNE_EPOCHS['medium'])
  assert plan.image_size == expected.image_size
  assert plan.finetune_epochs == expected.finetune_epochs(budget.seconds_left(300.0, 0.0),
                                                          plan.head_epochs * 1.0)
  assert 'by estimate' in plan.decisions['train.finetune_epochs'][1]
  assert plan.budget_seconds == 300.0


def test_a_resumed_run_keeps_its_plan_but_takes_this_sessions_runtime_and_cap():
  previous = make_plan(early_stops=(), decisions={'model.image_size': (96, 'first session'),
                                                  'train.jit_compile': (False, 'old')})
  plan = planning.make_plan(_config(max_steps=7, mixed_precision='bfloat16'),
                            _runtime(precision=runtime.Precision.BFLOAT16, auto_decisions={}),
                            _facts(), previous=previous, measure_speed=no_speed)
  assert (plan.image_size, plan.head_epochs, plan.finetune_epochs) == (96, 3, 4)
  assert (plan.precision, plan.max_steps) == ('bfloat16', 7)
  assert plan.decisions['model.image_size'] == (96, 'first session')
  assert 'train.jit_compile' not in plan.decisions  # explicit this session


def test_plans_that_cannot_train_are_refused():
  with pytest.raises(ValueError, match='batch_size=64 is larger than the training split'):
    planning.make_plan(_config(batch_size=64), _runtime(), _facts())
  with pytest.raises(ValueError, match='resolved to 0: nothing to train'):
    planning.make_plan(_config(head_epochs=0, time_budget_minutes=0.05), _runtime(),
                       _facts(), measure_speed=lambda size: 1.0)
  with pytest.raises(ValueError, match='too small for backbone'):
    planning.make_plan(_config(backbone='xception', image_size=32), _runtime(), _facts())
