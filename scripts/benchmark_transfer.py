r"""Time-to-accuracy race: the keras.io transfer-learning recipe against tftransfer.

Runs, one after the other on the same machine, data, backbone weights, resolution and batch:
  keras_guide         the peer, ../shared/bench/keras_guide_baseline.py (frozen base + new
                      head, then unfreeze with Adam 1e-5);
  tftransfer          `python -m tftransfer.train` with configs/cifar10_mobilenet_cpu.py;
  tftransfer_scratch  the same network and data from random weights (weights='none'),
then measures the training throughput of both at the peer's settings. Each system gets
--budget_s seconds of wall clock (it is stopped there), timed from its process start, so
start-up, data loading and every evaluation count.

Prints one JSON line per evaluation point (system, seconds, images_seen, val_accuracy and,
with --test_dir, test_accuracy), the throughput lines, then a summary: accuracy of each at
the peer's total wall time, the time each needs to reach the peer's final accuracy, and the
ratio to the peer's time. Each system validates on its own stratified/seeded 10 % of
--train_dir (the peer's split comes from keras.utils.image_dataset_from_directory), so
--test_dir, when given, is the one set of images both are judged on; tftransfer's test
accuracy is measured once, on its final model.

  python scripts/benchmark_transfer.py --train_dir=../shared/data/cifar10/train \
      --weights=../shared/weights/mobilenet_2_5_224_tf_no_top.h5
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
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]

_TRAIN_DIR = flags.DEFINE_string('train_dir', None, 'Image folder, one sub-folder per class.')
_TEST_DIR = flags.DEFINE_string('test_dir', None, 'Optional image folder with the same '
                                'classes that both systems are also judged on.')
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
_CONFIG = flags.DEFINE_string('config', str(REPO / 'configs' / 'cifar10_mobilenet_cpu.py'),
                              "tftransfer's config for the race.")
_IMAGE_SIZE = flags.DEFINE_integer('image_size', 96, 'Resolution of both systems.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 64, 'Batch size of both systems.')
_SCRATCH_EPOCHS = flags.DEFINE_integer('scratch_epochs', 5, 'Epochs of the from-scratch run '
                                       '(it trains the whole network, no head phase).')
_SCRATCH_LR = flags.DEFINE_float('scratch_lr', 2e-3, 'Peak learning rate from scratch.')
_SYSTEMS = flags.DEFINE_list('systems', ['keras_guide', 'tftransfer', 'tftransfer_scratch'],
                             'Which systems to run.')
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


def _count_train_images(train_dir: str) -> int:
  """Training images of the peer's split: keras keeps int(0.1 * N) for validation."""
  from tftransfer import config as config_lib  # pylint: disable=g-import-not-at-top
  from tftransfer.data import folders  # pylint: disable=g-import-not-at-top
  limit = config_lib.default_config().data.max_image_pixels
  total = len(folders.scan_folder(train_dir, max_image_pixels=limit).files)
  return total - int(0.1 * total)


def run_peer(workdir: pathlib.Path) -> list[dict]:
  num_train = _count_train_images(_TRAIN_DIR.value)
  command = [sys.executable, _PEER.value, '--train_dir', _TRAIN_DIR.value,
             '--weights', _WEIGHTS.value, '--image_size', str(_IMAGE_SIZE.value),
             '--batch_size', str(_BATCH_SIZE.value),
             '--head_epochs', str(_PEER_HEAD_EPOCHS.value),
             '--finetune_epochs', str(_PEER_FINETUNE_EPOCHS.value)]
  if _TEST_DIR.value:
    command += ['--test_dir', _TEST_DIR.value]
  run = _Run(command, workdir / 'keras_guide.log')
  finished = run.wait(_BUDGET.value)
  points = []
  for seconds, line in run.lines:
    if not line.startswith('{'):
      continue
    row = json.loads(line)
    point = {'system': 'keras_guide', 'seconds': round(seconds, 1),
             'images_seen': num_train * (len(points) + 1), 'phase': row['phase'],
             'epoch': row['epoch'], 'val_accuracy': row['val_accuracy'],
             'epoch_images_per_sec': round(num_train / row['seconds'], 1)}
    if 'test_accuracy' in row:
      point['test_accuracy'] = row['test_accuracy']
    points.append(point)
    _emit(point)
  _emit({'system': 'keras_guide', 'finished': finished, 'seconds': round(run.elapsed(), 1)})
  return points


