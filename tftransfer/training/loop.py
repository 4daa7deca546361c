"""Fine-tuning, top to bottom: `train_and_evaluate(config, workdir)`.

    1. check the config and create the runtime (resolve.py) before heavy work; take the
       workdir's lock (one training at a time, Workdir.lock); load the data;
       make the plan (planning.py: every 'auto' decided, or the resumed run's own plan);
    2. build the model and one optimizer per phase in the strategy's scope (state.py);
    3. initialise, first that applies: resume from the workdir's newest checkpoint >
       model.weights as a weights-file path > Keras ImageNet weights > random;
    4. head phase: backbone frozen, head trained (on features computed once, by default);
       the 'features ready' hook (the train command wires the data audit to it) sees them;
    5. fine-tune phase: top layers unfrozen at a lower rate, BatchNorm frozen;
       every epoch ends with an evaluation; the best epoch by train.select_metric is kept as
       the run's result (selection.py), and a phase can end early (pacing.py: no improvement
       for train.early_stopping_patience epochs, or the time budget); without validation
       (data.val_fraction=0) nothing is evaluated and the result is the last epoch;
    6. write final_metrics.json and the selected epoch's backbone.weights.h5.

What a step computes is steps.py; what each phase trains on, inputs.py; when every worker
saves or stops, checkpoints.py; where metrics go, reporting.py. The loop itself only asks,
at each boundary, "is it time to" log, re-plan, cut the phase or stop, and applies the answer.
SIGINT and SIGTERM do not kill a run mid-step: it saves a checkpoint at the next step
boundary and stops (interrupts.py).
"""

import contextlib
import dataclasses
from typing import Callable

from absl import logging
import keras
import ml_collections
import numpy as np
import tensorflow as tf

from tftransfer import plan as plan_lib, runtime, workdir as workdir_lib
from tftransfer.clock import Clock
from tftransfer.data import dataset, sources
from tftransfer.training import inputs, interrupts, pacing, planning, resolve, selection
from tftransfer.training import state, steps
from tftransfer.training.state import Run
from tftransfer.training.steps import Sums
from tftransfer.workdir import Workdir


@dataclasses.dataclass(frozen=True)
class FeaturesReady:
  """What the 'features ready' hook receives when a phase's inputs are ready."""
  workdir: Workdir
  config: ml_collections.ConfigDict  # as given
  plan: plan_lib.Plan
  data: dataset.Data
  runtime: runtime.Runtime
  features_model: keras.Model  # images -> pooled float32 features [B, D]
  # ((train features, labels), (validation features, labels)) of this worker's shard when
  # the head phase computed them on the pretrained backbone; None otherwise.
  features: tuple | None
  features_seconds: float | None = None  # the wall seconds of the pass that computed them


@dataclasses.dataclass(frozen=True)
class Hooks:
  """What a caller sees of a run while it trains; each is optional. The train command wires
  the data audit to `features_ready`; the notebook API draws its progress bars and calls
  Keras callbacks from the others."""
  features_ready: Callable[[FeaturesReady], None] | None = None  # each phase's start
  progress: Callable[[dict], None] | None = None  # each progress line (Reporter.progress)
  epoch_end: Callable[[dict], None] | None = None  # each finished epoch's metrics row


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       started: float | None = None, hooks: Hooks = Hooks()) -> dict:
  """Trains `config` in `workdir`, resuming whatever the workdir holds.

  Args:
    config: a configuration from configs/ (see tftransfer/config.py for every field).
    workdir: the run's directory; created if missing, resumed if it holds a run.
    started: when the command started (time.time()), which a time budget counts from;
      None = now.
    hooks: what to call while it trains (Hooks; the train command audits the data when the
      head phase's features are ready).

  Returns:
    The final metrics (also written to workdir/final_metrics.json): those of the selected
    epoch (train.select_metric), with the last epoch's under 'last'.

  Raises:
    errors.InUseError: another training holds the workdir's lock (lock.json).
    errors.InvalidValueError: a bad configuration, a workdir holding a different experiment
      or data that changed since the run started, a batch larger than the training split.
    errors.NotFoundError: a missing weights file, image folder or TFRecord directory.
    backbones.WeightsUnavailableError: ImageNet weights cannot be downloaded (offline).
    tfds_source.DataUnavailableError: a TFDS dataset is not prepared and may not be downloaded.
    folders.BadImagesError: undecodable images under data.on_bad_image='fail'.
    interrupts.Interrupted: SIGINT or SIGTERM stopped training after a checkpoint.
    errors.DivergedError: the loss diverged (the newest checkpoint predates it).
    tf.errors.UnavailableError: another worker of a multi-worker run was lost.
  """
  clock = Clock(started=started)
  setup = resolve.resolve(config)
  run_dir = Workdir(workdir)
  # One training at a time in a workdir, checked before any work (only the chief's lock
  # counts: the other workers of a cluster train the same run); released however it ends.
  with interrupts.terminate_raises(), (
      run_dir.lock() if setup.runtime.is_chief else contextlib.nullcontext()):
    return _train_and_evaluate(setup, run_dir, clock, hooks)


