"""The run's plan: what will be trained, decided once and saved in the workdir.

A `Plan` is one frozen value: the phases with their epochs and global steps, the image size,
mixup, class weighting, the runtime's precision, XLA, strategy and BatchNorm choices, every
'auto' decision with its reason, and the phases a run ended early and why. It is made by
`training.planning.make_plan` and only replaced, never changed: re-planning (a time budget
measuring its steps) and ending a phase early make a new plan, which the training loop
swaps in with one assignment. Step totals, the learning-rate schedules' lengths and the
progress line's totals are computed from it, never copied.

`save` and `load` are the only writer and reader of the workdir's plan file. A config keeps
'auto' where the user left it; `resolved_config` writes a plan's values into a copy, for
whoever needs a concrete config (a restored model, the log, the notebook API).
"""

import dataclasses
import math
from typing import Any

import ml_collections

from tftransfer import config as config_lib, workdir as workdir_lib

PHASES = ('head', 'finetune')
_VERSION = 2  # of the plan file's layout; files without a version predate it


@dataclasses.dataclass(frozen=True)
class Phase:
  """A training phase as a range of global steps."""
  name: str  # one of PHASES
  epochs: int  # as planned
  steps_per_epoch: int
  first_step: int
  ended_at: int | None = None  # the global step where it was ended early; None = not

  @property
  def planned_steps(self) -> int:
    """The steps its planned epochs take (its learning-rate schedule's length)."""
    return self.epochs * self.steps_per_epoch

  @property
  def end_step(self) -> int:
    return self.first_step + self.planned_steps if self.ended_at is None else self.ended_at

  def epoch_of(self, step: int) -> int:
    """The 0-based epoch of the phase that global `step` falls in."""
    return (step - self.first_step) // self.steps_per_epoch

  def epoch_stop(self, epoch: int) -> int:
    """The global step where 0-based `epoch` ends: a full epoch later, or where the phase
    ended early (the run's step cap aside: a row evaluated before this step is partial)."""
    return min(self.first_step + (epoch + 1) * self.steps_per_epoch, self.end_step)

  def epochs_done(self, step: int) -> int:
    """Epochs begun by global `step` (a cut epoch counts as done)."""
    return math.ceil((step - self.first_step) / self.steps_per_epoch)


@dataclasses.dataclass(frozen=True)
class EarlyStop:
  """A phase that ended before its planned epochs."""
  phase: str
  step: int  # the global step it ended at
  epochs_done: int
  reason: str


# A training step (forward, backward, update) costs about this many inferences (measured
# 3.0-3.4 for MobileNet-0.25 on this project's 2-core CPU at 96-224 px).
TRAIN_COST = 3.2


@dataclasses.dataclass(frozen=True)
class Plan:
  """What a run trains. Every field is a decision (explicit in the config, or 'auto' decided
  with the reason in `decisions`)."""
  image_size: int  # square input side in pixels
  head_epochs: int
  finetune_epochs: int
  steps_per_epoch: int  # training split // global batch size
  mixup_alpha: float  # 0 = off
  class_weighting: str  # 'none' | 'balanced'
  freeze_batchnorm: bool  # BatchNorm frozen (inference mode) while fine-tuning
  head_on_features: bool  # head phase on backbone features computed once
  precision: str  # one of config.PRECISIONS
  jit_compile: bool
  strategy: str  # one of config.STRATEGIES
  task: str = 'single_label'  # 'single_label' | 'multi_label'
  select_metric: str = 'val_accuracy'  # the metrics row's field that selects the best epoch
  max_steps: int = 0  # cap on global steps; 0 = none
  budget_seconds: float = 0.0  # the run's time budget; 0 = none
  decisions: dict = dataclasses.field(default_factory=dict)  # field -> (value, why)
  early_stops: tuple[EarlyStop, ...] = ()
  replanned: bool = False  # fine-tuning's length was re-planned from measured steps

  @property
  def phases(self) -> tuple[Phase, ...]:
    """The phases with epochs, laid end to end in global steps."""
    ended = {stop.phase: stop.step for stop in self.early_stops}
    laid, first = [], 0
    for name, epochs in zip(PHASES, (self.head_epochs, self.finetune_epochs)):
      if epochs:
        laid.append(Phase(name, epochs, self.steps_per_epoch, first, ended.get(name)))
        first = laid[-1].end_step
    return tuple(laid)

  @property
  def total_steps(self) -> int:
    """The global step where the run ends: its last phase's end, or the step cap."""
    end = self.phases[-1].end_step if self.phases else 0
    return min(end, self.max_steps) if self.max_steps else end

  def training_seconds(self, *, images_per_second: float, num_train: int,
                       num_val: int) -> float:
    """The run's estimated seconds of training from its backbone's measured inference speed
    (images/s at the plan's resolution): an epoch on images costs TRAIN_COST inferences per
    training image and one per validation image; a head phase on features costs its one
    feature pass (its epochs on features take next to nothing). Tracing is left out."""
    epoch = (num_train * TRAIN_COST + num_val) / images_per_second
    head = (((num_train + num_val) / images_per_second if self.head_on_features else
             self.head_epochs * epoch) if self.head_epochs else 0.0)
    return head + self.finetune_epochs * epoch

  def phase(self, name: str) -> Phase:
    return next(phase for phase in self.phases if phase.name == name)

  def phase_stop(self, name: str) -> int:
    """The step where phase `name` stops: its end, or the run's step cap."""
    return min(self.phase(name).end_step, self.total_steps)

  def describe(self) -> str:
    """'field -> value (why); ...' for every 'auto' decision, for the run's log."""
    return '; '.join(f'{field} -> {value} ({why})'
                     for field, (value, why) in self.decisions.items()) or 'none'

  def with_finetune_epochs(self, epochs: int, why: str) -> 'Plan':
    """The plan with fine-tuning re-planned to `epochs` (measured speed, `why`)."""
    return dataclasses.replace(
        self, finetune_epochs=epochs, replanned=True,
        decisions={**self.decisions, 'train.finetune_epochs': (epochs, why)})

  def ended_early(self, phase: str, step: int, reason: str) -> 'Plan':
    """The plan with `phase` ended at global `step`; the next phase starts there."""
    done = self.phase(phase).epochs_done(step)
    return dataclasses.replace(self, early_stops=self.early_stops + (
        EarlyStop(phase, step, done, reason),))

  def to_json(self) -> dict:
    fields = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
    return {**fields, 'version': _VERSION,
            'decisions': {field: list(decision) for field, decision in self.decisions.items()},
            'early_stops': [dataclasses.asdict(stop) for stop in self.early_stops]}

  @classmethod
  def from_json(cls, value: dict) -> 'Plan':
    value = {key: item for key, item in value.items() if key != 'version'}
    return cls(**{**value, 'decisions': {field: tuple(decision) for field, decision in
                                         value['decisions'].items()},
                  'early_stops': tuple(EarlyStop(**stop) for stop in value['early_stops'])})


