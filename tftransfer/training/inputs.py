"""What a phase trains and validates on: augmented image batches, or backbone features
computed once (the head phase, by default), distributed over the strategy's replicas."""

import time
from typing import Callable, NamedTuple

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from tftransfer import plan as plan_lib
from tftransfer.data import augment, dataset, features, pipeline
from tftransfer.model import transfer
from tftransfer.training import resolve, steps


class PhaseInputs(NamedTuple):
  """What a phase's loop runs: a model, its training batches, and its validation."""
  forward: keras.Model  # inputs -> float32 logits; what the phase's steps train
  batches: tf.distribute.DistributedDataset  # endless, shuffled, augmented for images
  # The validation split's sums through `forward`; None without validation (val_fraction=0).
  evaluate: Callable[[], steps.Sums | None]
  # ((train features, labels), (validation features, labels)) when the phase computed them
  # (this worker's shard), for the data audit to reuse; None otherwise.
  features: tuple | None = None
  features_seconds: float | None = None  # the wall seconds of that feature pass


class Validation:
  """The validation images, distributed and cached once for every evaluation of a run;
  calling it gives None when there are none (a run without validation)."""

  def __init__(self, setup: resolve.RunSetup, plan: plan_lib.Plan, data: dataset.Data,
               model: keras.Model):
    self.validated = data.validated
    if not self.validated:
      return
    config = setup.config
    strategy = setup.runtime.strategy
    cache = pipeline.use_memory_cache(config.data.cache, data.val, plan.image_size)
    # Built once, so the memory cache is filled only once.
    self.batches = strategy.distribute_datasets_from_function(
        lambda context: pipeline.eval_batches(
            data.val, image_size=plan.image_size, batch_size=config.train.batch_size,
            cache=cache, input_context=context))
    self.num_classes = len(data.class_names)
    self.multi_label = plan.task == 'multi_label'
    self.step = (steps.make_scores_step if self.multi_label else steps.make_eval_step)(
        strategy, model, self.num_classes)  # one per model

  def __call__(self) -> steps.Sums | steps.Scores | None:
    if not self.validated:
      return None
    if self.multi_label:
      return steps.evaluate_scores(self.step, self.batches)
    return steps.evaluate(self.step, self.batches, self.num_classes)


def on_images(setup: resolve.RunSetup, plan: plan_lib.Plan, data: dataset.Data,
              model: transfer.TransferModel, validation: Validation, *, seed: int,
              skip: int = 0,
              augmentation: augment.Augmentation = augment.Augmentation()) -> PhaseInputs:
  """The whole classifier on augmented training images (random crop, flip, and what
  `augmentation` adds: RandAugment, mixup, cutmix)."""
  config = setup.config
  cache = pipeline.use_memory_cache(config.data.cache, data.train, plan.image_size)
  batches = setup.runtime.strategy.distribute_datasets_from_function(
      lambda context: pipeline.train_batches(
          data.train, image_size=plan.image_size, batch_size=config.train.batch_size,
          seed=seed, cache=cache, shuffle_buffer=config.data.shuffle_buffer,
          min_area=config.data.crop_min_area, flip=config.data.flip,
          augmentation=augmentation, num_classes=len(data.class_names), skip=skip,
          input_context=context))
  return PhaseInputs(model.model, batches, validation)


def on_features(setup: resolve.RunSetup, plan: plan_lib.Plan, data: dataset.Data,
                model: transfer.TransferModel, *, seed: int, skip: int = 0) -> PhaseInputs:
  """The head alone on backbone features of the evaluation view, computed once here (one
  inference pass over this worker's shard of each split; no augmentation)."""
  config, rt = setup.config, setup.runtime
  started = time.time()
  logging.info('Computing backbone features of %d training and %d validation images once '
               'for the head phase.', data.train.num_examples, data.val.num_examples)
  extract = tf.function(lambda images: model.features(images, training=False),
                        reduce_retracing=True, jit_compile=plan.jit_compile)
  local = tf.distribute.InputContext(num_input_pipelines=rt.num_workers,
                                     input_pipeline_id=rt.worker_index,
                                     num_replicas_in_sync=rt.strategy.num_replicas_in_sync)
  train_features, val_features = (
      features.compute_features(extract, split, image_size=plan.image_size,
                                batch_size=config.train.batch_size, input_context=local,
                                what=f'Backbone features of the {name} images')
      if split.num_examples else None
      for name, split in (('training', data.train), ('validation', data.val)))
  if val_features is None:  # no validation: no examples, of the training features' shapes
    val_features = tuple(np.zeros((0,) + array.shape[1:], array.dtype)
                         for array in train_features)
  features_seconds = time.time() - started
  logging.info('Features ready in %.1f s.', features_seconds)

  def distributed(arrays, seed, skip=0):
    return rt.strategy.distribute_datasets_from_function(
        lambda context: features.feature_batches(
            *arrays, batch_size=config.train.batch_size, seed=seed, skip=skip,
            input_context=context))

  num_classes = len(data.class_names)
  multi_label = plan.task == 'multi_label'
  step = (steps.make_scores_step if multi_label else steps.make_eval_step)(
      rt.strategy, model.head, num_classes)

  def evaluate():
    if not data.validated:
      return None
    batches = distributed(val_features, None)
    if multi_label:
      return steps.evaluate_scores(step, batches)
    return steps.evaluate(step, batches, num_classes)

  return PhaseInputs(model.head, distributed(train_features, seed, skip), evaluate,
                     features=(train_features, val_features),
                     features_seconds=features_seconds)
