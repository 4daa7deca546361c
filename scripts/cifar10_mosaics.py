r"""Multi-label on real images: 2x2 mosaics of CIFAR-10 photos, their tags the classes of
their four cells, trained from a CSV and judged on mosaics of photos no training mosaic uses.

  python scripts/cifar10_mosaics.py --output=/tmp/mosaics            # build only
  python scripts/cifar10_mosaics.py --output=/tmp/mosaics --train \
      --budget_minutes=20                                              # and train, judge

Building: the shared CIFAR-10 training photos of each class are split in two (seeded):
--held_out of them make only the test mosaics, the rest only the training mosaics. Each
mosaic is four photos drawn at random from its pool (64x64 px, PNG), its tags the distinct
classes among them (one to four), written to OUTPUT/train.csv and OUTPUT/test.csv as
`path,tags` with tags joined by '|'.

Training (--train): the CLI's own run (configs/mobilenet_cpu.py, the shared ImageNet
MobileNet-0.25 weights, data.source='csv', model.task and everything else 'auto') under
train.time_budget_minutes, then `evaluate --data=OUTPUT/test.csv` on the held-out mosaics.
Prints one JSON line: the test macro and micro mean average precision, F1 at the chosen
thresholds, exact match, and the run's wall time.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parent.parent
SHARED = REPO.parent / 'shared'
CELL = 32


def _pools(train_dir: pathlib.Path, held_out: float, seed: int):
  """{class: (training photo paths, held-out photo paths)}, sorted then split seeded."""
  rng = np.random.default_rng(seed)
  pools = {}
  for name in sorted(os.listdir(train_dir)):
    photos = sorted((train_dir / name).iterdir())
    order = rng.permutation(len(photos))
    cut = int(round(held_out * len(photos)))
    pools[name] = ([photos[i] for i in order[cut:]], [photos[i] for i in order[:cut]])
  return pools


def _mosaics(pools: dict, side: int, count: int, folder: pathlib.Path, rng) -> list[str]:
  """Writes `count` mosaics into folder/<i>.png; returns the CSV rows, path relative to the
  folder's parent."""
  folder.mkdir(parents=True, exist_ok=True)
  names = sorted(pools)
  rows = []
  for index in range(count):
    cells = rng.integers(0, len(names), 4)
    canvas = Image.new('RGB', (2 * CELL, 2 * CELL))
    for position, label in enumerate(cells):
      photos = pools[names[label]][side]
      photo = Image.open(photos[int(rng.integers(len(photos)))]).convert('RGB')
      canvas.paste(photo, ((position % 2) * CELL, (position // 2) * CELL))
    canvas.save(folder / f'{index:05d}.png')
    tags = '|'.join(sorted({names[label] for label in cells}))
    rows.append(f'{folder.name}/{index:05d}.png,{tags}')
  return rows


def build(output: pathlib.Path, *, train_dir: pathlib.Path, num_train: int, num_test: int,
          held_out: float, seed: int) -> tuple[pathlib.Path, pathlib.Path]:
  """Writes the mosaics and OUTPUT/train.csv, OUTPUT/test.csv; returns the two CSVs."""
  pools = _pools(train_dir, held_out, seed)
  rng = np.random.default_rng(seed + 1)
  manifests = []
  for name, side, count in (('train', 0, num_train), ('test', 1, num_test)):
    rows = _mosaics(pools, side, count, output / name, rng)
    path = output / f'{name}.csv'
    path.write_text('path,tags\n' + '\n'.join(rows) + '\n')
    manifests.append(path)
    print(f'Wrote {count} {name} mosaics and {path}.', file=sys.stderr)
  return manifests[0], manifests[1]


def train_and_judge(train_csv: pathlib.Path, test_csv: pathlib.Path, *, workdir: pathlib.Path,
                    weights: pathlib.Path, budget_minutes: float, seed: int) -> dict:
  """Trains with the train command under a time budget, evaluates on the test mosaics."""
  started = time.monotonic()
  subprocess.run([sys.executable, '-m', 'tftransfer.train',
                  f'--config={REPO / "configs" / "mobilenet_cpu.py"}', f'--workdir={workdir}',
                  '--config.data.source=csv', f'--config.data.path={train_csv}',
                  '--config.data.label_column=tags', '--config.data.label_delimiter=|',
                  f'--config.model.weights={weights}', f'--config.seed={seed}',
                  f'--config.train.time_budget_minutes={budget_minutes:g}'], check=True)
  train_seconds = time.monotonic() - started
  subprocess.run([sys.executable, '-m', 'tftransfer.evaluate', f'--workdir={workdir}',
                  f'--data={test_csv}', f'--output_dir={workdir / "eval_test"}'], check=True)
  metrics = json.loads((workdir / 'eval_test' / 'metrics.json').read_text())
  final = json.loads((workdir / 'final_metrics.json').read_text())
  return {
      'test_images': metrics['num_examples'],
      'test_mean_average_precision': metrics['mean_average_precision'],
      'test_micro_average_precision': metrics['micro_average_precision'],
      'test_macro_f1': metrics['macro_f1'], 'test_exact_match': metrics['exact_match'],
      'val_map': final['val_map'], 'selected': final['selected']['description'],
      'image_size': final.get('image_size'), 'train_seconds': round(train_seconds, 1),
      'budget_minutes': budget_minutes, 'seed': seed,
  }


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--output', required=True, type=pathlib.Path)
  parser.add_argument('--shared', type=pathlib.Path, default=SHARED)
  parser.add_argument('--num_train', type=int, default=10000)
  parser.add_argument('--num_test', type=int, default=1000)
  parser.add_argument('--held_out', type=float, default=0.2,
                      help='fraction of each class\'s photos kept for the test mosaics')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--train', action='store_true')
  parser.add_argument('--budget_minutes', type=float, default=20)
  args = parser.parse_args()
  train_dir = args.shared / 'data' / 'cifar10' / 'train'
  if not train_dir.is_dir():
    sys.exit(f'{train_dir} is missing: this script needs ../shared beside the checkout.')
  train_csv, test_csv = args.output / 'train.csv', args.output / 'test.csv'
  if not (train_csv.is_file() and test_csv.is_file()):
    build(args.output, train_dir=train_dir, num_train=args.num_train, num_test=args.num_test,
          held_out=args.held_out, seed=args.seed)
  if args.train:
    result = train_and_judge(train_csv, test_csv, workdir=args.output / f'run_{args.seed}',
                             weights=args.shared / 'weights' / 'mobilenet_2_5_224_tf_no_top.h5',
                             budget_minutes=args.budget_minutes, seed=args.seed)
    print(json.dumps(result))


if __name__ == '__main__':
  main()
