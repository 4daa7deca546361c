"""tf.distribute: mirrored replicas and real multi-worker processes on loopback agree with
one device, only the chief writes, and a cluster that lost a worker, or was asked to stop,
resumes from its checkpoint."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import REPO
from tftransfer.model import backbones
from tftransfer import restore

RUNNER = str(REPO / 'tests' / 'e2e' / 'run_tiny.py')


def _exact_config(weights_path, **extra):
  """Full-batch, augmentation-free SGD on frozen-BatchNorm weights: every step's gradient is
  the mean over the same 40 examples however they are sharded, so runs must agree (up to
  the order floating-point sums are taken in)."""
  return {'model__weights': str(weights_path), 'model__dropout': 0.0,
          'data__crop_min_area': 1.0, 'train__batch_size': 40, 'train__optimizer': 'sgd',
          'train__head_lr': 0.003, 'train__finetune_lr': 0.0005, 'train__head_epochs': 2,
          'train__finetune_epochs': 2, **extra}


def _start(workdir, overrides, *, logical_cpus=1, tf_config=None):
  env = dict(os.environ)
  env.pop('TF_CONFIG', None)
  if tf_config:
    env['TF_CONFIG'] = json.dumps(tf_config)
  return subprocess.Popen(
      [sys.executable, RUNNER, str(workdir), json.dumps(overrides), str(logical_cpus)],
      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process, timeout=300):
  try:
    stdout, stderr = process.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    process.kill()
    stdout, stderr = process.communicate()
    pytest.fail(f'process timed out:\n{stderr[-3000:]}')
  assert process.returncode == 0, stderr[-3000:]
  return json.loads(stdout.strip().splitlines()[-1]), stderr


def _assert_same_training(run, reference, pretrained):
  """Both runs' models agree to 2 % of how far training moved the backbone from `pretrained`.

  Splitting a batch over replicas or workers changes the order floating-point sums are taken
  in, and a few steps can amplify that (units at the edge of ReLU6): on one machine 1 %
  held, on another (2026-12-08) two workers differed from one process by 1.07 % on 3 of
  conv1's 216 weights, the same at the commit that had passed there. Real bugs (a batch
  seen twice, a learning rate scaled by the replicas, an unsynchronised update) differ by
  the size of the update itself.
  """
  # The last epoch's weights: training agrees there whichever epoch each run selected (a
  # head epoch's backbone is the pretrained one, and 4 validation images select by chance).
  trained = restore.restore(str(run), checkpoint='last').model
  expected = restore.restore(str(reference), checkpoint='last').model
  initial = backbones.build_backbone('mobilenet', image_size=32, width=0.25,
                                     weights=str(pretrained))
  backbone = expected.get_layer(initial.name)
  moved = max(float(np.max(np.abs(a.numpy() - b.numpy())))
              for a, b in zip(backbone.weights, initial.weights))
  assert moved > 1e-3, 'training barely moved the weights; the comparison would be empty'
  assert len(trained.weights) == len(expected.weights)
  for a, b in zip(trained.weights, expected.weights):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=0.02 * moved, err_msg=a.path)


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(('127.0.0.1', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def _cluster(count):
  workers = [f'127.0.0.1:{port}' for port in _free_ports(count)]
  return [{'cluster': {'worker': workers}, 'task': {'type': 'worker', 'index': index}}
          for index in range(count)]


@pytest.fixture(scope='module')
def single_device_run(tmp_path_factory):
  """The reference: one process, one device, from weights whose features depend on the
  image (so every layer gets gradients worth comparing)."""
  from tests.helpers import write_calibrated_weights
  root = tmp_path_factory.mktemp('single')
  weights = root / 'pretrained.weights.h5'
  write_calibrated_weights(weights)
  final, _ = _finish(_start(root / 'run', _exact_config(weights)))
  return root / 'run', weights, final


def test_mirrored_over_two_cpus_matches_one_device(single_device_run, tmp_path):
  reference, weights, reference_final = single_device_run
  final, log = _finish(_start(tmp_path / 'run', _exact_config(
      weights, distribute__strategy='mirrored'), logical_cpus=2))
  assert '2 replicas in sync' in log
  _assert_same_training(tmp_path / 'run', reference, weights)
  assert final['val_loss'] == pytest.approx(reference_final['val_loss'], rel=1e-2)


def test_two_workers_on_loopback_match_one_process(single_device_run, tmp_path):
  reference, weights, reference_final = single_device_run
  workdir = tmp_path / 'run'
  config = _exact_config(weights, distribute__strategy='multi_worker')
  workers = [_start(workdir, config, tf_config=tf_config) for tf_config in _cluster(2)]
  (chief, chief_log), (other, other_log) = [_finish(worker) for worker in workers]
  assert 'worker 0 of 2 (chief)' in chief_log and 'worker 1 of 2.' in other_log
  # Identical weights on both workers, and the same result as one process.
  assert chief['weights_sha256'] == other['weights_sha256']
  _assert_same_training(workdir, reference, weights)
  assert chief['val_loss'] == pytest.approx(reference_final['val_loss'], rel=1e-2)
  # Only the chief wrote: one checkpoint directory, one metrics row per epoch.
  rows = (workdir / 'metrics.jsonl').read_text().splitlines()
  assert len(rows) == 4
  assert not list(tmp_path.glob('**/tftransfer_worker_checkpoints_*'))


def _cluster_past_epoch(workdir, config, epochs):
  """Two workers training `config`, returned once the chief has logged `epochs` epochs."""
  workers = [_start(workdir, config, tf_config=tf_config) for tf_config in _cluster(2)]
  metrics = workdir / 'metrics.jsonl'
  deadline = time.time() + 300
  while time.time() < deadline and all(w.poll() is None for w in workers):
    if metrics.exists() and len(metrics.read_text().splitlines()) >= epochs:
      return workers
    time.sleep(0.05)
  for worker in workers:
    worker.kill()
  pytest.fail('the cluster ended, or never finished its first epochs, before the test could '
              'interrupt it')


def _stderr_when_stopped(process, timeout=120):
  """The stderr of `process` once it exits by itself; killed (and failing) after `timeout`."""
  try:
    return process.communicate(timeout=timeout)[1]
  finally:
    process.kill()


def test_killed_worker_stops_the_chief_and_the_restarted_cluster_resumes(tmp_path):
  workdir = tmp_path / 'run'
  config = {'train__head_epochs': 0, 'train__finetune_epochs': 30,
            'train__steps_per_loop': 1, 'distribute__strategy': 'multi_worker'}
  chief, other = _cluster_past_epoch(workdir, config, 3)
  other.send_signal(signal.SIGKILL)  # A worker dies; the chief cannot go on alone.
  chief_log = _stderr_when_stopped(chief)
  other.communicate()
  assert chief.returncode == 1, chief_log[-3000:]
  assert 'Lost another worker of the cluster' in chief_log
  killed_at = len((workdir / 'metrics.jsonl').read_text().splitlines())
  assert killed_at < 30

  # Restarted for two more epochs (a higher step cap continues a run; the rest of its 30
  # epochs would only take time).
  cap = min(killed_at + 2, 30) * 5
  restarted = [_start(workdir, {**config, 'train__max_steps': cap}, tf_config=tf_config)
               for tf_config in _cluster(2)]
  results = [_finish(worker) for worker in restarted]
  for final, log in results:
    assert 'Resuming from' in log
    assert final['step'] == cap
  rows = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert [row['epoch'] for row in rows] == list(range(1, cap // 5 + 1))


def test_sigterm_to_one_worker_stops_the_cluster_with_a_checkpoint(tmp_path):
  workdir = tmp_path / 'run'
  config = {'train__head_epochs': 0, 'train__finetune_epochs': 12, 'train__steps_per_loop': 1,
            'train__checkpoint_every_secs': 0, 'distribute__strategy': 'multi_worker'}
  workers = _cluster_past_epoch(workdir, config, 2)
  workers[1].send_signal(signal.SIGTERM)  # The non-chief is preempted; the chief is not.
  logs = [_stderr_when_stopped(worker) for worker in workers]
  assert [w.returncode for w in workers] == [1, 128 + signal.SIGTERM], logs[1][-3000:]
  assert "Stopped by another worker's stop request" in logs[0]
  stopped_at = int(logs[1].split('Stopped by SIGTERM at step ')[1].split()[0])
  assert f'Stopped by another worker\'s stop request at step {stopped_at} ' in logs[0]
  # Mid-epoch or at an epoch's end, whichever check came first: saved there, by both.
  assert (workdir / 'checkpoints' / f'ckpt-{stopped_at}.index').exists()

  # Restarted to the end of the next epoch (a higher step cap continues a run; the rest of
  # its 12 epochs would only take time).
  cap = (stopped_at // 5 + 1) * 5
  restarted = [_start(workdir, {**config, 'train__max_steps': cap}, tf_config=tf_config)
               for tf_config in _cluster(2)]
  for final, log in [_finish(worker) for worker in restarted]:
    assert f'ckpt-{stopped_at} at step {stopped_at} of {cap}' in log
    assert final['step'] == cap
  rows = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert [row['epoch'] for row in rows] == list(range(1, cap // 5 + 1))
  assert not any(row.get('partial') for row in rows)
