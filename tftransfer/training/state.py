"""One run's state while it trains, and the decisions taken between its steps.

    RunState            model, step, optimizers, phases, plan, clock, where results go
    create              builds it and restores the newest checkpoint
    end_phase_early     jumps the global step to a phase's end (early stopping, budget)
    reestimate_batchnorm  BatchNorm statistics from training batches before an evaluation
    finish              final_metrics.json (the selected epoch's results) and the backbone
"""

import dataclasses
import functools
import math

from absl import logging
import keras
import ml_collections
import numpy as np
import tensorflow as tf

from tftransfer import errors
from tftransfer.data import augment, pipeline, sources
from tftransfer.model import transfer
from tftransfer.training import batchnorm, budget as budget_lib, checkpoints, inputs
from tftransfer.training import interrupts, optimization, phases as phases_lib, planning
from tftransfer.training import reporting
from tftransfer.training import resolve, selection
from tftransfer.training.phases import Phase
from tftransfer.training.steps import Sums
from tftransfer.workdir import Workdir

# BatchNorm statistics are re-estimated from about this many training images ("precise
# BN" uses a few thousand).
PRECISE_BN_IMAGES = 4096


class Clock:
  """Measured seconds per training step of each phase, the first call (tracing) left out."""

  def __init__(self):
    self._calls = {}  # phase -> [(steps, seconds), ...]
    self.epoch_end_seconds = 0.0  # the longest measured epoch end: evaluation, checkpoint

  def record_steps(self, phase: str, num_steps: int, seconds: float) -> None:
    self._calls.setdefault(phase, []).append((num_steps, seconds))

  def measured_steps(self, phase: str) -> int:
    return sum(steps for steps, _ in self._calls.get(phase, [])[1:])

  def seconds_per_step(self, phase: str) -> float | None:
    calls = self._calls.get(phase, [])[1:]
    steps = sum(steps for steps, _ in calls)
    return sum(seconds for _, seconds in calls) / steps if steps else None


@dataclasses.dataclass
class RunState:
  """Everything one run's phases share."""
  setup: resolve.RunSetup
  workdir: Workdir
  data: sources.Data
  model: transfer.TransferModel
  step: tf.Variable  # the global step, checkpointed
  elapsed: tf.Variable  # seconds the run has spent, across sessions, checkpointed
  optimizers: dict[str, keras.optimizers.Optimizer]  # by phase name
  schedules: dict[str, optimization.WarmupSchedule]  # their learning rates, by phase name
  phases: list[Phase]
  total_steps: int
  checkpointer: checkpoints.Checkpointer
  reporter: reporting.Reporter
  budget: budget_lib.Budget | None
  class_weights: np.ndarray | None
  augmentation: augment.Augmentation
  rows: list[dict]  # metrics rows of the finished epochs, as every worker computed them
  replanned: bool  # a budget re-planned fine-tuning from measured steps (plan.json)
  clock: Clock = dataclasses.field(default_factory=Clock)
  stop_request: interrupts.StopRequest = dataclasses.field(
      default_factory=interrupts.StopRequest)
  last_eval: tuple[int, Sums] | None = None  # (step, validation sums) of the newest epoch end

  @property
  def config(self) -> ml_collections.ConfigDict:
    return self.setup.config

  @property
  def strategy(self) -> tf.distribute.Strategy:
    return self.setup.runtime.strategy

  @property
  def current_step(self) -> int:
    return int(self.step.numpy())

  def phase(self, name: str) -> Phase:
    return next(phase for phase in self.phases if phase.name == name)

  def phase_stop(self, name: str) -> int:
    """The step where the phase called `name` ends (its end, or the run's step cap)."""
    return min(self.phase(name).end_step, self.total_steps)

  def set_trainable(self, phase: str) -> None:
    phases_lib.set_trainable(self.setup, self.model, phase)

  def save_checkpoint(self) -> None:
    self.elapsed.assign(self.clock_seconds())
    self.checkpointer.save()

  def clock_seconds(self) -> float:
    return self.budget.spent() if self.budget else float(self.elapsed.numpy())

  def at_boundary(self, *, always: bool = False) -> None:
    self.elapsed.assign(self.clock_seconds())
    self.checkpointer.at_boundary(always=always, total_steps=self.total_steps,
                                  stop_request=self.stop_request)

  @functools.cached_property
  def validation(self) -> inputs.Validation:
    """The full classifier on the validation images (built on first use, then reused)."""
    return inputs.Validation(self.setup, self.data, self.model.model)

  @functools.cached_property
  def batchnorm_batches(self):
    """Training batches (crops and flips, no mixing) for re-estimating BatchNorm."""
    config = self.config
    return iter(pipeline.train_batches(
        self.data.train, image_size=config.model.image_size, batch_size=config.train.batch_size,
        seed=config.seed + 1, cache=False, shuffle_buffer=config.data.shuffle_buffer,
        min_area=config.data.crop_min_area, flip=config.data.flip))

  def diverged(self, phase: Phase, chunk: Sums) -> errors.DivergedError:
    return errors.DivergedError(
        f'Training diverged in phase {phase.name} at step {self.current_step}: the loss is '
        f'{chunk.mean_loss}. Lower config.train.{phase.name}_lr; the newest checkpoint '
        'predates the divergence.')


