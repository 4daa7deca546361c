r"""How a trained run's validation predictions change between TensorFlow's default JPEG decoder
(fast IDCT, as tftransfer decoded before) and tftransfer's decode (accurate IDCT, as Pillow).

    python scripts/compare_jpeg_decoders.py --workdir=/tmp/c10_mobilenet

The run's folder and validation split, as training carved them; prints JSON: the validation
accuracy under each decoder and how many top-1 predictions differ. Folder runs only. When the
run's scan used every file (data_report.json), the folder's listing is its split's input and
only the validation images are decoded; otherwise the folder is scanned again.
"""

import json
import os

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from tftransfer import restore
from tftransfer.data import folders, image_ops, splits

_WORKDIR = flags.DEFINE_string('workdir', None, 'A finished training run on an image folder.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 250, 'Images per model call.')
flags.mark_flags_as_required(['workdir'])


def _fast_idct(encoded: tf.Tensor) -> tf.Tensor:
  """TensorFlow's default decode: JDCT_IFAST for JPEGs, no EXIF orientation."""
  return tf.io.decode_image(encoded, channels=3, expand_animations=False)


def _labels(workdir: str, root: str, limit: int) -> tuple[tuple[str, ...], np.ndarray]:
  """(files, labels) training split: the listing when the run's scan kept every file."""
  with open(os.path.join(workdir, 'data_report.json')) as f:
    scanned = json.load(f)['scan']
  listing = folders.list_folder(root)
  if not scanned['skipped'] and scanned['usable_images'] == len(listing.files):
    return listing.files, listing.labels
  scan = folders.scan_folder(root, max_image_pixels=limit)
  return scan.files, scan.labels


def main(argv):
  del argv
  trained = restore.restore(_WORKDIR.value, allow_unfinished=True)
  config = trained.config
  limit = config.data.max_image_pixels
  files, labels = _labels(_WORKDIR.value, config.data.path, limit)
  _, val = splits.train_val_indices(labels, config.data, config.seed)
  paths = [os.fsencode(files[index]) for index in val]
  model = tf.function(lambda images: trained.model(images, training=False))
  predictions = {}
  for name, decode in (('fast_idct', _fast_idct),
                       ('tftransfer', lambda data: image_ops.decode_image(data,
                                                                           max_pixels=limit))):
    views = tf.data.Dataset.from_tensor_slices(paths).map(
        lambda path, decode=decode: image_ops.evaluation_view(decode(tf.io.read_file(path)),
                                                              trained.image_size),
        num_parallel_calls=tf.data.AUTOTUNE).batch(_BATCH_SIZE.value)
    predictions[name] = np.concatenate([np.argmax(model(batch).numpy(), -1)
                                        for batch in views])
  labels = labels[val]
  print(json.dumps({
      'workdir': os.path.abspath(_WORKDIR.value), 'validation_images': len(labels),
      'accuracy_fast_idct': round(float(np.mean(predictions['fast_idct'] == labels)), 4),
      'accuracy_tftransfer': round(float(np.mean(predictions['tftransfer'] == labels)), 4),
      'top1_changed': int(np.sum(predictions['fast_idct'] != predictions['tftransfer'])),
      'final_metrics_val_accuracy': (trained.final_metrics or {}).get('val_accuracy')}))


if __name__ == '__main__':
  app.run(main)
