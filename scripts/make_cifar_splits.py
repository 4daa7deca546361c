r"""Carves held-out and training folders from an image folder, as symlink trees.

    OUT/test/<class>/         --test_per_class images of each class, never trained on
    OUT/train_<N>/<class>/    N training images of each class (one folder per --sizes), from
                              the images the test set left; 'all' = every one of them
    OUT/train_lt/<class>/     a long-tailed set: --lt_head images in the first half of the
                              classes, --lt_tail in the others

Every selection is seeded, so the same command makes the same folders. Used to measure
tftransfer's defaults and its benchmark on data nobody tuned on:

  python scripts/make_cifar_splits.py --input=../shared/data/cifar10/train \
      --output=/tmp/cifar_splits
"""

import argparse
import os
import pathlib

import numpy as np


def _images(folder: pathlib.Path) -> list[pathlib.Path]:
  return sorted(path for path in folder.iterdir() if path.is_file()
                and not path.name.startswith('.'))


def _link(files, target: pathlib.Path) -> None:
  target.mkdir(parents=True, exist_ok=True)
  for path in files:
    link = target / path.name
    if not link.exists():
      os.symlink(path.resolve(), link)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--input', required=True, help='root/<class>/<image> folder')
  parser.add_argument('--output', required=True)
  parser.add_argument('--test_per_class', type=int, default=1000)
  parser.add_argument('--sizes', default='50,500,all',
                      help='training images per class, comma-separated; all = the rest')
  parser.add_argument('--lt_head', type=int, default=500)
  parser.add_argument('--lt_tail', type=int, default=25)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  root, output = pathlib.Path(args.input), pathlib.Path(args.output)
  classes = sorted(path for path in root.iterdir() if path.is_dir())
  rng = np.random.default_rng(args.seed)
  for index, folder in enumerate(classes):
    files = list(rng.permutation(_images(folder)))
    test, rest = files[:args.test_per_class], files[args.test_per_class:]
    _link(test, output / 'test' / folder.name)
    for size in args.sizes.split(','):
      chosen = rest if size == 'all' else rest[:int(size)]
      _link(chosen, output / f'train_{size}' / folder.name)
    tail = index >= len(classes) // 2
    _link(rest[:args.lt_tail if tail else args.lt_head], output / 'train_lt' / folder.name)
  for split in sorted(output.iterdir()):
    counts = [len(_images(folder)) for folder in sorted(split.iterdir())]
    print(f'{split}: {sum(counts)} images, per class {counts}')


if __name__ == '__main__':
  main()
