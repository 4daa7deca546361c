"""The head phase's input: backbone features computed once, then batched like images.

With the backbone frozen, its pooled features of a training image never change (the head
phase uses no augmentation when it trains on features), so one inference pass over the split
replaces an inference per image per epoch: ten head epochs cost little more than one.
"""

from typing import Callable

import numpy as np
import tensorflow as tf

from tftransfer import passes
from tftransfer.data import pipeline
from tftransfer.data.dataset import Split


def compute_features(extract: Callable[[tf.Tensor], tf.Tensor], split: Split, *,
                     image_size: int, batch_size: int,
                     input_context: tf.distribute.InputContext | None = None,
                     what: str = 'Backbone features') -> tuple[np.ndarray, np.ndarray]:
  """Runs `extract` over this worker's shard of `split` in its evaluation view.

  Args:
    extract: float32 images [B, S, S, 3] in 0-255 -> float32 features [B, D] (the frozen
      backbone and its pooling, in inference mode).
    split: the examples.
    image_size: S, the model's input side in pixels.
    batch_size: the global batch size (each call of `extract` takes one replica's share).
    input_context: which shard this worker reads; None = all of `split`.
    what: the title of the pass's progress lines (passes.Progress).

  Returns:
    (float32 features [N, D], int32 labels [N]) in the split's order.
  """
  batches = pipeline.eval_batches(split, image_size=image_size, batch_size=batch_size,
                                  cache=False, input_context=input_context)
  features, labels, done = [], [], 0
  progress = passes.Progress(what, split.num_examples if input_context is None
                             else split.num_examples // input_context.num_input_pipelines)
  for images, batch_labels in batches:
    features.append(extract(images).numpy())
    labels.append(batch_labels.numpy())
    done += len(labels[-1])
    progress.update(done)
  return np.concatenate(features), np.concatenate(labels)


def feature_batches(features: np.ndarray, labels: np.ndarray, *, batch_size: int,
                    seed: int | None, skip: int = 0,
                    input_context: tf.distribute.InputContext | None = None
                    ) -> tf.data.Dataset:
  """Batches of (features, labels): endless, shuffled and of equal size when `seed` is set
  (training); one ordered pass otherwise (evaluation).

  Args:
    features: float32 [N, D], this worker's examples.
    labels: int32 [N].
    batch_size: the global batch size (divided per replica with `input_context`).
    seed: shuffling seed; None = one pass in order.
    skip: training batches to pass over first (what a resumed run trained on before).
    input_context: the tf.distribute input context, if distributed.
  """
  examples = tf.data.Dataset.from_tensor_slices((features, labels))
  batch = pipeline.per_replica_batch_size(batch_size, input_context)
  if seed is None:
    return examples.batch(batch)
  examples = examples.shuffle(len(labels), seed=seed).repeat()
  return examples.batch(batch, drop_remainder=True).skip(skip).prefetch(tf.data.AUTOTUNE)
