"""Fine-tuning, top to bottom: `train_and_evaluate(config, workdir)`.

    1. resolve the config: validate it and decide the runtime's 'auto' (resolve.py), before
       heavy work; load the data; decide the data-dependent 'auto' (planning.py: epochs,
       resolution and mixup by rule or time budget, class weights);
    2. build the model (model/transfer.py) and one optimizer per phase (phases.py) in the
       strategy's scope;
    3. initialise, first that applies: resume from the workdir's newest checkpoint >
       model.weights as a weights-file path > Keras ImageNet weights > random;
    4. head phase: backbone frozen, head trained (on features computed once, by default),
       after the data audit (auditing/run.py) has reused those features;
    5. fine-tune phase: top layers unfrozen at a lower rate, BatchNorm frozen;
       every epoch ends with an evaluation; the best epoch by train.select_metric is kept as
       the run's result (selection.py), and a phase can end early (no improvement for
       train.early_stopping_patience epochs, or the time budget);
    6. write final_metrics.json and backbone.weights.h5.

What a step computes is steps.py; what each phase trains on, inputs.py; what a checkpoint
holds and when every worker saves or stops, checkpoints.py; where metrics go, reporting.py.
SIGINT and SIGTERM do not kill a run mid-step: it saves a checkpoint at the next step
boundary and stops (interrupts.py).
"""

import contextlib
import time

from absl import logging
import keras
import ml_collections
import numpy as np
import tensorflow as tf

from tftransfer import runtime
from tftransfer.auditing import run as audit_run
from tftransfer.data import sources
from tftransfer.training import budget as budget_lib, inputs, interrupts, pacing, planning
from tftransfer.training import resolve, selection, state as state_lib, steps
from tftransfer.training.phases import Phase
from tftransfer.training.state import RunState
from tftransfer.training.steps import Sums
from tftransfer.workdir import Workdir


