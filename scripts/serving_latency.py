r"""Median latency of an export's signatures next to the Keras model they were exported from.

Usage:
  python scripts/serving_latency.py --workdir=W --export=E/1 [--repeats=50] [--images=DIR]

For a batch of 1 and of 64 images, times (median and 90th percentile over --repeats calls,
after warm-up calls):
  serving_default  encoded JPEG bytes through the SavedModel (decode, preprocess, model)
  predict_images   the decoded uint8 pixels through the SavedModel (preprocess, model)
  keras_predict    model.predict on the preprocessed float32 batch (the evaluation view)
  keras_call       model(batch, training=False), a plain call, on the same float32 batch
and prints one JSON object. Images are --images (the first 64 files, repeated if fewer), or
64 synthetic JPEGs of the model's input size. Run it on a quiet machine: the numbers are only
as good as the machine is idle.
"""

import json
import os
import platform
import statistics
import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from tftransfer.data import image_ops
from tftransfer.serving import export as export_lib, prediction, signatures
from tftransfer import restore

_WORKDIR = flags.DEFINE_string('workdir', None, 'The training run the export came from.')
_EXPORT = flags.DEFINE_string('export', None, 'The exported version directory, E/<N>.')
_REPEATS = flags.DEFINE_integer('repeats', 50, 'Timed calls per measurement.', lower_bound=1)
_WARMUP = flags.DEFINE_integer('warmup', 5, 'Untimed calls before timing.', lower_bound=1)
_IMAGES = flags.DEFINE_string('images', None, 'Folder of images to send; default synthetic.')
flags.mark_flags_as_required(['workdir', 'export'])

BATCH_SIZES = (1, 64)


def _encoded_images(image_size: int) -> list[bytes]:
  if _IMAGES.value:
    files = prediction.image_files([_IMAGES.value])[:max(BATCH_SIZES)]
    encoded = []
    for file in files:
      with open(file, 'rb') as f:
        encoded.append(f.read())
  else:
    rng = np.random.default_rng(0)
    encoded = [tf.io.encode_jpeg(rng.integers(0, 256, (image_size, image_size, 3),
                                              dtype=np.uint8)).numpy()
               for _ in range(max(BATCH_SIZES))]
  return [encoded[i % len(encoded)] for i in range(max(BATCH_SIZES))]


def _milliseconds(call) -> dict:
  for _ in range(_WARMUP.value):
    call()
  times = []
  for _ in range(_REPEATS.value):
    start = time.perf_counter()
    call()
    times.append((time.perf_counter() - start) * 1000)
  return {'median_ms': round(statistics.median(times), 2),
          'p90_ms': round(float(np.percentile(times, 90)), 2)}


def main(argv):
  del argv
  trained = restore.restore(_WORKDIR.value)
  export = prediction.load_export(_EXPORT.value)
  serve = export.signature(signatures.SERVING_DEFAULT)
  predict_images = export.signature(signatures.PREDICT_IMAGES)
  encoded = _encoded_images(trained.image_size)
  limit = export_lib.max_image_pixels(trained.config)
  results = {}
  for batch_size in BATCH_SIZES:
    batch = encoded[:batch_size]
    # predict_images takes one shape per call: the images as sent, when they share a size.
    pixels = [image_ops.decode_image(data, max_pixels=limit).numpy() for data in batch]
    same_shape = len({image.shape for image in pixels}) == 1
    views = np.stack([image_ops.evaluation_view(image, trained.image_size).numpy()
                      for image in pixels])
    results[f'batch_{batch_size}'] = {
        'serving_default': _milliseconds(lambda: serve(image_bytes=tf.constant(batch))),
        'predict_images': (_milliseconds(lambda: predict_images(images=tf.constant(
            np.stack(pixels)))) if same_shape else 'skipped: images of different sizes'),
        'keras_predict': _milliseconds(lambda: trained.model.predict(
            views, batch_size=batch_size, verbose=0)),
        'keras_call': _milliseconds(lambda: trained.model(views, training=False).numpy()),
    }
  print(json.dumps({
      'export': os.path.abspath(_EXPORT.value), 'workdir': os.path.abspath(_WORKDIR.value),
      'backbone': trained.config.model.backbone, 'image_size': trained.image_size,
      'images': _IMAGES.value or 'synthetic JPEGs of the input size',
      'repeats': _REPEATS.value, 'cpus': os.cpu_count(), 'machine': platform.processor()
      or platform.machine(), 'tensorflow': tf.__version__, 'results': results}, indent=2))


if __name__ == '__main__':
  app.run(main)
