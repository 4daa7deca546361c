"""Fine-tuning: the two phases, a custom tf.distribute loop, checkpoints, resumption, metrics.

    train_and_evaluate(config, workdir)
      1. validate the config and resolve its 'auto' values (runtime.py), before heavy work;
      2. load the data (datasets.py) and build the model (models.py) in the strategy scope;
      3. initialise, first that applies: resume from the workdir's newest checkpoint >
         model.weights as a weights-file path > Keras ImageNet weights > random;
      4. head phase: backbone frozen, head trained (on features computed once, by default);
      5. fine-tune phase: top layers unfrozen at a lower rate, BatchNorm frozen;
      6. write final_metrics.json and backbone.weights.h5.

The loop is `strategy.run` inside a tf.function (not `model.fit`, which fails under
MultiWorkerMirroredStrategy in Keras 3.15, keras-team/keras#20585), so one code path serves
one device, mirrored GPUs, multiple workers and TPUs. The global step lives in the checkpoint;
the phase and epoch are derived from it, so a run killed at any point resumes where its
newest checkpoint left it and a finished run is not retrained. SIGINT and SIGTERM do not kill
a run mid-step: it saves a checkpoint at the next step boundary and stops (interrupts.py).
"""

import dataclasses
import functools
import hashlib
import math
import os
import shutil
import signal
import tempfile
import time

from absl import logging
import keras
import ml_collections
import numpy as np
import tensorflow as tf

from tftransfer import backbones, config as config_lib, datasets, models, optimization
from tftransfer import interrupts, pipeline, runtime
from tftransfer.workdir import Workdir

SUM = tf.distribute.ReduceOp.SUM


@dataclasses.dataclass(frozen=True)
class Phase:
  """A training phase as a range of global steps."""
  name: str  # 'head' | 'finetune'
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


def _absolute(path: str) -> str:
  """Local paths made absolute (config.json must not depend on the working directory)."""
  return path if '://' in path else os.path.abspath(path)


def resolve_config(config: ml_collections.ConfigDict
                   ) -> tuple[ml_collections.ConfigDict, runtime.Runtime]:
  """Validates `config` and returns a copy with every 'auto' resolved, plus the runtime."""
  config_lib.validate(config)
  resolved = ml_collections.ConfigDict(config.to_dict())
  model, train = resolved.model, resolved.train
  spec = backbones.get_spec(model.backbone)
  model.image_size = backbones.resolve_image_size(model.backbone, model.image_size)
  backbones.check_weights(model.weights)
  if model.weights not in ('imagenet', 'none'):
    model.weights = _absolute(model.weights)
  if config.data.source in ('folder', 'tfrecord'):
    resolved.data.path = _absolute(config.data.path)
  rt = runtime.setup(strategy=config.distribute.strategy,
                     tpu_address=config.distribute.tpu_address,
                     mixed_precision=train.mixed_precision,
                     jit_compile=config_lib.switch(train.jit_compile, 'train.jit_compile'),
                     depthwise_backbone=spec.depthwise)
  resolved.distribute.strategy = rt.strategy_name
  replicas = rt.strategy.num_replicas_in_sync
  if train.batch_size % replicas:
    raise ValueError(
        f'config.train.batch_size={train.batch_size} is the global batch and must divide '
        f'evenly over the {replicas} replicas of strategy {rt.strategy_name!r}; use a '
        f'multiple of {replicas}.')
  train.mixed_precision = rt.precision
  train.jit_compile = str(rt.jit_compile).lower()
  freeze_bn = config_lib.switch(train.freeze_batchnorm, 'train.freeze_batchnorm')
  train.freeze_batchnorm = (str(model.weights != 'none').lower() if freeze_bn == 'auto'
                            else freeze_bn)
  on_features = config_lib.switch(train.head_on_features, 'train.head_on_features')
  # Features are computed outside strategy.run: right on CPU and GPU hosts, slow on TPUs.
  train.head_on_features = (str(rt.strategy_name != 'tpu').lower() if on_features == 'auto'
                            else on_features)
  train.unfreeze = str(train.unfreeze)
  return resolved, rt


def weights_digest(model: keras.Model) -> str:
  """A short sha256 of every weight of `model`: equal digests mean bitwise-equal models."""
  digest = hashlib.sha256()
  for weight in model.weights:
    digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
  return digest.hexdigest()[:16]


