r"""Time-to-accuracy race on held-out images: tftransfer against the recipes users write by hand.

Systems, run one after the other on the same machine, data, backbone weights, resolution and
batch size, each in its own process timed from its start (start-up, data loading and every
validation count), each stopped at --budget_s:

  keras_guide         the keras.io guide's recipe, ../shared/bench/keras_guide_baseline.py
                      (frozen base and a new head for --peer_head_epochs, then everything at
                      Adam 1e-5 for --peer_finetune_epochs), saving a snapshot per epoch;
  classic             the textbook recipe, configs/classic.py through tftransfer.train (SGD
                      on everything from step 0, constant 0.001, batch 100, 10 epochs);
  tftransfer          configs/mobilenet_cpu.py with train.time_budget_minutes = --budget_s;
  tftransfer_scratch  the same network and data from random weights.

Every system leaves a snapshot at every evaluation point (tftransfer keeps every epoch's
checkpoint, the peer writes a .keras file per epoch); saving counts in a system's time. After
all have run, every snapshot is scored on --test_dir by one code path (the same decoder, the
system's own preprocessing: tftransfer's evaluation view, or the peer's plain resize as
image_dataset_from_directory does; argmax), which no system's time includes.

Prints one JSON line per evaluation point (system, seconds, phase, epoch, val_accuracy,
test_accuracy), the throughput lines, then a summary: on test and on validation accuracy,
each system's accuracy at the peer's final time, the seconds each needs to reach the peer's
final accuracy, and their ratio to the peer's time.

  python scripts/make_cifar_splits.py --input=../shared/data/cifar10/train --output=/tmp/splits
  python scripts/benchmark_transfer.py --train_dir=/tmp/splits/train_all \
      --test_dir=/tmp/splits/test --weights=../shared/weights/mobilenet_2_5_224_tf_no_top.h5 \
      --budget_s=300
"""

import json
import os
import pathlib
import subprocess
import sys
import threading
import time

from absl import app
from absl import flags
import benchmark_scoring  # scripts/benchmark_scoring.py, beside this file

REPO = pathlib.Path(__file__).resolve().parents[1]
SYSTEMS = ('keras_guide', 'classic', 'tftransfer', 'tftransfer_scratch')

_TRAIN_DIR = flags.DEFINE_string('train_dir', None, 'Image folder, one sub-folder per class.')
_TEST_DIR = flags.DEFINE_string('test_dir', None, 'Held-out image folder with the same '
                                'classes, never trained on: every snapshot is scored on it.')
_WEIGHTS = flags.DEFINE_string('weights', None, 'MobileNet (width 0.25) ImageNet weights '
                               'without top (.h5), or imagenet with network.')
_BUDGET = flags.DEFINE_float('budget_s', 900, 'Wall-clock seconds each system may run.')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/tftransfer_benchmark', 'Where the runs go; '
                               'emptied first.')
_PEER = flags.DEFINE_string('peer', str(REPO.parent / 'shared' / 'bench' /
                                        'keras_guide_baseline.py'), 'The peer script.')
_PEER_HEAD_EPOCHS = flags.DEFINE_integer('peer_head_epochs', 2, 'Peer epochs with the base '
                                         'frozen.')
_PEER_FINETUNE_EPOCHS = flags.DEFINE_integer('peer_finetune_epochs', 2, 'Peer epochs after '
                                             'unfreezing.')
_IMAGE_SIZE = flags.DEFINE_integer('image_size', 96, 'Resolution of every system.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 64, 'Batch size of the peer and tftransfer '
                                   '(the classic recipe keeps its 100).')
_SCRATCH_EPOCHS = flags.DEFINE_integer('scratch_epochs', 5, 'Epochs of the from-scratch run.')
_SCRATCH_LR = flags.DEFINE_float('scratch_lr', 2e-3, 'Peak learning rate from scratch.')
_SYSTEMS = flags.DEFINE_list('systems', list(SYSTEMS), f'Which of {SYSTEMS} to run.')
_THROUGHPUT = flags.DEFINE_bool('throughput', True, "Also measure tftransfer's pipeline, step "
                                'and end-to-end throughput at the peer settings.')


