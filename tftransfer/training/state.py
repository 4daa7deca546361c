"""One run while it trains: what it was given, what it plans, what it has done, and the
objects that train it.

    Run         the immutable setup and data, the plan (replaced by `adopt`, never changed),
                the progress and clock, the model, optimizers, checkpointer and reporter
    create      builds it and restores the newest checkpoint (init order: resume from the
                workdir > model.weights as a file > Keras ImageNet weights > random)
    finish      final_metrics.json (the selected epoch's results) and the selected backbone
"""

import dataclasses
import functools
import math
from typing import Any

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from tftransfer import errors, multilabel, plan as plan_lib, restore, workdir as workdir_lib
from tftransfer.clock import Clock
from tftransfer.data import augment, dataset, pipeline
from tftransfer.model import transfer
from tftransfer.training import batchnorm, checkpoints, inputs, interrupts, optimization
from tftransfer.training import phases, reporting, resolve, rules, selection
from tftransfer.training.progress import Progress
from tftransfer.training.steps import Sums
from tftransfer.workdir import Workdir

# BatchNorm statistics are re-estimated from about this many training images ("precise
# BN" uses a few thousand).
PRECISE_BN_IMAGES = 4096


@dataclasses.dataclass
class Run:
  """Everything one run's phases share."""
  setup: resolve.RunSetup
  plan: plan_lib.Plan
  progress: Progress
  clock: Clock
  workdir: Workdir
  data: dataset.Data
  model: transfer.TransferModel
  optimizers: dict[str, keras.optimizers.Optimizer]  # by phase name
  schedules: dict[str, optimization.WarmupSchedule]  # their learning rates, by phase name
  elapsed: tf.Variable  # the clock's seconds, as the checkpoint holds them
  checkpointer: checkpoints.Checkpointer
  reporter: reporting.Reporter
  class_weights: np.ndarray | None
  augmentation: augment.Augmentation
  hooks: Any = None  # loop.Hooks: what its caller sees while it trains
  stop_request: interrupts.StopRequest = dataclasses.field(
      default_factory=interrupts.StopRequest)

  @property
  def config(self):
    return self.setup.config

  @property
  def step(self) -> int:
    return self.progress.current

  def adopt(self, plan: plan_lib.Plan) -> None:
    """Makes `plan` the run's plan: the learning-rate schedules follow its phases' lengths,
    and the chief saves it."""
    self.plan = plan
    phases.follow(self.schedules, plan)
    if self.setup.runtime.is_chief:
      plan_lib.save(self.workdir, plan)

  def end_phase(self, phase: str, reason: str) -> None:
    """Ends `phase` at the current step (the next phase starts here), with `reason`."""
    if self.step >= self.plan.phase_stop(phase):
      return
    planned = self.plan.phase(phase)
    logging.info('Ending phase %s at step %d, after %d of its %d epochs: %s.', phase,
                 self.step, planned.epochs_done(self.step), planned.epochs, reason)
    self.adopt(self.plan.ended_early(phase, self.step, reason))

  def set_trainable(self, phase: str) -> None:
    phases.set_trainable(self.config, self.plan, self.model, phase)

  def save_checkpoint(self) -> None:
    self.elapsed.assign(self.clock.elapsed())
    self.checkpointer.save()

  def at_boundary(self, *, always: bool = False) -> None:
    self.elapsed.assign(self.clock.elapsed())
    self.checkpointer.at_boundary(always=always, total_steps=self.plan.total_steps,
                                  stop_request=self.stop_request)

  @functools.cached_property
  def validation(self) -> inputs.Validation:
    """The full classifier on the validation images (built on first use, then reused)."""
    return inputs.Validation(self.setup, self.plan, self.data, self.model.model)

  def batchnorm_batches(self):
    """Training batches (crops and flips, no mixing) for re-estimating BatchNorm at this
    step: seeded by the step, so a resumed run re-estimates as the uninterrupted one."""
    config = self.config
    return iter(pipeline.train_batches(
        self.data.train, image_size=self.plan.image_size, batch_size=config.train.batch_size,
        seed=config.seed + 1 + self.step, cache=False,
        shuffle_buffer=config.data.shuffle_buffer, min_area=config.data.crop_min_area,
        flip=config.data.flip))

  def diverged(self, phase: str, chunk: Sums) -> errors.DivergedError:
    return errors.DivergedError(
        f'Training diverged in phase {phase} at step {self.step}: the loss is '
        f'{chunk.mean_loss}. Lower config.train.{phase}_lr; the newest checkpoint '
        'predates the divergence.')


