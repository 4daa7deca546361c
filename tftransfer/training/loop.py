"""Fine-tuning, top to bottom: `train_and_evaluate(config, workdir)`.

    1. resolve the config: validate it and decide every 'auto' (resolve.py), before heavy work;
    2. load the data (data/sources.py), build the model (model/transfer.py) and one
       optimizer per phase (phases.py) in the strategy's scope;
    3. initialise, first that applies: resume from the workdir's newest checkpoint >
       model.weights as a weights-file path > Keras ImageNet weights > random;
    4. head phase: backbone frozen, head trained (on features computed once, by default),
       after the data audit (auditing/run.py) has reused those features;
    5. fine-tune phase: top layers unfrozen at a lower rate, BatchNorm frozen;
    6. write final_metrics.json and backbone.weights.h5.

What a step computes is steps.py; what each phase trains on, inputs.py; what a checkpoint
holds and when every worker saves or stops, checkpoints.py; where metrics go, reporting.py.
SIGINT and SIGTERM do not kill a run mid-step: it saves a checkpoint at the next step
boundary and stops (interrupts.py).
"""

import contextlib
import dataclasses
import functools
import time

from absl import logging
import keras
import ml_collections
import numpy as np
import tensorflow as tf

from tftransfer import errors
from tftransfer.auditing import run as audit_run
from tftransfer.data import sources
from tftransfer.model import transfer
from tftransfer.training import checkpoints, inputs, interrupts, phases as phases_lib
from tftransfer.training import reporting, resolve, steps
from tftransfer.training.phases import Phase
from tftransfer.training.steps import Sums
from tftransfer.workdir import Workdir


