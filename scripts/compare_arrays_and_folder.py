r"""The notebook API's arrays train like the same images in a folder: accuracy and time.

Takes the first --per_class images of each class of a folder (CIFAR-10's 32-px JPEGs by
default), and trains the same classifier with tft.ImageClassifier.create and the same seed:
from that folder (ImageData.from_folder), and from the images decoded into uint8 arrays in
memory (ImageData.from_arrays, decoded by tftransfer's own decode, so the pixels are the
ones the folder's pipeline sees). Each training runs in a fresh process, as a user's would,
in the order folder, arrays, arrays, folder, so that a machine getting slower or faster
weighs on both alike. Prints one JSON line per run (validation accuracy of the selected
epoch, seconds from the ImageData to a trained classifier: for arrays, from the arrays in
memory, so writing them to the workdir counts) and the comparison.

  python scripts/compare_arrays_and_folder.py --folder=../shared/data/cifar10/train \
      --weights=../shared/weights/mobilenet_2_5_224_tf_no_top.h5 --per_class=100
"""

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time


def _subset(folder: str, per_class: int, output: pathlib.Path) -> None:
  """Links the first `per_class` images of each class of `folder` into `output`."""
  for name in sorted(os.listdir(folder)):
    (output / name).mkdir(parents=True)
    for file in sorted(os.listdir(os.path.join(folder, name)))[:per_class]:
      os.symlink(os.path.abspath(os.path.join(folder, name, file)), output / name / file)


def run(variant: str, args, scratch: pathlib.Path) -> dict:
  """One training from the folder or from arrays, in this process."""
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # TensorFlow's notices, before it loads
  # pylint: disable=g-import-not-at-top
  import numpy as np
  import tensorflow as tf
  import tftransfer as tft
  from tftransfer.data import folders, image_ops

  fields = dict(backbone='mobilenet', width=0.25, weights=args.weights,
                image_size=args.image_size, batch_size=64, finetune_lr=3e-4, seed=args.seed)
  if variant == 'arrays':  # A notebook's arrays are in memory before its timer would start.
    listing = folders.list_folder(str(scratch / 'folder'))
    images = [image_ops.decode_image(tf.io.read_file(path), max_pixels=0).numpy()
              for path in listing.files]
  started = time.time()
  if variant == 'folder':
    data = tft.ImageData.from_folder(str(scratch / 'folder'))
  else:
    data = tft.ImageData.from_arrays(images, np.asarray(listing.labels), listing.class_names)
  workdir = tempfile.mkdtemp(prefix=f'{variant}_', dir=scratch)
  clf = tft.ImageClassifier.create(data, workdir=workdir, **fields)
  return {'variant': variant, 'val_accuracy': clf.result['val_accuracy'],
          'seconds': round(time.time() - started, 1), 'num_val': clf.result['num_val_examples'],
          'weights_sha256': clf.result['weights_sha256']}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--folder', required=True, help='an image folder, <class>/<image>')
  parser.add_argument('--weights', required=True, help='MobileNet-0.25 weights without top')
  parser.add_argument('--per_class', type=int, default=100)
  parser.add_argument('--image_size', type=int, default=96)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--variant', choices=('folder', 'arrays'), help=argparse.SUPPRESS)
  parser.add_argument('--scratch', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.variant:  # one run, in a fresh process started below
    print(json.dumps(run(args.variant, args, pathlib.Path(args.scratch))), flush=True)
    return
  scratch = pathlib.Path(tempfile.mkdtemp(prefix='arrays_and_folder_'))
  _subset(args.folder, args.per_class, scratch / 'folder')
  runs = []
  for variant in ('folder', 'arrays', 'arrays', 'folder'):
    result = subprocess.run([sys.executable, __file__, *sys.argv[1:], f'--variant={variant}',
                             f'--scratch={scratch}'], capture_output=True, text=True, check=True)
    runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    print(json.dumps(runs[-1]), flush=True)
  mean = {variant: sum(r['seconds'] for r in runs if r['variant'] == variant) / 2
          for variant in ('folder', 'arrays')}
  accuracy = {r['variant']: r['val_accuracy'] for r in runs}
  print(json.dumps({
      'accuracy_difference_points': round(100 * (accuracy['arrays'] - accuracy['folder']), 2),
      'mean_seconds': mean, 'time_ratio': round(mean['arrays'] / mean['folder'], 3),
      'same_weights': len({r['weights_sha256'] for r in runs}) == 1}))
  shutil.rmtree(scratch, ignore_errors=True)


if __name__ == '__main__':
  main()
