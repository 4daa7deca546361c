"""The one maker of a run's plan (tftransfer/plan.py): every 'auto' decided, with its reason.

    make_plan(config, runtime, facts, previous=..., elapsed=..., measure_speed=...)

decides, in this order: the runtime's choices for this session (runtime.py's strategy,
precision and XLA; BatchNorm freezing; the head on features), then, for a new run, the data's:
resolution, head and fine-tuning epochs and mixup by the rules of rules.py, or by what a time
budget fits (budget.py's estimates, from the backbone's speed measured here), and class
weighting. A resumed run keeps what its first session decided (its saved plan: the same
resolution, schedules and early stops), so nothing changes under it; only this session's
runtime and step cap are its own. Explicit values always win.

It is a pure function of its inputs but for `measure_speed`, which a test replaces.
"""

import dataclasses
from typing import Callable

import ml_collections

from tftransfer import config as config_lib, errors, plan as plan_lib, runtime
from tftransfer.data import dataset
from tftransfer.model import backbones
from tftransfer.training import budget, rules

AUTO = config_lib.AUTO
# The fields a new run's data decides, and the Plan field of each.
DATA_FIELDS = {'model.image_size': 'image_size', 'train.head_epochs': 'head_epochs',
               'train.finetune_epochs': 'finetune_epochs', 'data.mixup_alpha': 'mixup_alpha',
               'train.class_weighting': 'class_weighting', 'model.task': 'task',
               'train.select_metric': 'select_metric'}
# A head epoch on features takes about this long (budget planning).
HEAD_EPOCH_SECONDS = 1.0


@dataclasses.dataclass(frozen=True)
class DataFacts:
  """What planning reads of the data."""
  num_train: int
  num_val: int
  class_counts: tuple[int, ...]  # examples of each class (multi-label: that carry it)
  shorter_side: Callable[[], int]  # the images' typical shorter side (decodes a sample)
  multi_label: bool = False  # the data gives images several labels


def facts(data: dataset.Data) -> DataFacts:
  return DataFacts(data.train.num_examples, data.val.num_examples, data.train.class_counts,
                   lambda: rules.typical_shorter_side(data.train), data.multi_label)


def _runtime_choices(config: ml_collections.ConfigDict, rt: runtime.Runtime) -> tuple[dict,
                                                                                      dict]:
  """(Plan fields, decisions) this session's runtime decides."""
  train, decisions = config.train, dict(rt.auto_decisions)
  freeze_batchnorm = train.freeze_batchnorm
  if freeze_batchnorm == AUTO:  # Pretrained statistics are worth keeping; random ones are not.
    freeze_batchnorm = config.model.weights != 'none'
    decisions['train.freeze_batchnorm'] = (freeze_batchnorm, (
        'pretrained statistics are kept' if freeze_batchnorm else
        'random initial statistics must learn'))
  head_on_features = train.head_on_features
  if head_on_features == AUTO:
    # Features are computed outside strategy.run: right on CPU and GPU hosts, slow on TPUs.
    head_on_features = rt.strategy_name != 'tpu'
    decisions['train.head_on_features'] = (head_on_features, (
        'features computed once on the host' if head_on_features else
        'TPUs train the head on images faster than the host computes features'))
  return dict(freeze_batchnorm=freeze_batchnorm, head_on_features=head_on_features,
              precision=rt.precision.value, jit_compile=rt.jit_compile,
              strategy=rt.strategy_name, max_steps=train.max_steps), decisions


def _by_rules(config: ml_collections.ConfigDict, data: DataFacts) -> tuple[dict, dict]:
  """(values, decisions) of DATA_FIELDS: explicit ones as given, 'auto' ones by rules.py."""
  rule = {
      'model.image_size': lambda: rules.image_size(config.model.backbone, data.shorter_side(),
                                                    config.model.preset),
      'train.head_epochs': lambda: rules.head_epochs(data.num_train, config.train.batch_size),
      'train.finetune_epochs': lambda: rules.finetune_epochs(data.num_train),
      'data.mixup_alpha': lambda: rules.mixup_alpha(data.num_train),
      'train.class_weighting': lambda: rules.class_weighting(
          data.class_counts, config.data.imbalance_warning_ratio),
      'model.task': lambda: rules.task(data.multi_label),
      'train.select_metric': lambda: rules.select_metric(values['task']),
  }
  values, decisions = {}, {}
  for path, name in DATA_FIELDS.items():
    section, field = path.split('.')
    values[name] = config[section][field]
    if values[name] == AUTO:
      values[name], why = rule[path]()
      decisions[path] = (values[name], why)
  rules.check_select_metric(values['task'], values['select_metric'])
  values['image_size'] = backbones.resolve_image_size(config.model.backbone,
                                                      int(values['image_size']),
                                                      config.model.preset)
  return values, decisions


