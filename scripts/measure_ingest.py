"""Times the image-folder scan and the TFRecord input pipeline on a real folder.

Usage (from the repository root, ../shared beside it):
  python scripts/measure_ingest.py [--folder=../shared/data/cifar10/train] [--repeats=3]

Prints one JSON object: the scan's wall time without a cache (each repeat), the time to
convert the folder to TFRecords, and the images/sec of the training split read through the
TFRecord source and through the folder source (read and decode included, as training reads
them). The machine's CPU count and load average are printed with them: on a shared machine
the load says how far to trust the figures.
"""

import argparse
import json
import os
import pathlib
import shutil
import statistics
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import ml_collections  # noqa: E402
import tensorflow as tf  # noqa: E402

from tftransfer import config as config_lib  # noqa: E402
from tftransfer.data import dataset, folders, sources, tfrecords

MAX_IMAGE_PIXELS = config_lib.default_config().data.max_image_pixels

SHARED_TRAIN = pathlib.Path(__file__).resolve().parents[1].parent / 'shared/data/cifar10/train'


def images_per_sec(split: dataset.Split) -> float:
  """Reads and decodes every example of `split` once."""
  started = time.perf_counter()
  count = 0
  for _, labels in split.dataset().batch(256).prefetch(tf.data.AUTOTUNE):
    count += int(labels.shape[0])
  assert count == split.num_examples, (count, split.num_examples)
  return count / (time.perf_counter() - started)


def data_config(source: str, path: str) -> ml_collections.ConfigDict:
  config = config_lib.default_config().data
  config.source, config.path, config.eval_split = source, path, 'carve'
  return config


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--folder', default=str(SHARED_TRAIN))
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--shards', type=int, default=16)
  args = parser.parse_args()
  result = {'folder': args.folder, 'cpu_count': os.cpu_count(),
            'load_average_at_start': [round(x, 2) for x in os.getloadavg()],
            'tensorflow': tf.__version__}

  scans = []
  for _ in range(args.repeats):
    started = time.perf_counter()
    scan = folders.scan_folder(args.folder, max_image_pixels=MAX_IMAGE_PIXELS)
    scans.append(round(time.perf_counter() - started, 2))
  result.update(num_images=len(scan.files), num_skipped=len(scan.skipped),
                scan_seconds=scans, scan_seconds_median=statistics.median(scans))

  scratch = tempfile.mkdtemp(prefix='measure_ingest_')
  try:
    output = os.path.join(scratch, 'records')
    started = time.perf_counter()
    tfrecords.convert_folder(args.folder, output, num_shards=args.shards,
                             max_image_pixels=MAX_IMAGE_PIXELS)
    result['convert_seconds'] = round(time.perf_counter() - started, 2)
    result['tfrecord_bytes'] = sum(f.stat().st_size for f in pathlib.Path(output).iterdir())
    cache = os.path.join(scratch, 'folder_scan.json')  # Time reading, not scanning, below.
    for source, path in (('tfrecord', output), ('folder', args.folder)):
      split = sources.load(data_config(source, path), seed=0, scan_cache=cache).train
      rates = [round(images_per_sec(split), 1) for _ in range(args.repeats)]
      result[f'{source}_train_examples'] = split.num_examples
      result[f'{source}_images_per_sec'] = rates
      result[f'{source}_images_per_sec_median'] = statistics.median(rates)
  finally:
    shutil.rmtree(scratch)
  result['load_average_at_end'] = [round(x, 2) for x in os.getloadavg()]
  print(json.dumps(result, indent=2))


if __name__ == '__main__':
  main()