@contextlib.contextmanager
def _dtype_policy(name: str):
  """Keras' global dtype policy set to `name` inside the block, float32 again after it."""
  keras.mixed_precision.set_global_policy(name)
  try:
    yield
  finally:
    keras.mixed_precision.set_global_policy('float32')


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains `config` in `workdir`, resuming whatever the workdir holds.

  Args:
    config: a configuration from configs/ (see tftransfer/config.py for every field).
    workdir: the run's directory; created if missing, resumed if it holds a run.

  Returns:
    The final metrics (also written to workdir/final_metrics.json): those of the selected
    epoch (train.select_metric), with the last epoch's under 'last'.

  Raises:
    errors.InvalidValueError: a bad configuration, a workdir holding a different experiment
      or data that changed since the run started, a batch larger than the training split.
    errors.NotFoundError: a missing weights file, image folder or TFRecord directory.
    backbones.WeightsUnavailableError: ImageNet weights cannot be downloaded (offline).
    sources.DataUnavailableError: a TFDS dataset is not prepared and may not be downloaded.
    folders.BadImagesError: undecodable images under data.on_bad_image='fail'.
    interrupts.Interrupted: SIGINT or SIGTERM stopped training after a checkpoint.
    errors.DivergedError: the loss diverged (the newest checkpoint predates it).
    tf.errors.UnavailableError: another worker of a multi-worker run was lost.
  """
  started = runtime.command_started() or time.time()
  setup = resolve.resolve(config)
  run_dir = Workdir(workdir)
  run_dir.check_same_config(setup.config, skip_auto=True)
  keras.utils.set_random_seed(setup.config.seed)
  with _dtype_policy(setup.runtime.keras_policy):
    data = _load_data(setup, run_dir)
    minutes = setup.config.train.time_budget_minutes
    budget = budget_lib.Budget(seconds=60 * minutes, started=started) if minutes else None
    setup = planning.plan(setup, data, run_dir, budget)
    run_dir.check_same_config(setup.config)
    _log_setup(setup, run_dir)
    run = state_lib.create(setup, run_dir, data, budget)
    try:
      # Written only now: a value that fails while building the run (a batch larger than
      # the split, a weights file for another backbone) must not lock the workdir to itself.
      if setup.runtime.is_chief:
        run_dir.save_experiment(setup.config, data.summary())
        run_dir.write_json('data_report.json', audit_run.data_report(run_dir, data))
        planning.save(run_dir, setup)
      return _train(run)
    finally:
      run.checkpointer.close()


def _load_data(setup: resolve.RunSetup, run_dir: Workdir) -> sources.Data:
  config = setup.config
  data = sources.load(config.data, seed=config.seed,
                      scan_cache=run_dir.file('folder_scan.json'))
  logging.info('Data: %s; %d classes, %d training and %d validation examples.',
               data.description, len(data.class_names), data.train.num_examples,
               data.val.num_examples)
  run_dir.check_same_data(data.summary())
  return data


def _log_setup(setup: resolve.RunSetup, run_dir: Workdir) -> None:
  logging.info('Config: %s (logged in full with --verbosity=1); \'auto\' resolved: %s.',
               run_dir.file('config.json'), setup.describe_auto() or 'none')
  logging.info('%s', setup.runtime.describe())
  if logging.get_verbosity() >= 1:
    logging.info('Resolved config:\n%s', setup.config)


def _train(run: RunState) -> dict:
  """Runs the phases still to do and finishes, unless the workdir's run is finished."""
  finished = run.workdir.read_json('final_metrics.json')
  if finished and finished['step'] == run.total_steps:
    logging.info('%s already holds a finished run (step %d); not retraining.',
                 run.workdir.path, finished['step'])
    return finished
  if run.setup.runtime.is_chief:
    run.workdir.drop_metrics_after(run.current_step)
    # A run continued past its old end (a higher max_steps) is unfinished until it ends again.
    run.workdir.remove('final_metrics.json')
    state_lib.keep_best_if_missed(run)
  with interrupts.stop_requests() as request:
    run.stop_request = request
    try:
      for index in range(len(run.phases)):
        phase = run.phases[index]  # A phase may be re-planned while it trains.
        if run.current_step < min(phase.end_step, run.total_steps):
          _train_phase(run, phase)
    except tf.errors.UnavailableError:
      if run.setup.runtime.num_workers == 1:
        raise
      logging.error('Lost another worker of the cluster at step %d (its process or host '
                    'failed; TensorFlow\'s error follows). No worker can go on alone: start '
                    'every worker again with the same command, and all of them resume from '
                    '%s.', run.current_step,
                    tf.train.latest_checkpoint(run.workdir.checkpoint_dir)
                    or 'the start (no checkpoint yet)')
      raise
  final = state_lib.finish(run)
  logging.info('Finished: validation accuracy %.4f (%s) after %d steps (%s).',
               final['val_accuracy'], final['selected']['description'], final['step'],
               run.workdir.path)
  return final


def _train_phase(run: RunState, phase: Phase) -> None:
  """Trains `phase` from the current step to its end (or to the run's step cap)."""
  started = time.time()
  run.set_trainable(phase.name)
  # A resumed run draws a different, still seeded, data order from the one it interrupted.
  seed = run.config.seed + run.current_step
  if phase.name == 'head' and run.setup.head_on_features:
    if run.augmentation.mixes or run.augmentation.randaugment_ops:
      logging.info('Mixup, cutmix and RandAugment do not apply to the head phase on features '
                   '(computed once from unaugmented images); they apply to fine-tuning.')
    phase_inputs = inputs.on_features(run.setup, run.data, run.model, seed=seed)
  else:
    phase_inputs = inputs.on_images(run.setup, run.data, run.model, run.validation,
                                    seed=seed, augmentation=run.augmentation)
  # The data audit, once per run, on the head phase's features when it computed them.
  audit_run.in_training(run.workdir, run.setup, run.data, run.model.features,
                        phase_inputs.features)
  run.at_boundary()  # The feature pass and the audit can take minutes: honour a stop request.
  optimizer = run.optimizers[phase.name]
  loop = steps.make_train_loop(
      run.strategy, phase_inputs.forward, phase_inputs.forward.trainable_variables, optimizer,
      global_batch_size=run.config.train.batch_size, num_classes=len(run.data.class_names),
      label_smoothing=run.config.train.label_smoothing,
      jit_compile=run.setup.runtime.jit_compile, class_weights=run.class_weights)
  iterator = iter(phase_inputs.batches)
  logging.info('Phase %s: %d trainable weights, steps %d-%d.', phase.name,
               sum(int(np.prod(v.shape)) for v in phase_inputs.forward.trainable_variables),
               run.current_step, run.phase_stop(phase.name))
  while run.current_step < run.phase_stop(phase.name):
    phase = run.phase(phase.name)
    epoch = (run.current_step - phase.first_step) // phase.steps_per_epoch
    epoch_end = min(phase.first_step + (epoch + 1) * phase.steps_per_epoch,
                    run.phase_stop(phase.name))
    cut = pacing.out_of_time(run, phase, epoch_end)
    if cut:  # Not even this epoch fits: the phase ends here, with what it has.
      state_lib.end_phase_early(run, phase, cut)
      break
    train_sums, train_seconds, cut = _train_steps(run, phase, epoch, epoch_end, loop,
                                                  iterator, optimizer)
    _end_epoch(run, phase, epoch, train_sums, phase_inputs.evaluate,
               seconds=time.time() - started, train_seconds=train_seconds,
               learning_rate=float(optimizer.learning_rate))
    patience = run.config.train.early_stopping_patience
    if not cut and patience and selection.epochs_without_improvement(
        run.rows, run.config.train.select_metric, phase.name) >= patience:
      cut = (f'no better {run.config.train.select_metric} in {patience} epochs '
             '(train.early_stopping_patience)')
    if cut:
      state_lib.end_phase_early(run, phase, cut)
    run.at_boundary()
    started = time.time()


