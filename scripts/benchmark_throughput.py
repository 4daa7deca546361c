r"""Training throughput of tftransfer's step, input pipeline, and both together.

Runs the exact training loop tftransfer trains with (training/steps.py make_train_loop) for a
chosen backbone, resolution, batch size, precision and XLA setting, and prints one JSON line per
measurement, in images/sec:

  train_step_synthetic   the compiled step alone on one batch of uniform noise in memory;
  train_step_real_batch  the step alone on one real batch from --train_dir held in memory
                         (on CPUs, real images train measurably slower than noise);
  pipeline_first_pass    the tf.data input pipeline alone on --train_dir, decoding the JPEGs;
  pipeline_cached        the pipeline alone reading the decoded cache (later epochs);
  end_to_end             the step fed by the pipeline, as in a real epoch.

Without --train_dir only train_step_synthetic runs, which is how to measure a GPU or TPU:

  python scripts/benchmark_throughput.py --backbone=resnet50 --image_size=224 \
      --batch_size=256 --precision=bfloat16 --jit_compile=true

Published anchor for that setting on one A100 with mixed precision and XLA: about 2,375
images/sec (NVIDIA DeepLearningExamples, TF1 container).
"""

import json
import time

from absl import app
from absl import flags
import keras
import numpy as np
import tensorflow as tf

from tftransfer import config as config_lib, runtime
from tftransfer.data import pipeline, sources
from tftransfer.model import transfer
from tftransfer.training import optimization, steps

_BACKBONE = flags.DEFINE_string('backbone', 'mobilenet', 'Registry name of the backbone.')
_WIDTH = flags.DEFINE_float('width', 0.25, 'MobileNet width multiplier (1.0 otherwise).')
_IMAGE_SIZE = flags.DEFINE_integer('image_size', 96, 'Input resolution in pixels.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 64, 'Global batch size.')
_PRECISION = flags.DEFINE_enum('precision', 'float32', ['float32', 'bfloat16', 'float16'],
                               'Compute precision (mixed, float32 weights).')
_JIT = flags.DEFINE_bool('jit_compile', False, 'XLA-compile the train step.')
_PHASE = flags.DEFINE_enum('phase', 'finetune', ['finetune', 'head'],
                           "'finetune': backbone trainable (BatchNorm frozen); 'head': "
                           'backbone frozen, on images.')
_STEPS = flags.DEFINE_integer('steps', 100, 'Timed steps per measurement (after warm-up).')
_TRAIN_DIR = flags.DEFINE_string('train_dir', None, 'Image folder for the pipeline and '
                                 'end-to-end measurements; omitted = train_step only.')
_STRATEGY = flags.DEFINE_string('strategy', 'auto', 'config.distribute.strategy value.')


def _timed(function, steps: int, batch_size: int) -> float:
  function(1)  # warm-up: tracing and first batches
  start = time.perf_counter()
  function(steps)
  return steps * batch_size / (time.perf_counter() - start)


def main(argv):
  del argv
  strategy, strategy_name = runtime.create_strategy(_STRATEGY.value)
  precision = runtime.Precision(_PRECISION.value)
  keras.mixed_precision.set_global_policy(precision.keras_policy)
  size, batch_size = _IMAGE_SIZE.value, _BATCH_SIZE.value
  with strategy.scope():
    model = transfer.build_model(backbone=_BACKBONE.value, num_classes=10, image_size=size,
                               width=_WIDTH.value, weights='none')
    transfer.set_trainable(model, train_backbone=_PHASE.value == 'finetune')
    variables = model.model.trainable_variables
    optimizer = optimization.build_optimizer(
        name='adamw', learning_rate=1e-4, weight_decay=1e-4, momentum=0.9,
        precision=precision, variables=variables)
  loop = steps.make_train_loop(strategy, model.model, variables, optimizer,
                               global_batch_size=batch_size, num_classes=10,
                               label_smoothing=0.1, jit_compile=_JIT.value)
  setting = {'backbone': _BACKBONE.value, 'width': _WIDTH.value, 'image_size': size,
             'batch_size': batch_size, 'precision': _PRECISION.value,
             'jit_compile': _JIT.value, 'phase': _PHASE.value, 'strategy': strategy_name,
             'replicas': strategy.num_replicas_in_sync}

  def report(measurement, images_per_sec, **extra):
    print(json.dumps({'measurement': measurement, 'images_per_sec': round(images_per_sec, 1),
                      **setting, **extra}), flush=True)

  def train_step_alone(batch):
    iterator = iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(batch).repeat()))
    return _timed(lambda n: loop(iterator, tf.constant(n)).numpy(), _STEPS.value, batch_size)

  rng = np.random.default_rng(0)
  report('train_step_synthetic', train_step_alone((
      rng.uniform(0, 255, (batch_size, size, size, 3)).astype(np.float32),
      rng.integers(0, 10, batch_size).astype(np.int32))))
  if not _TRAIN_DIR.value:
    return

  data_config = config_lib.default_config().data
  data_config.source, data_config.path = 'folder', _TRAIN_DIR.value
  data = sources.load(data_config, seed=0)
  batches = pipeline.train_batches(
      data.train, image_size=size, batch_size=batch_size, seed=0, cache=True,
      shuffle_buffer=0, min_area=data_config.crop_min_area, flip=True)
  steps_per_epoch = data.train.num_examples // batch_size
  batch_iterator = iter(batches)

  def consume(steps):
    for _ in range(steps):
      next(batch_iterator)

  start = time.perf_counter()
  consume(steps_per_epoch)  # the first pass decodes every JPEG and fills the cache
  report('pipeline_first_pass', steps_per_epoch * batch_size / (time.perf_counter() - start))
  report('pipeline_cached', _timed(consume, steps_per_epoch, batch_size))
  report('train_step_real_batch', train_step_alone(next(iter(batches))))
  fed = iter(strategy.experimental_distribute_dataset(batches))
  report('end_to_end', _timed(lambda n: loop(fed, tf.constant(n)).numpy(), _STEPS.value,
                              batch_size))


if __name__ == '__main__':
  app.run(main)
