r"""Growth curves: wall time and peak memory of the audit's parts, the folder scan and a
training epoch at growing sizes.

  python scripts/measure_growth.py --sizes=10000,50000,200000 --out=/tmp/growth
  python scripts/measure_growth.py --parts=scan,train --sizes=10000,50000,200000,1000000 \
      --out=/tmp/growth

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

--parts=scan,train measures, per size, on a folder of N symlinks to the 50,000 CIFAR-10
training JPEGs (each file listed N / 50,000 times under its class; every link is a file the
scan opens and decodes, so its cost per file is a real one, while the page cache holds the
50,000 targets):
  scan   in its own process, the first folder scan (listing, decoding every image, writing
         the run's scan cache) and a second one that reads the cache, with the peak memory;
  train  the train command on that folder (reusing the scan's cache), fine-tuning only on
         every image at 96 px, batch 64, no validation, no in-training audit, cut at
         --train_steps steps: the last progress line's images/s gives the epoch's seconds,
         N / (images/s) (the epoch is timed over those steps, not run to its end; the data
         pipeline is the full one: the cache policy, the shuffle and the decode of N files).
Writes OUT/scan_train.json and a log-log plot OUT/scan_train.png.
"""

import json
import os
import pathlib
import re
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
flags.DEFINE_list('parts', ['audit'], "What to measure: 'audit' and/or 'scan', 'train'.")
flags.DEFINE_integer('scan_one', 0, 'Internal: scan this one size and print its row as JSON.')
flags.DEFINE_integer('train_steps', 150, 'Training steps timed per size (--parts=train).')
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