def _rates(totals) -> tuple[float, float]:
  """(mean loss, accuracy) from summed [loss, correct, count]."""
  loss, correct, count = (float(x) for x in totals)
  return (loss / count, correct / count) if count else (math.nan, math.nan)


def make_train_loop(strategy: tf.distribute.Strategy, forward: keras.Model, variables,
                    optimizer: keras.optimizers.Optimizer, *, global_batch_size: int,
                    num_classes: int, label_smoothing: float, jit_compile: bool):
  """Builds `loop(iterator, num_steps)`: a tf.function running `num_steps` distributed
  training steps of `forward` and returning their summed [loss, correct, count].

  Several steps per call keep Python out of the way of small models; the per-replica step
  alone is XLA-compiled when `jit_compile`, as Keras does for `model.fit`.
  """
  loss_fn = keras.losses.CategoricalCrossentropy(
      from_logits=True, label_smoothing=label_smoothing, reduction=None)

  def step_fn(images, labels):
    with tf.GradientTape() as tape:
      logits = forward(images, training=True)
      per_example = loss_fn(tf.one_hot(labels, num_classes), logits)
      # Mean over the global batch: summing replicas' gradients gives the global mean.
      loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
      scaled_loss = optimizer.scale_loss(loss)
    optimizer.apply(tape.gradient(scaled_loss, variables), variables)
    correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels)
    return tf.stack([tf.reduce_sum(per_example), tf.reduce_sum(tf.cast(correct, tf.float32)),
                     tf.cast(tf.size(labels), tf.float32)])

  step_fn = tf.function(step_fn, jit_compile=jit_compile)

  @tf.function
  def loop(iterator, num_steps):
    totals = tf.zeros([3])
    for _ in tf.range(num_steps):
      images, labels = next(iterator)
      totals += strategy.reduce(SUM, strategy.run(step_fn, args=(images, labels)), axis=None)
    return totals

  return loop