def _emit(record: dict) -> None:
  print(json.dumps(record), flush=True)


class _Run:
  """A system's process, stopped at the budget, with its output collected in the background."""

  def __init__(self, command: list[str], log_path: pathlib.Path):
    self.start = time.time()
    self.log = open(log_path, 'w')
    self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.log,
                                    text=True, cwd=REPO)
    self.lines = []  # (seconds since start, line)
    self.reader = threading.Thread(target=self._read, daemon=True)
    self.reader.start()

  def _read(self):
    for line in self.process.stdout:
      self.lines.append((time.time() - self.start, line))

  def elapsed(self) -> float:
    return time.time() - self.start

  def wait(self, budget: float, poll=lambda: None) -> bool:
    """Waits for the end or the budget, calling `poll` meanwhile; True = finished in time."""
    while self.process.poll() is None:
      poll()
      if self.elapsed() > budget:
        self.process.kill()
        self.process.wait()
        poll()
        return False
      time.sleep(0.2)
    self.reader.join()
    poll()
    self.log.close()
    return self.process.returncode == 0


def run_peer(workdir: pathlib.Path) -> tuple[list[dict], dict]:
  snapshots = workdir / 'keras_guide_snapshots'
  command = [sys.executable, _PEER.value, '--train_dir', _TRAIN_DIR.value,
             '--weights', _WEIGHTS.value, '--image_size', str(_IMAGE_SIZE.value),
             '--batch_size', str(_BATCH_SIZE.value),
             '--head_epochs', str(_PEER_HEAD_EPOCHS.value),
             '--finetune_epochs', str(_PEER_FINETUNE_EPOCHS.value),
             '--snapshot_dir', str(snapshots)]
  run = _Run(command, workdir / 'keras_guide.log')
  finished = run.wait(_BUDGET.value)
  points = []
  for seconds, line in run.lines:
    if line.startswith('{'):
      row = json.loads(line)
      points.append({'system': 'keras_guide', 'seconds': round(seconds, 1),
                     'phase': row['phase'], 'epoch': row['epoch'],
                     'val_accuracy': row['val_accuracy'], 'snapshot': row['snapshot']})
  planned = _PEER_HEAD_EPOCHS.value + _PEER_FINETUNE_EPOCHS.value
  return points, {'system': 'keras_guide', 'finished': finished,
                  'cut_by_budget': not finished and len(points) < planned,
                  'epochs_done': len(points), 'epochs_planned': planned,
                  'seconds': round(run.elapsed(), 1)}


def tftransfer_command(system: str, workdir: pathlib.Path) -> list[str]:
  """The train command of a tftransfer-run system; every epoch's checkpoint is kept."""
  config = REPO / 'configs' / ('classic.py' if system == 'classic' else 'mobilenet_cpu.py')
  command = [sys.executable, '-m', 'tftransfer.train', f'--config={config}',
             f'--workdir={workdir / system}', '--config.data.source=folder',
             f'--config.data.path={_TRAIN_DIR.value}',
             f'--config.model.image_size={_IMAGE_SIZE.value}',
             '--config.train.keep_checkpoints=0', '--config.train.checkpoint_every_secs=0']
  if system == 'classic':  # the recipe's own batch and epochs, on the race's backbone
    return command + ['--config.model.backbone=mobilenet', '--config.model.width=0.25',
                      f'--config.model.weights={_WEIGHTS.value}']
  command.append(f'--config.train.batch_size={_BATCH_SIZE.value}')
  if system == 'tftransfer':
    return command + [f'--config.model.weights={_WEIGHTS.value}',
                      f'--config.train.time_budget_minutes={_BUDGET.value / 60:.3f}']
  # From scratch: the whole network learns from random weights, BatchNorm trains.
  return command + ['--config.model.weights=none', '--config.train.head_epochs=0',
                    f'--config.train.finetune_epochs={_SCRATCH_EPOCHS.value}',
                    f'--config.train.finetune_lr={_SCRATCH_LR.value}',
                    '--config.data.mixup_alpha=0']