def _fit_budget(config: ml_collections.ConfigDict, data: DataFacts, values: dict,
                decisions: dict, *, seconds: float,
                measure_speed: Callable[[int], float]) -> None:
  """Sets the resolution and fine-tuning epochs left 'auto' to what fits in `seconds`, by
  estimate from the backbone's measured inference speed (fine-tuning is planned again from
  its measured steps later: pacing.py)."""
  head_seconds = values['head_epochs'] * HEAD_EPOCH_SECONDS
  sizes = dict(num_train=data.num_train, num_val=data.num_val)
  if 'model.image_size' in decisions:
    candidates = budget.candidate_sizes(config.model.backbone, values['image_size'],
                                        config.model.preset)
    cost, why = budget.choose_image_size(
        measure_speed(candidates[0]), sizes=candidates, seconds=seconds,
        head_seconds=head_seconds, min_finetune_epochs=values['finetune_epochs'], **sizes)
    values['image_size'] = cost.image_size
    decisions['model.image_size'] = (cost.image_size, why)
  else:
    size = values['image_size']
    cost = budget.estimate(measure_speed(size), measured_size=size, image_size=size, **sizes)
  if 'train.finetune_epochs' in decisions:
    values['finetune_epochs'] = cost.finetune_epochs(seconds, head_seconds)
    decisions['train.finetune_epochs'] = (values['finetune_epochs'], (
        f'about {cost.finetune_epoch:.0f} s an epoch at {cost.image_size} px by estimate fit '
        f'the {seconds:.0f} s left; planned again from the first measured steps'))


def make_plan(config: ml_collections.ConfigDict, rt: runtime.Runtime, data: DataFacts, *,
              previous: plan_lib.Plan | None = None, elapsed: float = 0.0,
              measure_speed: Callable[[int], float] | None = None) -> plan_lib.Plan:
  """The plan of `config` on `data` for this session.

  Args:
    config: the run's config as given (validated).
    rt: this session's runtime (its 'auto' decisions are the plan's too).
    data: what planning reads of the data.
    previous: the plan the run saved, when it resumes; its data decisions stand.
    elapsed: seconds the run has spent so far (a time budget counts them).
    measure_speed: image size -> the backbone's inference images/sec there (a budget needs
      it); None = budget.inference_speed on this machine.

  Raises:
    errors.InvalidValueError: a batch larger than the training split, an image size too
      small for the backbone, or a schedule that trains nothing.
  """
  steps_per_epoch = data.num_train // config.train.batch_size
  if not steps_per_epoch:
    raise errors.InvalidValueError(
        f'config.train.batch_size={config.train.batch_size} is larger than the training '
        f'split ({data.num_train} examples); lower the batch size.')
  session, decisions = _runtime_choices(config, rt)
  if previous is not None:
    kept = {path: why for path, why in previous.decisions.items() if path in DATA_FIELDS}
    return dataclasses.replace(previous, **session, decisions={**decisions, **kept})
  values, data_decisions = _by_rules(config, data)
  budget_seconds = 60.0 * config.train.time_budget_minutes
  if budget_seconds and {'model.image_size', 'train.finetune_epochs'} & set(data_decisions):
    if measure_speed is None:
      measure_speed = lambda size: budget.inference_speed(  # noqa: E731
          config.model.backbone, width=config.model.width, image_size=size,
          preset=config.model.preset,
          batch_size=config.train.batch_size)
    _fit_budget(config, data, values, data_decisions,
                seconds=budget.seconds_left(budget_seconds, elapsed),
                measure_speed=measure_speed)
  if not values['head_epochs'] + values['finetune_epochs']:
    raise errors.InvalidValueError(
        'config.train.head_epochs and finetune_epochs resolved to 0: nothing to train; set '
        'one of them (or a larger train.time_budget_minutes).')
  return plan_lib.Plan(
      image_size=int(values['image_size']), head_epochs=int(values['head_epochs']),
      finetune_epochs=int(values['finetune_epochs']), steps_per_epoch=steps_per_epoch,
      mixup_alpha=float(values['mixup_alpha']), class_weighting=values['class_weighting'],
      task=values['task'], select_metric=values['select_metric'],
      budget_seconds=budget_seconds, decisions={**decisions, **data_decisions}, **session)