def create(setup: resolve.RunSetup, plan: plan_lib.Plan, run_dir: Workdir, data: dataset.Data,
           clock: Clock, hooks=None) -> Run:
  """Builds the model, step and optimizers in the strategy's scope and restores the newest
  checkpoint, if any (init order: checkpoint > weights file > ImageNet > random)."""
  config, rt = setup.config, setup.runtime
  resuming = run_dir.latest_checkpoint() is not None
  with rt.strategy.scope():
    # A checkpoint restores every weight, so resuming never needs the pretrained file.
    model = restore.build_model(config, image_size=plan.image_size,
                                num_classes=len(data.class_names),
                                weights='none' if resuming else None)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name='global_step')
    elapsed = tf.Variable(0.0, dtype=tf.float64, trainable=False, name='elapsed_seconds')
    schedules = {phase.name: phases.learning_rate_schedule(config, phase)
                 for phase in plan.phases}
    optimizers = {phase.name: phases.build_optimizer(config, plan, model, phase,
                                                     schedules[phase.name])
                  for phase in plan.phases}
  parts = model.model, step, optimizers, elapsed
  checkpointer = checkpoints.Checkpointer(
      workdir_lib.checkpoint_of(*parts), run=run_dir, rt=rt,
      every_secs=config.train.checkpoint_every_secs, keep=config.train.keep_checkpoints,
      now=clock.now, older=workdir_lib.checkpoint_of(*parts, with_random_states=False))
  latest = checkpointer.restore_latest()
  if latest:
    logging.info('Resuming from %s at step %d of %d.', latest, int(step.numpy()),
                 plan.total_steps)
    clock.resume(float(elapsed.numpy()))
  rows = [row for row in run_dir.read_metrics() if row['step'] <= int(step.numpy())]
  return Run(
      setup=setup, plan=plan, progress=Progress(step, rows), clock=clock, workdir=run_dir,
      data=data, model=model, optimizers=optimizers, schedules=schedules, elapsed=elapsed,
      checkpointer=checkpointer, reporter=reporting.Reporter(
          run_dir, is_chief=rt.is_chief, on_progress=getattr(hooks, 'progress', None),
          on_epoch_end=getattr(hooks, 'epoch_end', None)),
      class_weights=(rules.positive_weights(data.train.class_counts, data.train.num_examples,
                                            plan.class_weighting)
                     if plan.task == 'multi_label' else
                     rules.class_weights(data.train.class_counts, plan.class_weighting)),
      hooks=hooks,
      augmentation=augment.Augmentation(
          randaugment_ops=config.data.randaugment_ops,
          randaugment_magnitude=config.data.randaugment_magnitude,
          mixup_alpha=plan.mixup_alpha, cutmix_alpha=config.data.cutmix_alpha))


def keep_best_if_missed(run: Run) -> None:
  """On resuming: if the best epoch so far is the checkpoint resumed from but was not yet
  copied to checkpoints/best/ (the run was stopped in between), copies it now."""
  best = selection.best_row(run.progress.rows, run.plan.select_metric)
  _, record = run.workdir.best_checkpoint()
  if best and best['step'] == run.step and (record or {}).get('step') != best['step']:
    run.checkpointer.keep_as_best(best)