def run_tftransfer(system: str, workdir: pathlib.Path) -> tuple[list[dict], dict]:
  metrics = workdir / system / 'metrics.jsonl'
  points = []

  def poll():
    if not metrics.exists():
      return
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    for row in rows[len(points):]:
      points.append({'system': system, 'seconds': round(run.elapsed(), 1),
                     'phase': row['phase'], 'epoch': row['epoch'],
                     'val_accuracy': row['val_accuracy'],
                     'snapshot': f'{workdir / system}@{row["step"]}'})

  run = _Run(tftransfer_command(system, workdir), workdir / f'{system}.log')
  finished = run.wait(_BUDGET.value, poll)
  return points, {'system': system, 'finished': finished, 'epochs_done': len(points),
                  'seconds': round(run.elapsed(), 1)}


def measure_throughput(workdir: pathlib.Path) -> list[dict]:
  command = [sys.executable, str(REPO / 'scripts' / 'benchmark_throughput.py'),
             f'--train_dir={_TRAIN_DIR.value}', f'--image_size={_IMAGE_SIZE.value}',
             f'--batch_size={_BATCH_SIZE.value}', '--backbone=mobilenet', '--width=0.25']
  with open(workdir / 'throughput.log', 'w') as log:
    output = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True,
                            check=True).stdout
  lines = [json.loads(line) for line in output.splitlines() if line.startswith('{')]
  for line in lines:
    _emit({'system': 'tftransfer', **line})
  return lines


def main(argv):
  del argv
  if not (_TRAIN_DIR.value and _WEIGHTS.value):
    raise app.UsageError('--train_dir and --weights are required.')
  unknown = set(_SYSTEMS.value) - set(SYSTEMS)
  if unknown:
    raise app.UsageError(f'Unknown --systems {sorted(unknown)}; valid: {SYSTEMS}.')
  if 'keras_guide' in _SYSTEMS.value and not os.path.isfile(_PEER.value):
    raise app.UsageError(f'--peer={_PEER.value} is not a file: point it at '
                         'keras_guide_baseline.py (../shared/bench/ beside the checkout).')
  workdir = pathlib.Path(_WORKDIR.value)
  subprocess.run(['rm', '-rf', str(workdir)], check=True)
  workdir.mkdir(parents=True)
  _emit({'benchmark': 'transfer', 'train_dir': _TRAIN_DIR.value, 'test_dir': _TEST_DIR.value,
         'weights': _WEIGHTS.value, 'cpu_count': os.cpu_count(), 'budget_s': _BUDGET.value,
         'image_size': _IMAGE_SIZE.value, 'batch_size': _BATCH_SIZE.value})
  results, ends = {}, []
  for system in _SYSTEMS.value:
    points, end = (run_peer(workdir) if system == 'keras_guide'
                   else run_tftransfer(system, workdir))
    results[system] = points
    ends.append(end)
  if _TEST_DIR.value:
    from tftransfer.data import folders  # pylint: disable=g-import-not-at-top
    class_names = folders.list_folder(_TRAIN_DIR.value).class_names
    benchmark_scoring.score_points([p for points in results.values() for p in points],
                                   _TEST_DIR.value, class_names)
  for points in results.values():
    for point in points:
      _emit(point)
  for end in ends:
    _emit(end)
  throughput = measure_throughput(workdir) if _THROUGHPUT.value else []
  _emit({'summary': True, 'budget_s': _BUDGET.value, 'image_size': _IMAGE_SIZE.value,
         'test': (benchmark_scoring.summarize(results, 'test_accuracy') if _TEST_DIR.value
                  else None),
         'validation': benchmark_scoring.summarize(results, 'val_accuracy'),
         'tftransfer_images_per_sec': {t['measurement']: t['images_per_sec']
                                       for t in throughput}})


if __name__ == '__main__':
  app.run(main)