def _train_and_evaluate(setup: resolve.RunSetup, run_dir: Workdir, clock: Clock,
                        hooks: Hooks) -> dict:
  run_dir.check_same_config(setup.config)
  with runtime.seeded(setup.config.seed), runtime.keras_policy(setup.runtime.keras_policy):
    data = _load_data(setup, run_dir)
    plan = planning.make_plan(setup.config, setup.runtime, planning.facts(data),
                              previous=plan_lib.load(run_dir), elapsed=clock.elapsed())
    data = dataset.for_task(data, plan.task)
    run_dir.check_same_data(data.summary())
    _log_setup(setup, plan, run_dir)
    run = state.create(setup, plan, run_dir, data, clock, hooks)
    try:
      # Written only now: a value that fails while building the run (a batch larger than
      # the split, a weights file for another backbone) must not lock the workdir to itself.
      if setup.runtime.is_chief:
        run_dir.save_experiment(setup.config, data.summary())
        # The data as this session loaded it; what others added (the audit) is kept.
        run_dir.write_json(workdir_lib.DATA_REPORT, {
            **(run_dir.read_json(workdir_lib.DATA_REPORT) or {}), **data.report()})
        plan_lib.save(run_dir, plan)
      return _train(run)
    finally:
      run.checkpointer.close()


def _load_data(setup: resolve.RunSetup, run_dir: Workdir) -> dataset.Data:
  config = setup.config
  data = sources.load(config.data, seed=config.seed,
                      scan_cache=run_dir.file(workdir_lib.FOLDER_SCAN))
  logging.info('Data: %s; %d classes, %d training and %d validation examples.',
               data.description, len(data.class_names), data.train.num_examples,
               data.val.num_examples)
  return data


def _log_setup(setup: resolve.RunSetup, plan: plan_lib.Plan, run_dir: Workdir) -> None:
  logging.info('Plan: %s (the resolved config in full with --verbosity=1); \'auto\' '
               'resolved: %s.', run_dir.file(workdir_lib.PLAN), plan.describe())
  logging.info('%s', setup.runtime.describe())
  if logging.get_verbosity() >= 1:
    logging.info('Resolved config:\n%s', plan_lib.resolved_config(setup.config, plan))