class _Trainer:
  """One run's model, optimizers, checkpoint and data, and the loops that use them."""

  def __init__(self, config: ml_collections.ConfigDict, rt: runtime.Runtime,
               run: Workdir, data: datasets.Data):
    self.config, self.rt, self.run, self.data = config, rt, run, data
    self.strategy = rt.strategy
    self.num_classes = len(data.class_names)
    self.image_size = config.model.image_size
    self.batch_size = config.train.batch_size
    self.steps_per_epoch = data.train.num_examples // self.batch_size
    if not self.steps_per_epoch:
      raise ValueError(
          f'config.train.batch_size={self.batch_size} is larger than the training split '
          f'({data.train.num_examples} examples); lower the batch size.')
    self.phases = plan_phases(config.train, self.steps_per_epoch)
    self.total_steps = self.phases[-1].end_step
    if config.train.max_steps:
      self.total_steps = min(self.total_steps, config.train.max_steps)
    self.cache = {
        name: pipeline.use_memory_cache(config.data.cache, split, self.image_size)
        for name, split in (('train', data.train), ('val', data.val))}
    self.save_dir = run.checkpoint_dir if rt.is_chief else tempfile.mkdtemp(
        prefix='tftransfer_worker_checkpoints_')
    latest = tf.train.latest_checkpoint(run.checkpoint_dir)
    with self.strategy.scope():
      # A checkpoint restores every weight, so resuming never needs the pretrained file.
      self.model = models.build_model(
          backbone=config.model.backbone, num_classes=self.num_classes,
          image_size=self.image_size, width=config.model.width,
          weights='none' if latest else config.model.weights,
          dropout=config.model.dropout, pooling=config.model.pooling)
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='global_step')
      self.optimizers = {phase.name: self._build_optimizer(phase) for phase in self.phases}
    # The optimizers' own state, without float16's loss-scale wrapper: a run can then resume
    # under another precision (its dynamic loss scale restarts, and adapts in a few steps).
    self.checkpoint = tf.train.Checkpoint(
        model=self.model.model, step=self.step,
        **{f'{name}_optimizer': getattr(opt, 'inner_optimizer', opt)
           for name, opt in self.optimizers.items()})
    self.manager = tf.train.CheckpointManager(self.checkpoint, self.save_dir,
                                              max_to_keep=config.train.keep_checkpoints)
    if latest:
      self.checkpoint.restore(latest).assert_existing_objects_matched()
      logging.info('Resuming from %s at step %d of %d.', latest, self.current_step,
                   self.total_steps)
    self.writer = (tf.summary.create_file_writer(run.tensorboard_dir) if rt.is_chief
                   else tf.summary.create_noop_writer())
    self.last_save = time.time()
    self.stop_request = interrupts.StopRequest()  # Set by _train while signals are caught.
    self._eval_steps = {}
    self.last_eval = None  # (step, val_loss, val_accuracy) of this process's latest evaluation

  @property
  def current_step(self) -> int:
    """The global step (read from the checkpointed, possibly mirrored, variable)."""
    return int(self.step.numpy())

  def _set_trainable(self, phase: str) -> None:
    models.set_trainable(self.model, phase=phase, unfreeze=self.config.train.unfreeze,
                         freeze_batchnorm=self.config.train.freeze_batchnorm == 'true')

  def _build_optimizer(self, phase: Phase) -> keras.optimizers.Optimizer:
    train = self.config.train
    self._set_trainable(phase.name)
    variables = (self.model.head if phase.name == 'head' else self.model.model
                 ).trainable_variables
    return optimization.build_optimizer(
        name=train.optimizer,
        learning_rate=optimization.warmup_cosine(
            peak_lr=train.head_lr if phase.name == 'head' else train.finetune_lr,
            total_steps=phase.epochs * phase.steps_per_epoch,
            warmup_fraction=train.warmup_fraction),
        weight_decay=train.weight_decay, momentum=train.momentum,
        precision=self.rt.precision, variables=variables)

  # ---------------------------------------------------------------- compiled functions

  def _eval_step(self, forward):
    """A tf.function summing [loss, correct, count] of one distributed batch (one per model,
    so evaluating every epoch does not retrace)."""
    if forward.name in self._eval_steps:
      return self._eval_steps[forward.name]
    strategy = self.strategy

    def batch_sums(images, labels):
      logits = forward(images, training=False)
      per_example = keras.losses.sparse_categorical_crossentropy(labels, logits,
                                                                 from_logits=True)
      correct = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels)
      return tf.stack([tf.reduce_sum(per_example), tf.reduce_sum(tf.cast(correct, tf.float32)),
                       tf.cast(tf.size(labels), tf.float32)])

    def replica_sums(images, labels):
      # When the last batch is split over replicas some get none; convolutions reject an
      # empty batch, so such a replica contributes zeros.
      return tf.cond(tf.size(labels) > 0, lambda: batch_sums(images, labels),
                     lambda: tf.zeros([3]))

    @tf.function(reduce_retracing=True)
    def eval_step(images, labels):
      return strategy.reduce(SUM, strategy.run(replica_sums, args=(images, labels)), axis=None)

    self._eval_steps[forward.name] = eval_step
    return eval_step

  def _evaluate(self, forward, dataset) -> tuple[float, float]:
    """(loss, accuracy) of `forward` over a distributed dataset, each example counted once."""
    eval_step = self._eval_step(forward)
    totals = np.zeros(3)
    for images, labels in dataset:
      totals += eval_step(images, labels).numpy()
    return _rates(totals)

  # ---------------------------------------------------------------- data

  def _local_context(self) -> tf.distribute.InputContext:
    return tf.distribute.InputContext(num_input_pipelines=self.rt.num_workers,
                                      input_pipeline_id=self.rt.worker_index,
                                      num_replicas_in_sync=self.strategy.num_replicas_in_sync)

  def _image_batches(self, seed: int):
    data = self.config.data
    return self.strategy.distribute_datasets_from_function(
        lambda context: pipeline.train_batches(
            self.data.train, image_size=self.image_size, batch_size=self.batch_size,
            seed=seed, cache=self.cache['train'], shuffle_buffer=data.shuffle_buffer,
            min_area=data.crop_min_area, flip=data.flip, input_context=context))

  @functools.cached_property
  def _val_images(self):
    """The validation batches; built once, so their memory cache is filled only once."""
    return self.strategy.distribute_datasets_from_function(
        lambda context: pipeline.eval_batches(
            self.data.val, image_size=self.image_size, batch_size=self.batch_size,
            cache=self.cache['val'], input_context=context))

  def _features(self, split: datasets.Split) -> tuple[np.ndarray, np.ndarray]:
    """Pooled backbone features of this worker's shard of `split` (one inference pass)."""
    extract = tf.function(lambda images: self.model.features(images, training=False),
                          reduce_retracing=True, jit_compile=self.rt.jit_compile)
    batches = pipeline.eval_batches(split, image_size=self.image_size,
                                    batch_size=self.batch_size, cache=False,
                                    input_context=self._local_context())
    features, labels = [], []
    for images, batch_labels in batches:
      features.append(extract(images).numpy())
      labels.append(batch_labels.numpy())
    return np.concatenate(features), np.concatenate(labels)

  def _feature_batches(self, features, labels, *, seed: int | None):
    """Distributed batches of precomputed features: endless and shuffled when seeded."""
    def dataset_fn(context):
      examples = tf.data.Dataset.from_tensor_slices((features, labels))
      batch = context.get_per_replica_batch_size(self.batch_size)
      if seed is None:
        return examples.batch(batch)
      examples = examples.shuffle(len(labels), seed=seed).repeat()
      return examples.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return self.strategy.distribute_datasets_from_function(dataset_fn)

  # ---------------------------------------------------------------- phases

  def save_checkpoint(self) -> None:
    self.manager.save(checkpoint_number=self.current_step)
    self.last_save = time.time()

  def _checkpoint(self, *, always: bool) -> None:
    """Saves a checkpoint if `always` or due, and stops (raising Interrupted) if asked to.

    A save is due when checkpoint_every_secs has passed on the chief's clock, or before a
    stop; a stop when a signal asked this process (or, in a multi-worker run, any worker)
    to stop and training is not complete. Every worker must save and stop together, so in a
    multi-worker run the decisions are shared with an all-reduce instead of each worker
    consulting its own clock and signals.
    """
    every = self.config.train.checkpoint_every_secs
    due = bool(every) and self.rt.is_chief and time.time() - self.last_save > every
    stop = self.stop_request.signum is not None and self.current_step < self.total_steps
    if self.rt.num_workers > 1:
      due, stop = (self._agree(tf.constant([float(due), float(stop)])).numpy() > 0).tolist()
    if always or due or stop:
      self.save_checkpoint()
    if stop:
      self._stop()

  @tf.function
  def _agree(self, flags):
    return self.strategy.reduce(SUM, self.strategy.run(lambda: tf.identity(flags)), axis=None)

  def train_phase(self, phase: Phase) -> None:
    """Trains `phase` from the current step to its end (or to max_steps)."""
    train = self.config.train
    stop = min(phase.end_step, self.total_steps)
    started = time.time()
    self._set_trainable(phase.name)
    # A resumed run draws a different, still seeded, data order from the one it interrupted.
    seed = self.config.seed + self.current_step
    on_features = phase.name == 'head' and train.head_on_features == 'true'
    if on_features:
      logging.info('Computing backbone features of %d training and %d validation images '
                   'once for the head phase.', self.data.train.num_examples,
                   self.data.val.num_examples)
      train_features, train_labels = self._features(self.data.train)
      val_features, val_labels = self._features(self.data.val)
      forward, batches = self.model.head, self._feature_batches(
          train_features, train_labels, seed=seed)
      evaluate = lambda: self._evaluate(  # noqa: E731
          self.model.head, self._feature_batches(val_features, val_labels, seed=None))
      logging.info('Features ready in %.1f s.', time.time() - started)
      self._checkpoint(always=False)  # The pass can take minutes: honour a stop request.
    else:
      forward, batches = self.model.model, self._image_batches(seed)
      evaluate = lambda: self._evaluate(self.model.model, self._val_images)  # noqa: E731
    optimizer = self.optimizers[phase.name]
    loop = make_train_loop(
        self.strategy, forward, forward.trainable_variables, optimizer,
        global_batch_size=self.batch_size, num_classes=self.num_classes,
        label_smoothing=train.label_smoothing, jit_compile=self.rt.jit_compile)
    iterator = iter(batches)
    logging.info('Phase %s: %d trainable weights, steps %d-%d.', phase.name,
                 sum(int(np.prod(v.shape)) for v in forward.trainable_variables),
                 self.current_step, stop)
    while self.current_step < stop:
      epoch = (self.current_step - phase.first_step) // phase.steps_per_epoch
      epoch_end = min(phase.first_step + (epoch + 1) * phase.steps_per_epoch, stop)
      self._train_epoch(phase, epoch, epoch_end, loop, iterator, optimizer, evaluate,
                        started)
      started = time.time()

  def _train_epoch(self, phase, epoch, epoch_end, loop, iterator, optimizer, evaluate,
                   started) -> None:
    train = self.config.train
    totals, train_seconds = np.zeros(3), 0.0
    log_totals, log_start = np.zeros(3), time.time()
    while self.current_step < epoch_end:
      step = self.current_step
      num_steps = min(train.steps_per_loop, epoch_end - step,
                      train.log_every_steps - step % train.log_every_steps)
      chunk_start = time.time()
      chunk = loop(iterator, tf.constant(num_steps)).numpy()
      train_seconds += time.time() - chunk_start
      self.step.assign_add(num_steps)
      if not np.isfinite(chunk[0]):
        raise FloatingPointError(
            f'Training diverged in phase {phase.name} at step {self.current_step}: the loss is '
            f'{chunk[0] / chunk[2]}. Lower config.train.{phase.name}_lr; the newest '
            'checkpoint predates the divergence.')
      totals += chunk
      log_totals += chunk
      if self.current_step % train.log_every_steps == 0 or self.current_step == epoch_end:
        self._log_progress(phase, epoch, log_totals, time.time() - log_start, optimizer)
        log_totals, log_start = np.zeros(3), time.time()
      if self.current_step < epoch_end:
        self._checkpoint(always=False)
    val_loss, val_accuracy = evaluate()
    self.last_eval = (self.current_step, val_loss, val_accuracy)
    train_loss, train_accuracy = _rates(totals)
    seconds = time.time() - started
    previous = self.run.read_metrics()
    row = {
        'phase': phase.name, 'epoch': epoch + 1, 'epochs': phase.epochs,
        'step': self.current_step, 'seconds': round(seconds, 2),
        'wall_seconds': round((previous[-1]['wall_seconds'] if previous else 0) + seconds, 2),
        'train_loss': round(train_loss, 5), 'train_accuracy': round(train_accuracy, 5),
        'val_loss': round(val_loss, 5), 'val_accuracy': round(val_accuracy, 5),
        'images_per_sec': round(totals[2] / train_seconds, 1) if train_seconds else None,
        'learning_rate': float(optimizer.learning_rate),
    }
    logging.info('%s epoch %d/%d done in %.1f s: train loss %.4f acc %.4f, val loss %.4f '
                 'acc %.4f.', phase.name, epoch + 1, phase.epochs, seconds, train_loss,
                 train_accuracy, val_loss, val_accuracy)
    if self.rt.is_chief:
      self.run.append_metrics(row)
    with self.writer.as_default(step=self.current_step):
      tf.summary.scalar('val/loss', val_loss)
      tf.summary.scalar('val/accuracy', val_accuracy)
      tf.summary.scalar('epoch_seconds', seconds)
    self.writer.flush()
    self._checkpoint(always=True)

  def _stop(self):
    signum = self.stop_request.signum
    cause = signal.Signals(signum).name if signum else 'another worker\'s stop request'
    message = (f'Stopped by {cause} at step {self.current_step} of {self.total_steps}, '
               'after saving a checkpoint; re-run the same command to resume from it.')
    logging.warning(message)
    raise interrupts.Interrupted(message, signum)

  def _log_progress(self, phase, epoch, totals, seconds, optimizer) -> None:
    loss, accuracy = _rates(totals)
    images_per_sec = totals[2] / seconds if seconds else 0.0
    learning_rate = float(optimizer.learning_rate)
    phase_end = min(phase.end_step, self.total_steps)
    remaining = (phase_end - self.current_step) * self.batch_size / max(images_per_sec, 1e-9)
    logging.info('%s epoch %d/%d step %d/%d: loss %.4f acc %.4f lr %.2e, %.0f img/s, '
                 'about %.0f s left in this phase.', phase.name, epoch + 1, phase.epochs,
                 self.current_step, self.total_steps, loss, accuracy, learning_rate,
                 images_per_sec, remaining)
    with self.writer.as_default(step=self.current_step):
      tf.summary.scalar('train/loss', loss)
      tf.summary.scalar('train/accuracy', accuracy)
      tf.summary.scalar('train/learning_rate', learning_rate)
      tf.summary.scalar('train/images_per_sec', images_per_sec)

  def finish(self) -> dict:
    """Writes final_metrics.json and the trained backbone; returns the final metrics."""
    # Decided from this process's own state, never from files another worker may still be
    # writing: every worker must take the same branch, or one waits forever in the
    # evaluation's collectives.
    if self.last_eval and self.last_eval[0] == self.current_step:
      _, val_loss, val_accuracy = self.last_eval
    else:  # Resumed after the last epoch's checkpoint but before the final write.
      self._set_trainable('finetune')
      val_loss, val_accuracy = self._evaluate(self.model.model, self._val_images)
    rows = self.run.read_metrics()
    final = {
        'val_accuracy': round(val_accuracy, 5), 'val_loss': round(val_loss, 5),
        'step': self.current_step,
        'wall_seconds': rows[-1]['wall_seconds'] if rows else 0.0,
        # A run capped mid-epoch and continued has two rows for that epoch.
        'epochs': len({(row['phase'], row['epoch']) for row in rows}),
        'num_train_examples': self.data.train.num_examples,
        'num_val_examples': self.data.val.num_examples,
        'backbone': self.config.model.backbone, 'image_size': self.image_size,
        'precision': self.rt.precision, 'weights_sha256': weights_digest(self.model.model),
    }
    logging.info('Final weights sha256 %s (identical on every worker of a run).',
                 final['weights_sha256'])
    if self.rt.is_chief:
      self.run.save_local_file('backbone.weights.h5', self.model.backbone.save_weights)
      self.run.write_json('final_metrics.json', final)
    return final

  def close(self) -> None:
    """Removes a non-chief worker's scratch checkpoints."""
    if not self.rt.is_chief:
      shutil.rmtree(self.save_dir, ignore_errors=True)