def _train_steps(run: RunState, phase: Phase, epoch: int, epoch_end: int, loop, iterator,
                 optimizer) -> tuple[Sums, float, str]:
  """Trains up to step `epoch_end` in calls of steps_per_loop steps, logging progress and
  checkpointing between calls; returns the epoch's Sums, the seconds spent in steps, and why
  the phase must end after this epoch ('' = it need not).

  Raises:
    errors.DivergedError: the loss is not finite.
  """
  train = run.config.train
  totals, train_seconds = Sums.zero(), 0.0
  since_log, log_start = Sums.zero(), time.time()
  while run.current_step < epoch_end:
    step = run.current_step
    num_steps = min(train.steps_per_loop, epoch_end - step,
                    train.log_every_steps - step % train.log_every_steps)
    chunk_start = time.time()
    chunk = Sums.from_vector(loop(iterator, tf.constant(num_steps)))
    run.clock.record_steps(phase.name, num_steps, time.time() - chunk_start)
    train_seconds += time.time() - chunk_start
    run.step.assign_add(num_steps)
    if not np.isfinite(chunk.loss):
      raise run.diverged(phase, chunk)
    totals, since_log = totals.plus(chunk), since_log.plus(chunk)
    if run.current_step % train.log_every_steps == 0 or run.current_step == epoch_end:
      run.reporter.progress(phase=phase, epoch=epoch, step=run.current_step, sums=since_log,
                            seconds=time.time() - log_start,
                            learning_rate=float(optimizer.learning_rate))
      since_log, log_start = Sums.zero(), time.time()
    pacing.replan_if_due(run, phase)
    epoch_end = min(epoch_end, run.phase_stop(phase.name))
    cut = pacing.out_of_time(run, phase, epoch_end)
    if cut:
      return totals, train_seconds, cut
    if run.current_step < epoch_end:
      run.at_boundary()
  return totals, train_seconds, ''


def _end_epoch(run: RunState, phase: Phase, epoch: int, train_sums: Sums, evaluate, *,
               seconds: float, train_seconds: float, learning_rate: float) -> dict:
  """Evaluates (with BatchNorm statistics re-estimated if BatchNorm trained), writes the
  epoch's row, saves a checkpoint and keeps it as the run's result if it is the best."""
  started = time.time()
  if phase.name == 'finetune' or not run.setup.head_on_features:
    state_lib.reestimate_batchnorm(run)
  val_sums = evaluate()
  run.last_eval = (run.current_step, val_sums)
  row = run.reporter.epoch_end(phase=phase, epoch=epoch, step=run.current_step,
                               train=train_sums, val=val_sums, seconds=seconds,
                               train_seconds=train_seconds, learning_rate=learning_rate)
  run.rows.append(row)
  run.save_checkpoint()
  if selection.best_row(run.rows, run.config.train.select_metric) is row:
    run.checkpointer.keep_as_best(row)
  run.clock.epoch_end_seconds = max(run.clock.epoch_end_seconds, time.time() - started)
  return row
