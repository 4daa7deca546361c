r"""The data audit's growth curve: wall time and peak memory of each part at growing sizes.

  python scripts/measure_growth.py --sizes=10000,50000,200000 --out=/tmp/growth

For each size N, in its own process (so the peak resident memory is its own), audits a
folder of N images the way `tftransfer-audit --config=configs/mobilenet_cpu.py
--config.model.image_size=96` does (pretrained MobileNet-0.25, the shared weights; 96 px as
the audit's other measurements, where the config alone would say 224) and records the audit's wall time,
each part's seconds from audit.json (decode and hashes, backbone features, neighbour
searches, label model), which search ran (exact up to config.audit.exact_search_max_images,
FAISS HNSW above) and the peak memory. The folders: the first N / 10 CIFAR-10 training
JPEGs of each class (symlinks) up to 50,000; beyond, 2x2 mosaics of four CIFAR-10 photos
shrunk to 16 px (32 x 32 PNG, filed under the class of the top-left photo; generated once
into OUT/mosaics, seeded): new pictures, not copies of the photos, so the audit's work is
that of real, distinct images. Prints a table, writes OUT/growth.json and a log-log plot
OUT/growth.png. The million-embedding search point is scripts/measure_search.py's.
"""

import json
import os
import pathlib
import resource
import subprocess
import sys
import time

from absl import app, flags
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
flags.DEFINE_list('sizes', ['10000', '50000', '200000'], 'Images per audit.')
flags.DEFINE_string('train_dir', str(REPO.parent / 'shared/data/cifar10/train'),
                    'CIFAR-10 image folder.')
flags.DEFINE_string('weights', str(REPO.parent / 'shared/weights/mobilenet_2_5_224_tf_no_top.h5'),
                    'Pretrained MobileNet-0.25 weights without top.')
flags.DEFINE_string('out', '/tmp/growth', 'Scratch directory (folders, workdirs, results).')
flags.DEFINE_integer('one', 0, 'Internal: audit this one size and print its row as JSON.')
FLAGS = flags.FLAGS

PARTS = ('decode_and_hash', 'features', 'neighbour_search', 'label_model')
MOSAIC_CELL = 16


def _photos(train_dir: pathlib.Path) -> dict[str, list[pathlib.Path]]:
  return {name: sorted((train_dir / name).iterdir()) for name in sorted(os.listdir(train_dir))}


def mosaics(photos: dict, count: int, folder: pathlib.Path) -> list[pathlib.Path]:
  """The first `count` mosaics in folder/<class>/<i>.png, writing those missing (seeded by
  their index, so a larger count extends a smaller one's)."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  names = sorted(photos)
  paths = []
  for index in range(count):
    rng = np.random.default_rng(index)
    cells = rng.integers(0, len(names), 4)
    path = folder / names[cells[0]] / f'{index:07d}.png'
    paths.append(path)
    if path.exists():
      continue
    canvas = Image.new('RGB', (2 * MOSAIC_CELL, 2 * MOSAIC_CELL))
    for position, label in enumerate(cells):
      pool = photos[names[label]]
      photo = Image.open(pool[int(rng.integers(len(pool)))]).convert('RGB')
      canvas.paste(photo.resize((MOSAIC_CELL, MOSAIC_CELL), Image.BILINEAR),
                   ((position % 2) * MOSAIC_CELL, (position // 2) * MOSAIC_CELL))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
  return paths


def folder_of(size: int, out: pathlib.Path, train_dir: pathlib.Path) -> pathlib.Path:
  """OUT/images_<size>: `size` images as symlinks (see the module docstring)."""
  photos = _photos(train_dir)
  real = min(size, sum(len(pool) for pool in photos.values()))
  chosen = [path for pool in photos.values() for path in pool[:real // len(photos)]]
  chosen += mosaics(photos, size - len(chosen), out / 'mosaics')
  folder = out / f'images_{size}'
  if not folder.exists():
    for path in chosen:
      link = folder / path.parent.name / (path.parent.parent.name + '_' + path.name)
      link.parent.mkdir(parents=True, exist_ok=True)
      os.symlink(path, link)
  return folder


def audit_one(size: int) -> dict:
  """One size's row (run in a fresh process)."""
  sys.path.insert(0, str(REPO / 'configs'))
  import mobilenet_cpu  # pylint: disable=import-outside-toplevel
  from tftransfer.auditing import run  # pylint: disable=import-outside-toplevel
  out = pathlib.Path(FLAGS.out)
  folder = folder_of(size, out, pathlib.Path(FLAGS.train_dir))
  config = mobilenet_cpu.get_config()
  with config.unlocked():
    config.model.image_size = 96
    config.data.path = str(folder)
    config.model.weights = FLAGS.weights
  workdir = out / f'workdir_{size}'
  if workdir.exists():
    for name in os.listdir(workdir):
      if name.endswith('.json'):
        os.remove(workdir / name)
  started = time.time()
  findings = run.audit_workdir(str(workdir), config=config)
  return {'images': findings['counts']['images'], 'wall_seconds': round(time.time() - started, 1),
          **{part: findings['seconds'].get(part) for part in PARTS},
          'neighbour_search_kind': findings['neighbour_search'],
          'peak_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
          'near_groups': findings['counts']['near_groups'],
          'exact_groups': findings['counts']['exact_groups']}


def plot(table: list[dict], path: pathlib.Path) -> None:
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  figure = Figure(figsize=(6, 4.2), dpi=120)
  axes = figure.add_subplot()
  sizes = [row['images'] for row in table]
  for key in ('wall_seconds',) + PARTS:
    axes.plot(sizes, [max(row[key] or 0, 0.1) for row in table], marker='o',
              label=key.replace('_', ' '))
  axes.plot(sizes, [table[0]['wall_seconds'] * size / sizes[0] for size in sizes], 'k:',
            label='linear from the first')
  axes.set(xscale='log', yscale='log', xlabel='images audited', ylabel='seconds',
           title='Data audit time by part (2 CPU cores)')
  axes.legend(fontsize=8)
  figure.tight_layout()
  figure.savefig(path)


def main(argv):
  del argv
  if FLAGS.one:
    print(json.dumps(audit_one(FLAGS.one)))
    return
  out = pathlib.Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  table = []
  print('images    wall s  decode s  features s  search s (kind)     label s  peak MB',
        flush=True)
  for size in map(int, FLAGS.sizes):
    done = subprocess.run([sys.executable, __file__, f'--one={size}', f'--out={out}',
                           f'--train_dir={FLAGS.train_dir}', f'--weights={FLAGS.weights}'],
                          capture_output=True, text=True, check=False)
    if done.returncode:
      raise SystemExit(f'The audit of {size:,} images failed:\n{done.stderr[-3000:]}')
    row = json.loads(done.stdout.strip().splitlines()[-1])
    table.append(row)
    print(f"{row['images']:<9,} {row['wall_seconds']:>6}  {row['decode_and_hash']:>8}  "
          f"{row['features']:>10}  {row['neighbour_search']:>8} "
          f"{'(' + row['neighbour_search_kind'] + ')':<13}  {row['label_model']:>7}  "
          f"{row['peak_mb']:>7}",
          flush=True)
  (out / 'growth.json').write_text(json.dumps(table, indent=1))
  plot(table, out / 'growth.png')
  print(f'{out / "growth.json"}, {out / "growth.png"}')


if __name__ == '__main__':
  app.run(main)