def reestimate_batchnorm(run: Run) -> None:
  """Re-estimates trainable BatchNorm layers' statistics (batchnorm.py) before evaluating."""
  batch_size = run.config.train.batch_size
  num_batches = min(math.ceil(PRECISE_BN_IMAGES / batch_size),
                    max(run.data.train.num_examples // batch_size, 1))
  if batchnorm.trainable_batchnorm_layers(run.model.model):
    layers = batchnorm.reestimate(run.model.model, run.batchnorm_batches(), num_batches)
    logging.info('Re-estimated the statistics of %d BatchNorm layers on %d training images.',
                 layers, num_batches * batch_size)


def _select(run: Run) -> dict:
  """Leaves the model holding the selected (best) epoch's weights, the ones export and
  evaluate use; the chief saves its backbone as backbone.weights.h5. A multi-label run then
  chooses each label's threshold on the validation split (multilabel.choose_thresholds),
  which the chief saves as thresholds.json; returns what final_metrics.json records of them.
  Every worker restores and evaluates: the evaluation is a collective."""
  best, record = run.workdir.best_checkpoint()
  chief = run.setup.runtime.is_chief
  if chief:  # Said before the work: restoring and saving a large backbone takes a while.
    logging.info('Restoring the selected epoch (step %s) and saving its backbone to %s.',
                 (record or {}).get('step', run.step), run.workdir.file(workdir_lib.BACKBONE))
  if best is not None:
    workdir_lib.checkpoint_of(run.model.model, tf.Variable(0, dtype=tf.int64)).restore(
        best).assert_existing_objects_matched().expect_partial()
  if chief:
    run.workdir.save_local_file(workdir_lib.BACKBONE, run.model.backbone.save_weights)
  if run.plan.task != 'multi_label':
    return {}
  if not run.data.validated:
    logging.info('No validation split to choose label thresholds on: every label keeps 0.5.')
    return {}
  scores = run.validation()
  thresholds = multilabel.choose_thresholds(scores.probabilities, scores.targets)
  at = multilabel.at_thresholds(scores.probabilities, scores.targets, thresholds)
  chosen = {name: round(float(value), 5) for name, value in zip(run.data.class_names,
                                                                 thresholds)}
  logging.info('Label thresholds chosen on the validation split (F1 at each): %s.',
               ', '.join(f'{name} {value:.3f}' for name, value in chosen.items()))
  if chief:
    run.workdir.write_json(workdir_lib.THRESHOLDS, chosen)
  return {'thresholds': chosen, 'at_thresholds': {
      key: round(value, 5) for key, value in at.items() if isinstance(value, float)}}


def finish(run: Run) -> dict:
  """Writes final_metrics.json (the selected epoch's results, the last epoch's under 'last')
  and the selected epoch's backbone; returns the final metrics."""
  # Decided from this process's own state, never from files another worker may still be
  # writing: every worker must take the same branch, or one waits forever in the
  # evaluation's collectives.
  last_step, val_sums = run.progress.last_eval or (None, None)
  if last_step != run.step:  # Resumed after the last epoch's checkpoint.
    run.set_trainable('finetune')
    reestimate_batchnorm(run)
    val_sums = run.validation()
  config, plan = run.config, run.plan
  digest = reporting.weights_digest(run.model.model)
  selected = _select(run)  # Before final_metrics.json, which marks the run finished.
  return run.reporter.final(
      best=selection.best_row(run.progress.rows, plan.select_metric), last=val_sums,
      metric=plan.select_metric, step=run.step, weights_sha256=digest,
      stopped_early=[dataclasses.asdict(stop) for stop in plan.early_stops], extra={
          'num_train_examples': run.data.train.num_examples,
          'num_val_examples': run.data.val.num_examples,
          'backbone': config.model.backbone,
          **({'preset': config.model.preset} if config.model.preset else {}),
          'image_size': plan.image_size, 'precision': plan.precision, 'task': plan.task,
          **selected})
