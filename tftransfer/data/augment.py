"""Stronger augmentation for training batches, with Keras 3's own layers in tf.data:
RandAugment per image, then mixup or cutmix per batch (soft targets).

    RandAugment   Cubuk et al., 2020 (keras.layers.RandAugment): `num_ops` operations drawn
                  per image from shear, translation, rotation, brightness, colour, contrast,
                  sharpness, posterization, solarization, auto-contrast, equalization
    mixup         Zhang et al., 2018 (keras.layers.MixUp): each image blended with another of
                  the batch, weight ~ Beta(alpha, alpha); targets blended alike
    cutmix        Yun et al., 2019 (keras.layers.CutMix): a box of another image pasted in;
                  targets mixed by area; Keras draws the Beta parameter from (0, factor]

With both mixup and cutmix on, each batch gets one of them with probability 1/2 (as timm
does). Targets become float32 one-hot or mixed [B, num_classes]; the train step's label
smoothing and class weights apply to them as they are.
"""

import dataclasses

import keras
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Augmentation:
  """What augments training images beyond random crops and flips; all zero = nothing."""
  randaugment_ops: int = 0
  randaugment_magnitude: float = 0.5
  mixup_alpha: float = 0.0
  cutmix_alpha: float = 0.0

  @property
  def mixes(self) -> bool:
    """Whether batches carry soft targets."""
    return self.mixup_alpha > 0 or self.cutmix_alpha > 0


def randaugment(*, num_ops: int, magnitude: float, seed: int):
  """float32 image [S, S, 3] in 0-255 -> the same, RandAugment-ed (new ops per image)."""
  layer = keras.layers.RandAugment(value_range=(0, 255), num_ops=num_ops, factor=magnitude,
                                   seed=seed)

  def augment(image):
    return tf.clip_by_value(layer(image, training=True), 0.0, 255.0)
  return augment


def mix_batches(augmentation: Augmentation, *, num_classes: int, seed: int):
  """(float32 images [B, S, S, 3], int32 labels [B]) -> (mixed images, float32 targets
  [B, num_classes]) by mixup and/or cutmix."""
  mixers = []
  if augmentation.mixup_alpha > 0:
    mixers.append(keras.layers.MixUp(alpha=augmentation.mixup_alpha, seed=seed))
  if augmentation.cutmix_alpha > 0:
    mixers.append(keras.layers.CutMix(factor=augmentation.cutmix_alpha, seed=seed + 1))

  def mix(images, labels):
    data = {'images': images, 'labels': tf.one_hot(labels, num_classes)}
    if len(mixers) == 1:
      mixed = mixers[0](data, training=True)
    else:
      mixed = tf.cond(tf.random.uniform([], seed=seed) < 0.5,
                      lambda: mixers[0](data, training=True),
                      lambda: mixers[1](data, training=True))
    return mixed['images'], tf.cast(mixed['labels'], tf.float32)
  return mix