def create(setup: resolve.RunSetup, run_dir: Workdir, data: sources.Data,
           budget: budget_lib.Budget | None) -> RunState:
  """Builds the model, step and optimizers in the strategy's scope and restores the newest
  checkpoint, if any (init order: checkpoint > weights file > ImageNet > random).

  Raises:
    errors.InvalidValueError: a batch larger than the training split.
  """
  config, rt = setup.config, setup.runtime
  steps_per_epoch = data.train.num_examples // config.train.batch_size
  if not steps_per_epoch:
    raise errors.InvalidValueError(
        f'config.train.batch_size={config.train.batch_size} is larger than the training '
        f'split ({data.train.num_examples} examples); lower the batch size.')
  phases = phases_lib.plan_phases(config.train, steps_per_epoch)
  total_steps = phases[-1].end_step
  if config.train.max_steps:
    total_steps = min(total_steps, config.train.max_steps)
  resuming = tf.train.latest_checkpoint(run_dir.checkpoint_dir) is not None
  with rt.strategy.scope():
    # A checkpoint restores every weight, so resuming never needs the pretrained file.
    model = transfer.build_model(
        backbone=config.model.backbone, num_classes=len(data.class_names),
        image_size=config.model.image_size, width=config.model.width,
        weights='none' if resuming else config.model.weights,
        dropout=config.model.dropout, pooling=config.model.pooling,
        head_init=config.model.head_init, head_init_stddev=config.model.head_init_stddev)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name='global_step')
    elapsed = tf.Variable(0.0, dtype=tf.float64, trainable=False, name='elapsed_seconds')
    schedules = {phase.name: phases_lib.learning_rate_schedule(setup, phase)
                 for phase in phases}
    optimizers = {phase.name: phases_lib.build_optimizer(setup, model, phase,
                                                         schedules[phase.name])
                  for phase in phases}
  checkpointer = checkpoints.Checkpointer(
      checkpoints.checkpoint_of(model.model, step, optimizers, elapsed), run=run_dir, rt=rt,
      every_secs=config.train.checkpoint_every_secs, keep=config.train.keep_checkpoints)
  latest = checkpointer.restore_latest()
  if latest:
    logging.info('Resuming from %s at step %d of %d.', latest, int(step.numpy()), total_steps)
  if budget:
    budget.spent_before = float(elapsed.numpy())
  weights, _, _ = planning.class_weights(data.train.class_counts,
                                         config.train.class_weighting, imbalance_ratio=0)
  rows = [row for row in run_dir.read_metrics() if row['step'] <= int(step.numpy())]
  return RunState(
      setup=setup, workdir=run_dir, data=data, model=model, step=step, elapsed=elapsed,
      optimizers=optimizers, schedules=schedules, phases=phases, total_steps=total_steps,
      checkpointer=checkpointer,
      replanned=bool((run_dir.read_json(planning.PLAN_FILE) or {}).get('finetune_replanned')),
      reporter=reporting.Reporter(run_dir, is_chief=rt.is_chief,
                                  batch_size=config.train.batch_size, total_steps=total_steps),
      budget=budget, class_weights=weights, rows=rows,
      augmentation=augment.Augmentation(
          randaugment_ops=config.data.randaugment_ops,
          randaugment_magnitude=config.data.randaugment_magnitude,
          mixup_alpha=config.data.mixup_alpha, cutmix_alpha=config.data.cutmix_alpha))


