"""The training phases: their place in global steps, what each trains, and its optimizer.

    head       the backbone frozen, the new head trained at train.head_lr
    finetune   the backbone's top train.unfreeze layers (or all) trained with the head at
               train.finetune_lr, BatchNorm frozen unless train.freeze_batchnorm says not

Each phase runs a warm-up + cosine schedule over its own steps and has its own optimizer, so
the two never share momentum or a learning-rate curve.
"""

import dataclasses

import keras
import ml_collections

from tftransfer.model import transfer
from tftransfer.training import optimization, resolve

PHASES = ('head', 'finetune')


@dataclasses.dataclass(frozen=True)
class Phase:
  """A training phase as a range of global steps."""
  name: str  # one of PHASES
  epochs: int
  steps_per_epoch: int
  first_step: int

  @property
  def end_step(self) -> int:
    return self.first_step + self.epochs * self.steps_per_epoch


def plan_phases(train: ml_collections.ConfigDict, steps_per_epoch: int) -> list[Phase]:
  """The phases with at least one epoch, laid end to end in global steps."""
  head = Phase('head', train.head_epochs, steps_per_epoch, 0)
  finetune = Phase('finetune', train.finetune_epochs, steps_per_epoch, head.end_step)
  return [phase for phase in (head, finetune) if phase.epochs]


def set_trainable(setup: resolve.RunSetup, model: transfer.TransferModel, phase: str) -> None:
  """Sets which weights of `model` the phase named `phase` trains."""
  transfer.set_trainable(model, train_backbone=phase == 'finetune', unfreeze=setup.unfreeze,
                         freeze_batchnorm=setup.freeze_batchnorm)


def learning_rate_schedule(setup: resolve.RunSetup,
                           phase: Phase) -> optimization.WarmupSchedule:
  """Warm-up, then cosine decay (or a constant rate) over the phase's steps, peaking at its
  learning rate."""
  train = setup.config.train
  return optimization.WarmupSchedule(
      peak_lr=train.head_lr if phase.name == 'head' else train.finetune_lr,
      total_steps=phase.epochs * phase.steps_per_epoch, warmup_fraction=train.warmup_fraction,
      decay=train.lr_schedule)


def build_optimizer(setup: resolve.RunSetup, model: transfer.TransferModel, phase: Phase,
                    schedule: optimization.WarmupSchedule) -> keras.optimizers.Optimizer:
  """The optimizer of `phase` at the learning rates of `schedule`, built for the variables
  the phase trains (so its state exists before a checkpoint is restored into it)."""
  train = setup.config.train
  set_trainable(setup, model, phase.name)
  variables = (model.head if phase.name == 'head' else model.model).trainable_variables
  return optimization.build_optimizer(
      name=train.optimizer, learning_rate=schedule, weight_decay=train.weight_decay,
      momentum=train.momentum, nesterov=train.nesterov, precision=setup.runtime.precision,
      variables=variables)