def links_of(size: int, out: pathlib.Path, train_dir: pathlib.Path) -> pathlib.Path:
  """OUT/links_<size>: `size` symlinks to the CIFAR-10 photos, size / 10 per class, each
  class's photos in turn (see the module docstring)."""
  folder = out / f'links_{size}'
  if folder.exists():
    return folder
  partial = out / f'links_{size}.partial'
  subprocess.run(['rm', '-rf', str(partial)], check=True)
  for name, pool in _photos(train_dir).items():
    (partial / name).mkdir(parents=True)
    for index in range(size // 10):
      os.symlink(pool[index % len(pool)], partial / name / f'{index:07d}.jpg')
  partial.rename(folder)
  return folder


def _config_of(folder: pathlib.Path):
  sys.path.insert(0, str(REPO / 'configs'))
  import mobilenet_cpu  # pylint: disable=import-outside-toplevel
  config = mobilenet_cpu.get_config()
  with config.unlocked():
    config.model.image_size = 96
    config.data.path = str(folder)
    config.model.weights = FLAGS.weights
  return config


def scan_one(size: int) -> dict:
  """One size's scan row (run in a fresh process): the first scan and a cached one."""
  from tftransfer import workdir as workdir_lib  # pylint: disable=import-outside-toplevel
  from tftransfer.data import sources  # pylint: disable=import-outside-toplevel
  out = pathlib.Path(FLAGS.out)
  config = _config_of(links_of(size, out, pathlib.Path(FLAGS.train_dir)))
  workdir = out / f'run_{size}'
  subprocess.run(['rm', '-rf', str(workdir)], check=True)
  workdir.mkdir(parents=True)
  cache = str(workdir / workdir_lib.FOLDER_SCAN)
  started = time.time()
  data = sources.load(config.data, seed=config.seed, scan_cache=cache)
  first = time.time() - started
  started = time.time()
  sources.load(config.data, seed=config.seed, scan_cache=cache)
  return {'images': data.train.num_examples + data.val.num_examples,
          'scan_seconds': round(first, 1), 'cached_scan_seconds': round(time.time() - started, 1),
          'scan_peak_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def train_row(size: int) -> dict:
  """One size's training row: the train command, cut at --train_steps, on the scanned
  folder (scan_one's workdir and cache)."""
  out = pathlib.Path(FLAGS.out)
  workdir = out / f'run_{size}'
  for name in os.listdir(workdir):
    if name != 'folder_scan.json':
      subprocess.run(['rm', '-rf', str(workdir / name)], check=True)
  command = [sys.executable, '-m', 'tftransfer.train', '--config=configs/mobilenet_cpu.py',
             f'--workdir={workdir}', f'--config.data.path={out / f"links_{size}"}',
             f'--config.model.weights={FLAGS.weights}', '--config.model.image_size=96',
             '--config.train.batch_size=64', '--config.train.head_epochs=0',
             '--config.train.finetune_epochs=1', f'--config.train.max_steps={FLAGS.train_steps}',
             '--config.data.val_fraction=0', '--config.audit.in_training=False']
  started = time.time()
  with open(out / f'train_{size}.log', 'w') as log:
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    _, status, usage = os.wait4(process.pid, 0)
  text = (out / f'train_{size}.log').read_text()
  if os.waitstatus_to_exitcode(status):
    raise SystemExit(f'Training on {size:,} images failed:\n{text[-3000:]}')
  rates = re.findall(r'([0-9.]+) img/s', text)
  rate = float(rates[-1])
  return {'train_command_seconds': round(time.time() - started, 1),
          'train_images_per_second': rate, 'train_epoch_seconds': round(size / rate, 1),
          'train_peak_mb': round(usage.ru_maxrss / 1024)}


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
  if FLAGS.scan_one:
    print(json.dumps(scan_one(FLAGS.scan_one)))
    return
  out = pathlib.Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  if {'scan', 'train'} & set(FLAGS.parts):
    scan_and_train(out)
  if 'audit' in FLAGS.parts:
    audit_growth(out)


def _in_own_process(flag: str, size: int, out: pathlib.Path, what: str) -> dict:
  """This script's --<flag>=<size> row, run in a fresh process (so its peak memory is its
  own)."""
  done = subprocess.run([sys.executable, __file__, f'--{flag}={size}', f'--out={out}',
                         f'--train_dir={FLAGS.train_dir}', f'--weights={FLAGS.weights}'],
                        capture_output=True, text=True, check=False)
  if done.returncode:
    raise SystemExit(f'The {what} of {size:,} images failed:\n{done.stderr[-3000:]}')
  return json.loads(done.stdout.strip().splitlines()[-1])


def scan_and_train(out: pathlib.Path) -> None:
  rows = []
  print('images     scan s  cached s  scan MB  train img/s  epoch s  train MB', flush=True)
  for size in map(int, FLAGS.sizes):
    row = _in_own_process('scan_one', size, out, 'scan')
    if 'train' in FLAGS.parts:
      row.update(train_row(size))
    rows.append(row)
    print(f"{row['images']:<9,} {row['scan_seconds']:>7} {row['cached_scan_seconds']:>9} "
          f"{row['scan_peak_mb']:>8} {row.get('train_images_per_second', ''):>12} "
          f"{row.get('train_epoch_seconds', ''):>8} {row.get('train_peak_mb', ''):>9}",
          flush=True)
    (out / 'scan_train.json').write_text(json.dumps(rows, indent=1))
  plot_scan_train(rows, out / 'scan_train.png')
  print(out / 'scan_train.json', out / 'scan_train.png')


def plot_scan_train(rows: list[dict], path: pathlib.Path) -> None:
  """Log-log seconds of the first scan, the cached scan and an epoch, by images."""
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  figure = Figure(figsize=(6, 4.2), dpi=120)
  axes = figure.add_subplot()
  sizes = [row['images'] for row in rows]
  for key, label in (('scan_seconds', 'folder scan'), ('cached_scan_seconds', 'cached scan'),
                     ('train_epoch_seconds', 'training epoch (from the rate)')):
    if all(key in row for row in rows):
      axes.plot(sizes, [max(row[key], 0.1) for row in rows], marker='o', label=label)
  axes.plot(sizes, [rows[0]['scan_seconds'] * size / sizes[0] for size in sizes], 'k:',
            label='linear from the first scan')
  axes.set(xscale='log', yscale='log', xlabel='images', ylabel='seconds',
           title='Folder scan and training epoch (2 CPU cores)')
  axes.legend(fontsize=8)
  figure.tight_layout()
  figure.savefig(path)


def audit_growth(out: pathlib.Path) -> None:
  table = []
  print('images    wall s  decode s  features s  search s (kind)     label s  peak MB',
        flush=True)
  for size in map(int, FLAGS.sizes):
    row = _in_own_process('one', size, out, 'audit')
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