def keep_best_if_missed(run: RunState) -> None:
  """On resuming: if the best epoch so far is the checkpoint resumed from but was not yet
  copied to checkpoints/best/ (the run was stopped in between), copies it now."""
  best = selection.best_row(run.rows, run.config.train.select_metric)
  _, record = checkpoints.best_checkpoint(run.workdir)
  if best and best['step'] == run.current_step and (record or {}).get('step') != best['step']:
    run.checkpointer.keep_as_best(best)


def end_phase_early(run: RunState, phase: Phase, reason: str) -> None:
  """Ends `phase` now: the global step jumps to its end (the next phase starts, or the run
  is finished), a checkpoint is saved there, and the reason is logged and kept in plan.json
  for final_metrics.json."""
  end = run.phase_stop(phase.name)
  if run.current_step >= end:
    return
  epochs_done = math.ceil((run.current_step - phase.first_step) / phase.steps_per_epoch)
  logging.info('Ending phase %s at step %d, after %d of its %d epochs: %s.', phase.name,
               run.current_step, epochs_done, phase.epochs, reason)
  stop = {'phase': phase.name, 'step': run.current_step, 'epochs_done': epochs_done,
          'reason': reason}
  if run.last_eval and run.last_eval[0] == run.current_step:
    run.last_eval = (end, run.last_eval[1])  # The model is the one just evaluated.
  run.step.assign(end)
  if run.setup.runtime.is_chief:
    stops = (run.workdir.read_json(planning.PLAN_FILE) or {}).get('stopped_early', [])
    planning.save(run.workdir, run.setup, stopped_early=stops + [stop])
  run.save_checkpoint()


def reestimate_batchnorm(run: RunState) -> None:
  """Re-estimates trainable BatchNorm layers' statistics (batchnorm.py) before evaluating."""
  batch_size = run.config.train.batch_size
  num_batches = min(math.ceil(PRECISE_BN_IMAGES / batch_size),
                    max(run.data.train.num_examples // batch_size, 1))
  if batchnorm.trainable_batchnorm_layers(run.model.model):
    layers = batchnorm.reestimate(run.model.model, run.batchnorm_batches, num_batches)
    logging.info('Re-estimated the statistics of %d BatchNorm layers on %d training images.',
                 layers, num_batches * batch_size)


def finish(run: RunState) -> dict:
  """Writes final_metrics.json (the selected epoch's results, the last epoch's under 'last')
  and the last trained backbone; returns the final metrics."""
  # Decided from this process's own state, never from files another worker may still be
  # writing: every worker must take the same branch, or one waits forever in the
  # evaluation's collectives.
  last_step, val_sums = run.last_eval or (None, None)
  if last_step != run.current_step:  # Resumed after the last epoch's checkpoint.
    run.set_trainable('finetune')
    reestimate_batchnorm(run)
    val_sums = run.validation()
  config, rt = run.config, run.setup.runtime
  plan = run.workdir.read_json(planning.PLAN_FILE) or {}
  final = run.reporter.final(
      best=selection.best_row(run.rows, config.train.select_metric), last=val_sums,
      metric=config.train.select_metric, step=run.current_step, model=run.model.model,
      stopped_early=plan.get('stopped_early', []), extra={
          'num_train_examples': run.data.train.num_examples,
          'num_val_examples': run.data.val.num_examples,
          'backbone': config.model.backbone, 'image_size': config.model.image_size,
          'precision': rt.precision.value})
  if rt.is_chief:
    run.workdir.save_local_file('backbone.weights.h5', run.model.backbone.save_weights)
  return final