# The config field behind each planned value, for resolved_config.
_CONFIG_FIELDS = {
    'image_size': 'model.image_size', 'head_epochs': 'train.head_epochs',
    'finetune_epochs': 'train.finetune_epochs', 'mixup_alpha': 'data.mixup_alpha',
    'class_weighting': 'train.class_weighting', 'freeze_batchnorm': 'train.freeze_batchnorm',
    'head_on_features': 'train.head_on_features', 'precision': 'train.mixed_precision',
    'jit_compile': 'train.jit_compile', 'strategy': 'distribute.strategy',
    'task': 'model.task', 'select_metric': 'train.select_metric'}


def resolved_config(config: ml_collections.ConfigDict, plan: Plan) -> ml_collections.ConfigDict:
  """A copy of `config` with every planned value written in place of 'auto'."""
  resolved = config_lib.copy_config(config)
  for name, path in _CONFIG_FIELDS.items():
    section, field = path.split('.')
    resolved[section][field] = getattr(plan, name)
  return resolved


def save(run: workdir_lib.Workdir, plan: Plan) -> None:
  run.write_json(workdir_lib.PLAN, plan.to_json())


def load(run: workdir_lib.Workdir) -> Plan | None:
  """The plan saved in `run`, or None before one was saved.

  A run saved before plans were whole values kept its resolved values in config.json and only
  its reasons in the plan file; its plan is rebuilt from those.
  """
  saved = run.read_json(workdir_lib.PLAN)
  if saved and 'version' in saved:
    return Plan.from_json(saved)
  legacy = run.read_json(workdir_lib.CONFIG)
  if legacy is None or isinstance(legacy['model']['image_size'], str):
    return None
  return _legacy_plan(legacy, saved or {}, run.read_json(workdir_lib.DATA) or {})


def _legacy_plan(config: dict, saved: dict, data: dict) -> Plan:
  model, train = config['model'], config['train']
  switch = {'true': True, 'false': False}
  num_train = sum(data.get('train_counts', [])) or train['batch_size']
  return Plan(
      image_size=model['image_size'], head_epochs=train['head_epochs'],
      finetune_epochs=train['finetune_epochs'],
      steps_per_epoch=max(num_train // train['batch_size'], 1),
      mixup_alpha=float(config['data'].get('mixup_alpha', 0.0)),
      class_weighting=train.get('class_weighting', 'none'),
      freeze_batchnorm=switch.get(train['freeze_batchnorm'], True),
      head_on_features=switch.get(train['head_on_features'], True),
      precision=train['mixed_precision'],
      jit_compile=switch.get(train['jit_compile'], False),
      strategy=config['distribute']['strategy'], max_steps=train.get('max_steps', 0),
      decisions={field: tuple(decision) for field, decision in
                 saved.get('decisions', {}).items()})


def config_values(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The planned fields that `config` sets itself (not 'auto'), by Plan field name."""
  values = {}
  for name, path in _CONFIG_FIELDS.items():
    section, field = path.split('.')
    if config[section][field] != config_lib.AUTO:
      values[name] = config[section][field]
  return values
