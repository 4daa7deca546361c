"""What each training phase trains, and its optimizer and learning-rate schedule.

    head       the backbone frozen, the new head trained at train.head_lr
    finetune   the backbone's top train.unfreeze layers (or all) trained with the head at
               train.finetune_lr, BatchNorm frozen unless the plan says not

Each phase runs a warm-up + cosine schedule over its own planned steps (plan.Phase) and has
its own optimizer, so the two never share momentum or a learning-rate curve.
"""

import keras
import ml_collections

from tftransfer import plan as plan_lib
from tftransfer.model import transfer
from tftransfer.training import optimization


def _unfreeze(config: ml_collections.ConfigDict) -> int | None:
  """config.train.unfreeze as a number of top layers; None = all."""
  return None if config.train.unfreeze == 'all' else int(config.train.unfreeze)


def set_trainable(config: ml_collections.ConfigDict, plan: plan_lib.Plan,
                  model: transfer.TransferModel, phase: str) -> None:
  """Sets which weights of `model` the phase called `phase` trains."""
  transfer.set_trainable(model, train_backbone=phase == 'finetune', unfreeze=_unfreeze(config),
                         freeze_batchnorm=plan.freeze_batchnorm)


def learning_rate_schedule(config: ml_collections.ConfigDict,
                           phase: plan_lib.Phase) -> optimization.WarmupSchedule:
  """Warm-up, then cosine decay (or a constant rate) over the phase's planned steps, peaking
  at its learning rate."""
  train = config.train
  return optimization.WarmupSchedule(
      peak_lr=train.head_lr if phase.name == 'head' else train.finetune_lr,
      total_steps=phase.planned_steps, warmup_fraction=train.warmup_fraction,
      decay=train.lr_schedule)


def follow(schedules: dict[str, optimization.WarmupSchedule], plan: plan_lib.Plan) -> None:
  """Gives each phase's schedule the length `plan` gives the phase (after a re-plan)."""
  for phase in plan.phases:
    schedules[phase.name].set_total_steps(phase.planned_steps)


def build_optimizer(config: ml_collections.ConfigDict, plan: plan_lib.Plan,
                    model: transfer.TransferModel, phase: plan_lib.Phase,
                    schedule: optimization.WarmupSchedule) -> keras.optimizers.Optimizer:
  """The optimizer of `phase` at the learning rates of `schedule`, built for the variables
  the phase trains (so its state exists before a checkpoint is restored into it)."""
  train = config.train
  set_trainable(config, plan, model, phase.name)
  variables = (model.head if phase.name == 'head' else model.model).trainable_variables
  return optimization.build_optimizer(
      name=train.optimizer, learning_rate=schedule, weight_decay=train.weight_decay,
      momentum=train.momentum, nesterov=train.nesterov, precision=plan.precision,
      variables=variables)
