r"""Many classes through every command: wall time and peak memory of each, per class count.

  python scripts/measure_many_classes.py --classes=10,100,1000,5000 --out=/tmp/many

For each class count C: writes a folder of C classes x --per_class images (32 x 32 PNG,
each class a stripe pattern of its own colours, angle and frequency, with noise; seeded),
then runs the commands as a user would, each as its own process, and records its exit status,
wall time and peak resident memory (os.wait4): train (configs/mobilenet_cpu.py, the shared
ImageNet MobileNet-0.25 weights, 64 px, 3 head and 2 fine-tuning epochs; the in-training
audit on up to --in_training_audit_up_to classes: its wall seconds from the log, its parts,
time limit and label model from audit.json), evaluate, report, and up to --full_up_to classes also audit and export (SavedModel,
.keras and every LiteRT quantisation). Prints a table and writes OUT/many_classes.json; each
command's output is in OUT/<C>/logs/. The pages and PNGs are left in OUT/<C>/run to look at.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import time

from absl import app, flags
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
flags.DEFINE_list('classes', ['10', '100', '1000', '5000'], 'Class counts.')
flags.DEFINE_integer('per_class', 10, 'Images per class (one in ten is held out).')
flags.DEFINE_integer('full_up_to', 1000, 'Largest class count that is also audited and exported.')
flags.DEFINE_integer('in_training_audit_up_to', 100000,
                     'Largest class count trained with the in-training audit on.')
flags.DEFINE_string('weights', str(REPO.parent / 'shared/weights/mobilenet_2_5_224_tf_no_top.h5'),
                    'Pretrained MobileNet-0.25 weights without top.')
flags.DEFINE_string('out', '/tmp/many_classes', 'Scratch directory.')
FLAGS = flags.FLAGS
SIDE = 32


def write_folder(folder: pathlib.Path, classes: int, per_class: int) -> None:
  """classes x per_class striped PNGs in folder/class_<c>/ (skipped when present)."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  if folder.exists():
    return
  rng = np.random.default_rng(0)
  rows, columns = np.mgrid[0:SIDE, 0:SIDE] / SIDE
  for label in range(classes):
    first, second = rng.uniform(0, 255, (2, 3))
    angle, frequency = rng.uniform(0, np.pi), rng.uniform(1, 6)
    directory = folder / f'class_{label:04d}'
    directory.mkdir(parents=True)
    for index in range(per_class):
      wave = 0.5 + 0.5 * np.sin(2 * np.pi * frequency * (np.cos(angle) * columns + np.sin(
          angle) * rows) + rng.uniform(0, 2 * np.pi))[..., None]
      image = first * wave + second * (1 - wave) + rng.normal(0, 12, (SIDE, SIDE, 3))
      Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
          directory / f'{index:02d}.png')


def run(command: list[str], log: pathlib.Path) -> dict:
  """Runs `command`; its exit status, wall seconds and peak resident memory in MB."""
  started = time.time()
  with open(log.with_suffix('.out'), 'w') as out, open(log.with_suffix('.err'), 'w') as err:
    process = subprocess.Popen(command, stdout=out, stderr=err, cwd=REPO)
    _, status, usage = os.wait4(process.pid, 0)
  return {'status': os.waitstatus_to_exitcode(status),
          'seconds': round(time.time() - started, 1), 'peak_mb': round(usage.ru_maxrss / 1024)}


def measure(classes: int, out: pathlib.Path) -> dict:
  base = out / str(classes)
  data, workdir, export, logs = base / 'data', base / 'run', base / 'export', base / 'logs'
  write_folder(data, classes, FLAGS.per_class)
  for directory in (workdir, export):
    subprocess.run(['rm', '-rf', str(directory)], check=True)
  logs.mkdir(parents=True, exist_ok=True)
  python = [sys.executable, '-m']
  commands = {
      'train': python + ['tftransfer.train', '--config=configs/mobilenet_cpu.py',
                         f'--workdir={workdir}', f'--config.data.path={data}',
                         f'--config.model.weights={FLAGS.weights}',
                         '--config.model.image_size=64', '--config.train.head_epochs=3',
                         '--config.train.finetune_epochs=2',
                         f'--config.audit.in_training={classes <= FLAGS.in_training_audit_up_to}'],
      'evaluate': python + ['tftransfer.evaluate', f'--workdir={workdir}'],
      'report': python + ['tftransfer.report', f'--workdir={workdir}'],
  }
  if classes <= FLAGS.full_up_to:
    commands.update(
        audit=python + ['tftransfer.audit', f'--workdir={workdir}'],
        export=python + ['tftransfer.export', f'--workdir={workdir}', f'--export_dir={export}',
                         '--format=saved_model,keras,tflite',
                         '--quantize=none,float16,dynamic,int8'])
  row = {'classes': classes, 'images': classes * FLAGS.per_class}
  for name, command in commands.items():
    row[name] = run(command, logs / name)
    print(f'  {classes} classes, {name}: {row[name]}', flush=True)
    audit = workdir / 'audit.json'
    if name == 'train' and audit.exists():  # before the audit command replaces it
      findings = json.loads(audit.read_text())
      logged = re.search(r'Data audit \(([0-9.]+) s', (logs / 'train.err').read_text())
      row['in_training_audit'] = {
          'seconds': float(logged.group(1)) if logged else None,
          'parts': findings.get('seconds'), 'scope': findings.get('in_training'),
          'label_model': findings.get('label_model')}
      print(f"  {classes} classes, in-training audit: {row['in_training_audit']}")
    if row[name]['status'] not in (0, 2):  # 2: export left out a format its guard failed
      break
  return row


def main(argv):
  del argv
  out = pathlib.Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  table = [measure(int(classes), out) for classes in FLAGS.classes]
  (out / 'many_classes.json').write_text(json.dumps(table, indent=1))
  print(f"{'classes':>8} {'command':<9} {'status':>6} {'seconds':>8} {'peak MB':>8}")
  for row in table:
    for name in ('train', 'evaluate', 'report', 'audit', 'export'):
      if name in row:
        result = row[name]
        print(f"{row['classes']:>8,} {name:<9} {result['status']:>6} {result['seconds']:>8} "
              f"{result['peak_mb']:>8}")
  print(out / 'many_classes.json')


if __name__ == '__main__':
  app.run(main)