def _train(run: Run) -> dict:
  """Runs the phases still to do and finishes, unless the workdir's run is finished."""
  finished = run.workdir.read_json(workdir_lib.FINAL_METRICS)
  if finished and finished['step'] == run.plan.total_steps:
    logging.info('%s already holds a finished run (step %d); not retraining.',
                 run.workdir.path, finished['step'])
    return finished
  if run.setup.runtime.is_chief:
    run.workdir.drop_metrics_after(run.step)
    # A run continued past its old end (a higher max_steps) is unfinished until it ends again.
    run.workdir.remove(workdir_lib.FINAL_METRICS)
    state.keep_best_if_missed(run)
  with interrupts.stop_requests() as request:
    run.stop_request = request
    try:
      for name in [phase.name for phase in run.plan.phases]:
        if run.step < run.plan.phase_stop(name):
          _train_phase(run, name)
    except tf.errors.UnavailableError:
      if run.setup.runtime.num_workers == 1:
        raise
      logging.error('Lost another worker of the cluster at step %d (its process or host '
                    'failed; TensorFlow\'s error follows). No worker can go on alone: start '
                    'every worker again with the same command, and all of them resume from '
                    '%s.', run.step, run.workdir.latest_checkpoint()
                    or 'the start (no checkpoint yet)')
      raise
  final = state.finish(run)
  if not final['validated']:
    logging.info('Finished without validation: the result is %s, after %d steps (%s).',
                 final['selected']['description'], final['step'], run.workdir.path)
    return final
  metric = run.plan.select_metric if run.plan.select_metric in final else 'val_accuracy'
  logging.info('Finished: %s %.4f (%s) after %d steps (%s).', metric, final[metric],
               final['selected']['description'], final['step'], run.workdir.path)
  return final


def _phase_inputs(run: Run, name: str) -> inputs.PhaseInputs:
  # The phase's data stream is seeded by the step it starts at; a resumed run skips the
  # batches the phase has trained on, so it reads on where the interrupted run stopped.
  first_step = run.plan.phase(name).first_step
  seed, skip = run.config.seed + first_step, run.step - first_step
  if name == 'head' and run.plan.head_on_features:
    if run.augmentation.mixes or run.augmentation.randaugment_ops:
      logging.info('Mixup, cutmix and RandAugment do not apply to the head phase on features '
                   '(computed once from unaugmented images); they apply to fine-tuning.')
    return inputs.on_features(run.setup, run.plan, run.data, run.model, seed=seed, skip=skip)
  return inputs.on_images(run.setup, run.plan, run.data, run.model, run.validation,
                          seed=seed, skip=skip, augmentation=run.augmentation)


def _decision_inputs(run: Run) -> dict:
  return dict(num_val=run.data.val.num_examples, batch_size=run.config.train.batch_size)


def _train_phase(run: Run, name: str) -> None:
  """Trains phase `name` from the current step to its end (or to the run's step cap)."""
  started = run.clock.now()
  run.set_trainable(name)
  phase_inputs = _phase_inputs(run, name)
  if run.hooks and run.hooks.features_ready:
    run.hooks.features_ready(FeaturesReady(run.workdir, run.config, run.plan, run.data,
                                           run.setup.runtime, run.model.features,
                                           phase_inputs.features,
                                           phase_inputs.features_seconds))
  run.at_boundary()  # The feature pass and the hook can take minutes: honour a stop request.
  optimizer = run.optimizers[name]
  loop = steps.make_train_loop(
      run.setup.runtime.strategy, phase_inputs.forward,
      phase_inputs.forward.trainable_variables, optimizer,
      global_batch_size=run.config.train.batch_size, num_classes=len(run.data.class_names),
      label_smoothing=run.config.train.label_smoothing, jit_compile=run.plan.jit_compile,
      class_weights=run.class_weights, multi_label=run.plan.task == 'multi_label')
  iterator = iter(phase_inputs.batches)
  logging.info('Phase %s: %d trainable weights, steps %d-%d.', name,
               sum(int(np.prod(v.shape)) for v in phase_inputs.forward.trainable_variables),
               run.step, run.plan.phase_stop(name))
  while run.step < run.plan.phase_stop(name):
    phase = run.plan.phase(name)
    epoch = phase.epoch_of(run.step)
    epoch_end = min(phase.epoch_stop(epoch), run.plan.phase_stop(name))
    cut = pacing.out_of_time(run.plan, step=run.step, epoch_end=epoch_end,
                             reading=run.clock.reading(name),
                             evaluated=bool(run.progress.rows), **_decision_inputs(run))
    if cut:  # Not even this epoch fits: the phase ends here, with what it has.
      run.end_phase(name, cut)
      break
    train_sums, train_seconds, cut = _train_steps(run, name, epoch_end, loop, iterator,
                                                  optimizer)
    if cut:  # Out of time inside the epoch: the phase ends at this step, which is evaluated.
      run.end_phase(name, cut)
    _end_epoch(run, name, epoch, train_sums, phase_inputs.evaluate,
               seconds=run.clock.now() - started, train_seconds=train_seconds,
               learning_rate=float(optimizer.learning_rate))
    cut = pacing.no_progress(run.progress.rows, phase=name, metric=run.plan.select_metric,
                             patience=run.config.train.early_stopping_patience)
    if cut:
      run.end_phase(name, cut)
    run.at_boundary()
    started = run.clock.now()