def _train(trainer: _Trainer, run: Workdir) -> dict:
  """Runs the phases still to do and finishes, unless the workdir's run is finished."""
  finished = run.read_json('final_metrics.json')
  if finished and finished['step'] == trainer.total_steps:
    logging.info('%s already holds a finished run (step %d); not retraining.', run.path,
                 finished['step'])
    return finished
  if trainer.rt.is_chief:
    run.drop_metrics_after(trainer.current_step)
    # A run continued past its old end (a higher max_steps) is unfinished until it ends again.
    run.remove('final_metrics.json')
  with interrupts.stop_requests() as request:
    trainer.stop_request = request
    try:
      for phase in trainer.phases:
        if trainer.current_step < min(phase.end_step, trainer.total_steps):
          trainer.train_phase(phase)
    except tf.errors.UnavailableError:
      if trainer.rt.num_workers == 1:
        raise
      latest = tf.train.latest_checkpoint(run.checkpoint_dir)
      logging.error('Lost another worker of the cluster at step %d (its process or host '
                    'failed; TensorFlow\'s error follows). No worker can go on alone: start '
                    'every worker again with the same command, and all of them resume from '
                    '%s.', trainer.current_step, latest or 'the start (no checkpoint yet)')
      raise
  final = trainer.finish()
  logging.info('Finished: validation accuracy %.4f after %d steps (%s).',
               final['val_accuracy'], final['step'], run.path)
  return final


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains `config` in `workdir`, resuming whatever the workdir holds.

  Args:
    config: a configuration from configs/ (see tftransfer/config.py for every field).
    workdir: the run's directory; created if missing, resumed if it holds a run.

  Returns:
    The final metrics (also written to workdir/final_metrics.json).

  Raises:
    ValueError: bad configuration, or a workdir holding a different experiment.
  """
  config, rt = resolve_config(config)
  run = Workdir(workdir)
  run.check_same_config(config)
  keras.utils.set_random_seed(config.seed)
  keras.mixed_precision.set_global_policy(rt.keras_policy)
  try:
    data = datasets.load(config.data, seed=config.seed,
                         scan_cache=run.file('folder_scan.json'))
    logging.info('Data: %s; %d classes, %d training and %d validation examples.',
                 data.description, len(data.class_names), data.train.num_examples,
                 data.val.num_examples)
    summary = data.summary()
    run.check_same_data(summary)
    trainer = _Trainer(config, rt, run, data)
    # Written only now: a value that fails while building the trainer (a batch larger than
    # the split, a weights file for another backbone) must not lock the workdir to itself.
    if rt.is_chief:
      run.save_experiment(config, summary)
      run.write_json('data_report.json', data.report())
    try:
      return _train(trainer, run)
    finally:
      trainer.close()
  finally:
    keras.mixed_precision.set_global_policy('float32')