@dataclasses.dataclass
class _Run:
  """Everything one run's phases share: its setup, data, state and where results go."""
  setup: resolve.RunSetup
  workdir: Workdir
  data: sources.Data
  model: transfer.TransferModel
  step: tf.Variable  # the global step, checkpointed
  optimizers: dict[str, keras.optimizers.Optimizer]  # by phase name
  phases: list[Phase]
  total_steps: int
  checkpointer: checkpoints.Checkpointer
  reporter: reporting.Reporter
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

  def set_trainable(self, phase: str) -> None:
    phases_lib.set_trainable(self.setup, self.model, phase)

  def at_boundary(self, *, always: bool = False) -> None:
    self.checkpointer.at_boundary(always=always, total_steps=self.total_steps,
                                  stop_request=self.stop_request)

  @functools.cached_property
  def validation(self) -> inputs.Validation:
    """The full classifier on the validation images (built on first use, then reused)."""
    return inputs.Validation(self.setup, self.data, self.model.model)


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
    The final metrics (also written to workdir/final_metrics.json).

  Raises:
    ValueError: a bad configuration, a workdir holding a different experiment or data that
      changed since the run started, a batch larger than the training split.
    FileNotFoundError: a missing weights file, image folder or TFRecord directory.
    backbones.WeightsUnavailableError: ImageNet weights cannot be downloaded (offline).
    sources.DataUnavailableError: a TFDS dataset is not prepared and may not be downloaded.
    folders.BadImagesError: undecodable images under data.on_bad_image='fail'.
    interrupts.Interrupted: SIGINT or SIGTERM stopped training after a checkpoint.
    errors.DivergedError: the loss diverged (the newest checkpoint predates it).
    tf.errors.UnavailableError: another worker of a multi-worker run was lost.
  """
  setup = resolve.resolve(config)
  run_dir = Workdir(workdir)
  run_dir.check_same_config(setup.config)
  keras.utils.set_random_seed(setup.config.seed)
  with _dtype_policy(setup.runtime.keras_policy):
    data = _load_data(setup, run_dir)
    run = _create_run(setup, run_dir, data)
    try:
      # Written only now: a value that fails while building the run (a batch larger than
      # the split, a weights file for another backbone) must not lock the workdir to itself.
      if setup.runtime.is_chief:
        run_dir.save_experiment(setup.config, data.summary())
        run_dir.write_json('data_report.json', audit_run.data_report(run_dir, data))
      return _train(run)
    finally:
      run.checkpointer.close()


def _load_data(setup: resolve.RunSetup, run_dir: Workdir) -> sources.Data:
  config = setup.config
  data = sources.load(config.data, seed=config.seed,
                      scan_cache=run_dir.file('folder_scan.json'))
  logging.info('Config: %s (logged in full with --verbosity=1); \'auto\' resolved: %s.',
               run_dir.file('config.json'), setup.describe_auto() or 'none')
  logging.info('%s', setup.runtime.describe())
  if logging.get_verbosity() >= 1:
    logging.info('Resolved config:\n%s', config)
  logging.info('Data: %s; %d classes, %d training and %d validation examples.',
               data.description, len(data.class_names), data.train.num_examples,
               data.val.num_examples)
  run_dir.check_same_data(data.summary())
  return data


def _create_run(setup: resolve.RunSetup, run_dir: Workdir, data: sources.Data) -> _Run:
  """Builds the model, step and optimizers in the strategy's scope and restores the newest
  checkpoint, if any (init order: checkpoint > weights file > ImageNet > random)."""
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
        dropout=config.model.dropout, pooling=config.model.pooling)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name='global_step')
    optimizers = {phase.name: phases_lib.build_optimizer(setup, model, phase)
                  for phase in phases}
  checkpointer = checkpoints.Checkpointer(
      checkpoints.checkpoint_of(model.model, step, optimizers), run=run_dir, rt=rt,
      every_secs=config.train.checkpoint_every_secs, keep=config.train.keep_checkpoints)
  latest = checkpointer.restore_latest()
  if latest:
    logging.info('Resuming from %s at step %d of %d.', latest, int(step.numpy()), total_steps)
  reporter = reporting.Reporter(run_dir, is_chief=rt.is_chief,
                                batch_size=config.train.batch_size, total_steps=total_steps)
  return _Run(setup=setup, workdir=run_dir, data=data, model=model, step=step,
              optimizers=optimizers, phases=phases, total_steps=total_steps,
              checkpointer=checkpointer, reporter=reporter)


def _train(run: _Run) -> dict:
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
  with interrupts.stop_requests() as request:
    run.stop_request = request
    try:
      for phase in run.phases:
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
  final = _finish(run)
  logging.info('Finished: validation accuracy %.4f after %d steps (%s).',
               final['val_accuracy'], final['step'], run.workdir.path)
  return final


def _train_phase(run: _Run, phase: Phase) -> None:
  """Trains `phase` from the current step to its end (or to the run's step cap)."""
  started = time.time()
  run.set_trainable(phase.name)
  # A resumed run draws a different, still seeded, data order from the one it interrupted.
  seed = run.config.seed + run.current_step
  if phase.name == 'head' and run.setup.head_on_features:
    phase_inputs = inputs.on_features(run.setup, run.data, run.model, seed=seed)
  else:
    phase_inputs = inputs.on_images(run.setup, run.data, run.model, run.validation, seed=seed)
  # The data audit, once per run, on the head phase's features when it computed them.
  audit_run.in_training(run.workdir, run.setup, run.data, run.model.features,
                        phase_inputs.features)
  run.at_boundary()  # The feature pass and the audit can take minutes: honour a stop request.
  forward, batches, evaluate = phase_inputs.forward, phase_inputs.batches, phase_inputs.evaluate
  optimizer = run.optimizers[phase.name]
  loop = steps.make_train_loop(
      run.strategy, forward, forward.trainable_variables, optimizer,
      global_batch_size=run.config.train.batch_size, num_classes=len(run.data.class_names),
      label_smoothing=run.config.train.label_smoothing,
      jit_compile=run.setup.runtime.jit_compile)
  iterator = iter(batches)
  stop = min(phase.end_step, run.total_steps)
  logging.info('Phase %s: %d trainable weights, steps %d-%d.', phase.name,
               sum(int(np.prod(v.shape)) for v in forward.trainable_variables),
               run.current_step, stop)
  while run.current_step < stop:
    epoch = (run.current_step - phase.first_step) // phase.steps_per_epoch
    epoch_end = min(phase.first_step + (epoch + 1) * phase.steps_per_epoch, stop)
    train_sums, train_seconds = _train_steps(run, phase, epoch, epoch_end, loop, iterator,
                                             optimizer)
    val_sums = evaluate()
    run.last_eval = (run.current_step, val_sums)
    run.reporter.epoch_end(phase=phase, epoch=epoch, step=run.current_step, train=train_sums,
                           val=val_sums, seconds=time.time() - started,
                           train_seconds=train_seconds,
                           learning_rate=float(optimizer.learning_rate))
    run.at_boundary(always=True)
    started = time.time()


def _train_steps(run: _Run, phase: Phase, epoch: int, epoch_end: int, loop, iterator,
                 optimizer) -> tuple[Sums, float]:
  """Trains up to step `epoch_end` in calls of steps_per_loop steps, logging progress and
  checkpointing between calls; returns the epoch's Sums and seconds spent in steps.

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
    train_seconds += time.time() - chunk_start
    run.step.assign_add(num_steps)
    if not np.isfinite(chunk.loss):
      raise errors.DivergedError(
          f'Training diverged in phase {phase.name} at step {run.current_step}: the loss is '
          f'{chunk.mean_loss}. Lower config.train.{phase.name}_lr; the newest checkpoint '
          'predates the divergence.')
    totals, since_log = totals.plus(chunk), since_log.plus(chunk)
    if run.current_step % train.log_every_steps == 0 or run.current_step == epoch_end:
      run.reporter.progress(phase=phase, epoch=epoch, step=run.current_step, sums=since_log,
                            seconds=time.time() - log_start,
                            learning_rate=float(optimizer.learning_rate))
      since_log, log_start = Sums.zero(), time.time()
    if run.current_step < epoch_end:
      run.at_boundary()
  return totals, train_seconds


def _finish(run: _Run) -> dict:
  """Writes final_metrics.json and the trained backbone; returns the final metrics."""
  # Decided from this process's own state, never from files another worker may still be
  # writing: every worker must take the same branch, or one waits forever in the
  # evaluation's collectives.
  last_step, val_sums = run.last_eval or (None, None)
  if last_step != run.current_step:  # Resumed after the last epoch's checkpoint.
    run.set_trainable('finetune')
    val_sums = run.validation()
  config, rt = run.config, run.setup.runtime
  final = run.reporter.final(val=val_sums, step=run.current_step, model=run.model.model, extra={
      'num_train_examples': run.data.train.num_examples,
      'num_val_examples': run.data.val.num_examples,
      'backbone': config.model.backbone, 'image_size': config.model.image_size,
      'precision': rt.precision.value})
  if rt.is_chief:
    run.workdir.save_local_file('backbone.weights.h5', run.model.backbone.save_weights)
  return final
