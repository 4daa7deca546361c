"""The tf.data input pipeline: decode once, cache small, augment and batch per step.

Images are cached as uint8 at most `image_size` on their shorter side (a 32-pixel CIFAR
image stays 32 pixels), so the cache is small and the expensive JPEG/PNG decode happens once
per run, not once per epoch. Everything per-step (crop, resize, flip) runs in parallel
tf.data maps. With a `tf.distribute.InputContext` the functions read only their worker's
shard and batch per replica, so they plug into `strategy.distribute_datasets_from_function`.
"""

import os

from absl import logging
import tensorflow as tf

from tftransfer.data import augment, image_ops
from tftransfer.data.dataset import Split

AUTOTUNE = tf.data.AUTOTUNE


def use_memory_cache(cache: str, split: Split, image_size: int, *, sample: int = 64) -> bool:
  """Resolves config.data.cache: 'auto' caches when the decoded split fits a quarter of RAM.

  The size is extrapolated from the first `sample` images as stored (shrunk to at most
  `image_size`), so 32-pixel CIFAR images are not budgeted as full-size photos.
  """
  if cache != 'auto':
    return cache == 'memory'
  stored = stored_examples(split, image_size=image_size, cache=False).take(sample)
  sizes = [int(tf.size(image)) for image, _ in stored]
  estimate = split.num_examples * (sum(sizes) / max(len(sizes), 1))
  memory = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
  fits = estimate <= memory / 4
  logging.info('data.cache=auto -> %s: the decoded split needs about %.2f GB of %.1f GB RAM.',
               'memory' if fits else 'none', estimate / 2**30, memory / 2**30)
  return fits


def _shard(input_context):
  if input_context is None:
    return 0, 1
  return input_context.input_pipeline_id, input_context.num_input_pipelines


def per_replica_batch_size(batch_size: int, input_context) -> int:
  """The batch size each replica reads: the global `batch_size` divided by the replicas."""
  if input_context is None:
    return batch_size
  return input_context.get_per_replica_batch_size(batch_size)


def stored_examples(split: Split, *, image_size: int, cache: bool,
                    input_context: tf.distribute.InputContext | None = None
                    ) -> tf.data.Dataset:
  """This worker's (uint8 image, label) examples shrunk to storage size, optionally cached."""
  examples = split.dataset(*_shard(input_context)).map(
      lambda image, label: (image_ops.fit_to_storage(image, image_size), label),
      num_parallel_calls=AUTOTUNE)
  return examples.cache() if cache else examples


def train_batches(split: Split, *, image_size: int, batch_size: int, seed: int,
                  cache: bool, shuffle_buffer: int, min_area: float, flip: bool,
                  augmentation: augment.Augmentation = augment.Augmentation(),
                  num_classes: int = 0, skip: int = 0,
                  input_context: tf.distribute.InputContext | None = None
                  ) -> tf.data.Dataset:
  """Endless shuffled, augmented batches of (float32 images in 0-255, labels).

  Labels are int32 [B], or float32 soft targets [B, num_classes] when `augmentation` mixes
  (mixup, cutmix).

  Args:
    split: the training examples.
    image_size: output side in pixels.
    batch_size: global batch size (divided per replica when `input_context` is given).
    seed: seeds shuffling and augmentation: the same seed gives the same stream.
    cache: keep decoded images in memory.
    shuffle_buffer: shuffle buffer in examples; 0 = this shard's whole split.
    min_area: smallest random crop area (1.0 = no crop).
    flip: random horizontal flips.
    augmentation: RandAugment, mixup and cutmix settings (augment.py); default none.
    num_classes: the width of soft targets (needed when `augmentation` mixes).
    skip: batches of the stream to pass over first, unaugmented (a resumed run skips the
      ones it trained on before, so it reads on where it was interrupted). The crops and
      flips continue exactly; RandAugment and mixup/cutmix draw from Keras' own seed
      generators, which start afresh.
    input_context: the tf.distribute input context, if distributed.
  """
  examples = stored_examples(split, image_size=image_size, cache=cache,
                             input_context=input_context)
  buffer = shuffle_buffer or split.num_examples
  examples = examples.shuffle(buffer, seed=seed, reshuffle_each_iteration=True).repeat()
  seeds = tf.data.Dataset.random(seed=seed).batch(2)
  rand_augment = (augment.randaugment(num_ops=augmentation.randaugment_ops,
                                      magnitude=augmentation.randaugment_magnitude, seed=seed)
                  if augmentation.randaugment_ops else None)

  def view(example, example_seed):
    image, label = example
    image = image_ops.random_crop_resize(image, example_seed, image_size=image_size,
                                         min_area=min_area, flip=flip)
    return (rand_augment(image) if rand_augment else image), label

  batch = per_replica_batch_size(batch_size, input_context)
  batches = tf.data.Dataset.zip(examples, seeds).skip(skip * batch)
  batches = batches.map(view, num_parallel_calls=AUTOTUNE).batch(batch, drop_remainder=True)
  if augmentation.mixes:
    batches = batches.map(augment.mix_batches(augmentation, num_classes=num_classes,
                                              seed=seed), num_parallel_calls=AUTOTUNE)
  return batches.prefetch(AUTOTUNE)


def eval_batches(split: Split, *, image_size: int, batch_size: int, cache: bool,
                 input_context: tf.distribute.InputContext | None = None
                 ) -> tf.data.Dataset:
  """One pass of center-cropped batches (float32 images in 0-255, int32 labels), in order."""
  examples = stored_examples(split, image_size=image_size, cache=cache,
                             input_context=input_context)
  batches = examples.map(
      lambda image, label: (image_ops.center_crop_resize(image, image_size), label),
      num_parallel_calls=AUTOTUNE)
  return batches.batch(per_replica_batch_size(batch_size, input_context)).prefetch(AUTOTUNE)


def pixel_batches(split: Split, *, image_size: int, batch_size: int) -> tf.data.Dataset:
  """One pass of `eval_batches` rounded to uint8 pixels (uint8 images, int32 labels), in order.

  What a phone app sends a LiteRT model that takes pixels; exported models of every format
  are compared on these same pixels.
  """
  batches = eval_batches(split, image_size=image_size, batch_size=batch_size, cache=False)
  return batches.map(lambda images, labels: (image_ops.to_pixels(images), labels))