def _test_accuracy(workdir: pathlib.Path) -> float:
  """The final model of a tftransfer run on every image of --test_dir."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tftransfer.data import folders, image_ops  # pylint: disable=g-import-not-at-top
  from tftransfer.training import restore  # pylint: disable=g-import-not-at-top
  trained = restore.restore(str(workdir), allow_unfinished=True)
  limit = trained.config.data.max_image_pixels
  scan = folders.scan_folder(_TEST_DIR.value, max_image_pixels=limit)
  if scan.class_names != trained.class_names:
    raise ValueError(f'--test_dir classes {scan.class_names} differ from the training '
                     f'classes {trained.class_names}.')
  images = tf.data.Dataset.from_tensor_slices(
      [os.fsencode(path) for path in scan.files]).map(
          lambda path: image_ops.evaluation_view(
              image_ops.decode_image(tf.io.read_file(path), max_pixels=limit),
              trained.image_size),
          num_parallel_calls=tf.data.AUTOTUNE).batch(256)
  predictions = np.concatenate([np.argmax(trained.model(batch, training=False), -1)
                                for batch in images])
  return float(np.mean(predictions == scan.labels))


def run_tftransfer(system: str, workdir: pathlib.Path) -> list[dict]:
  command = [sys.executable, '-m', 'tftransfer.train', f'--config={_CONFIG.value}',
             f'--workdir={workdir / system}', f'--config.data.path={_TRAIN_DIR.value}',
             f'--config.model.image_size={_IMAGE_SIZE.value}',
             f'--config.train.batch_size={_BATCH_SIZE.value}']
  if system == 'tftransfer':
    command.append(f'--config.model.weights={_WEIGHTS.value}')
  else:  # The whole network learns from random weights: no head phase, BatchNorm trains.
    command += ['--config.model.weights=none', '--config.train.head_epochs=0',
                f'--config.train.finetune_epochs={_SCRATCH_EPOCHS.value}',
                f'--config.train.finetune_lr={_SCRATCH_LR.value}']
  metrics = workdir / system / 'metrics.jsonl'
  points = []

  def poll():
    if not metrics.exists():
      return
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    for row in rows[len(points):]:
      point = {'system': system, 'seconds': round(run.elapsed(), 1),
               'images_seen': row['step'] * _BATCH_SIZE.value, 'phase': row['phase'],
               'epoch': row['epoch'], 'val_accuracy': row['val_accuracy'],
               'epoch_images_per_sec': row['images_per_sec']}
      points.append(point)
      _emit(point)

  run = _Run(command, workdir / f'{system}.log')
  finished = run.wait(_BUDGET.value, poll)
  end = {'system': system, 'finished': finished, 'seconds': round(run.elapsed(), 1)}
  if _TEST_DIR.value and points:
    end['test_accuracy'] = _test_accuracy(workdir / system)
  _emit(end)
  return points


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


def _accuracy_at(points: list[dict], seconds: float):
  reached = [p['val_accuracy'] for p in points if p['seconds'] <= seconds]
  return reached[-1] if reached else None


def _seconds_to(points: list[dict], accuracy: float):
  reached = [p['seconds'] for p in points if p['val_accuracy'] >= accuracy]
  return reached[0] if reached else None


def summarize(results: dict[str, list[dict]], throughput: list[dict]) -> dict:
  peer = results.get('keras_guide')
  summary = {'summary': True, 'budget_s': _BUDGET.value, 'image_size': _IMAGE_SIZE.value,
             'batch_size': _BATCH_SIZE.value}
  if peer:
    peer_seconds, peer_accuracy = peer[-1]['seconds'], peer[-1]['val_accuracy']
    summary.update(
        peer_total_seconds=peer_seconds, peer_final_val_accuracy=peer_accuracy,
        val_accuracy_at_peer_total_seconds={
            name: _accuracy_at(points, peer_seconds) for name, points in results.items()},
        seconds_to_peer_final_accuracy={
            name: _seconds_to(points, peer_accuracy) for name, points in results.items()})
    ours = results.get('tftransfer')
    if ours:
      gain = _accuracy_at(ours, peer_seconds)
      to_final = _seconds_to(ours, peer_accuracy)
      summary['gain_points_at_peer_total_seconds'] = (
          round(100 * (gain - peer_accuracy), 2) if gain is not None else None)
      summary['time_ratio_to_peer'] = (round(to_final / peer_seconds, 3)
                                       if to_final is not None else None)
      summary['targets_met'] = {
          'gain_at_least_5_points': gain is not None and gain - peer_accuracy >= 0.05,
          'at_most_half_the_peer_time': to_final is not None and to_final <= peer_seconds / 2}
    finetune = [p['epoch_images_per_sec'] for p in peer if p['phase'] == 'finetune']
    summary['peer_finetune_images_per_sec'] = max(finetune) if finetune else None
  if throughput:
    summary['tftransfer_images_per_sec'] = {t['measurement']: t['images_per_sec']
                                            for t in throughput}
  return summary


def main(argv):
  del argv
  if not (_TRAIN_DIR.value and _WEIGHTS.value):
    raise app.UsageError('--train_dir and --weights are required.')
  unknown = set(_SYSTEMS.value) - {'keras_guide', 'tftransfer', 'tftransfer_scratch'}
  if unknown:
    raise app.UsageError(f'Unknown --systems {sorted(unknown)}.')
  workdir = pathlib.Path(_WORKDIR.value)
  subprocess.run(['rm', '-rf', str(workdir)], check=True)
  workdir.mkdir(parents=True)
  _emit({'benchmark': 'transfer', 'train_dir': _TRAIN_DIR.value, 'weights': _WEIGHTS.value,
         'cpu_count': os.cpu_count(), 'budget_s': _BUDGET.value})
  results = {}
  for system in _SYSTEMS.value:
    results[system] = (run_peer(workdir) if system == 'keras_guide'
                       else run_tftransfer(system, workdir))
  throughput = measure_throughput(workdir) if _THROUGHPUT.value else []
  _emit(summarize(results, throughput))


if __name__ == '__main__':
  app.run(main)