def _train_steps(run: Run, name: str, epoch_end: int, loop, iterator,
                 optimizer) -> tuple[Sums, float, str]:
  """Trains up to step `epoch_end` in calls of steps_per_loop steps, logging progress,
  re-planning and checkpointing between calls; returns the epoch's Sums, the seconds spent in
  steps, and why the phase must end after this epoch ('' = it need not).

  Raises:
    errors.DivergedError: the loss is not finite.
  """
  train, clock = run.config.train, run.clock
  totals, train_seconds = Sums.zero(), 0.0
  since_log, steps_since_log, log_start = Sums.zero(), 0, clock.now()
  while run.step < epoch_end:
    num_steps = min(train.steps_per_loop, epoch_end - run.step,
                    train.log_every_steps - run.step % train.log_every_steps)
    chunk_start = clock.now()
    chunk = Sums.from_vector(loop(iterator, tf.constant(num_steps)))
    seconds = clock.now() - chunk_start
    clock.record_steps(name, num_steps, seconds)
    train_seconds += seconds
    run.progress.advance(num_steps)
    if not np.isfinite(chunk.loss):
      raise run.diverged(name, chunk)
    totals, since_log = totals.plus(chunk), since_log.plus(chunk)
    steps_since_log += num_steps
    if run.step % train.log_every_steps == 0 or run.step == epoch_end:
      run.reporter.progress(plan=run.plan, phase=name, step=run.step, steps=steps_since_log,
                            sums=since_log, seconds=clock.now() - log_start,
                            learning_rate=float(optimizer.learning_rate),
                            reading=clock.reading(name))
      since_log, steps_since_log, log_start = Sums.zero(), 0, clock.now()
    replanned = pacing.replanned(run.plan, name, step=run.step, reading=clock.reading(name),
                                 **_decision_inputs(run))
    if replanned:
      logging.info('Time budget: fine-tuning re-planned to %d epochs (%s).',
                   replanned.finetune_epochs, replanned.decisions['train.finetune_epochs'][1])
      run.adopt(replanned)
    epoch_end = min(epoch_end, run.plan.phase_stop(name))
    cut = pacing.out_of_time(run.plan, step=run.step, epoch_end=epoch_end,
                             reading=clock.reading(name), evaluated=bool(run.progress.rows),
                             **_decision_inputs(run))
    if cut:
      return totals, train_seconds, cut
    if run.step < epoch_end:
      run.at_boundary()
  return totals, train_seconds, ''


def _end_epoch(run: Run, name: str, epoch: int, train_sums: Sums, evaluate, *,
               seconds: float, train_seconds: float, learning_rate: float) -> None:
  """Evaluates (with BatchNorm statistics re-estimated if BatchNorm trained), writes the
  epoch's row (partial when the step cap stops the run before the epoch's end), saves a
  checkpoint and keeps it as the run's result if it is the best whole epoch."""
  started = run.clock.now()
  if name == 'finetune' or not run.plan.head_on_features:
    state.reestimate_batchnorm(run)
  val_sums = evaluate()
  row = run.reporter.epoch_end(phase=run.plan.phase(name), epoch=epoch, step=run.step,
                               train=train_sums, val=val_sums, seconds=seconds,
                               train_seconds=train_seconds, learning_rate=learning_rate,
                               partial=run.step < run.plan.phase(name).epoch_stop(epoch))
  run.progress.evaluated(row, val_sums)
  run.save_checkpoint()
  if selection.best_row(run.progress.rows, run.plan.select_metric) is row:
    run.checkpointer.keep_as_best(row)
  run.clock.record_epoch_end(run.clock.now() - started)
