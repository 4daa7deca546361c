"""The train command killed or stopped mid-run, then run again: it resumes where it stopped."""

import json
import signal
import subprocess
import sys
import time

from tests.helpers import REPO


def test_killed_run_resumes_from_its_checkpoint(tmp_path):
  workdir = tmp_path / 'run'
  command = [sys.executable, '-m', 'tftransfer.train',
             f'--config={REPO / "configs" / "quickstart.py"}:scratch', f'--workdir={workdir}',
             '--config.data.max_examples_per_class=8', '--config.train.batch_size=8',
             '--config.train.finetune_epochs=30', '--config.train.steps_per_loop=1']
  process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
  deadline = time.time() + 300
  metrics = workdir / 'metrics.jsonl'
  while time.time() < deadline and process.poll() is None:
    if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
      break
    time.sleep(0.05)
  assert process.poll() is None, 'the run ended before it could be killed'
  process.send_signal(signal.SIGKILL)
  process.wait()
  killed_at = len(metrics.read_text().splitlines())
  assert 3 <= killed_at < 30

  # Resumed for two more epochs (a higher step cap continues a run; the rest of its 30
  # epochs would only take time): it goes on from the newest checkpoint, not from the start.
  cap = min(killed_at + 2, 30) * 5
  resumed = subprocess.run(command + [f'--config.train.max_steps={cap}'], capture_output=True,
                           text=True, timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert 'Resuming from' in resumed.stderr
  rows = [json.loads(line) for line in metrics.read_text().splitlines()]
  assert [row['epoch'] for row in rows] == list(range(1, cap // 5 + 1))
  assert rows[-1]['step'] == cap
  assert json.loads((workdir / 'final_metrics.json').read_text())['step'] == cap


def test_sigterm_saves_a_checkpoint_mid_epoch_and_the_run_resumes_there(tmp_path):
  # Without the stop request, SIGTERM would lose the whole epoch: with
  # checkpoint_every_secs=0 only the end of an epoch saves.
  workdir = tmp_path / 'run'
  command = [sys.executable, '-m', 'tftransfer.train',
             f'--config={REPO / "configs" / "quickstart.py"}:scratch', f'--workdir={workdir}',
             '--config.data.max_examples_per_class=200', '--config.train.batch_size=8',
             '--config.train.finetune_epochs=1', '--config.train.steps_per_loop=1',
             '--config.train.log_every_steps=1', '--config.train.checkpoint_every_secs=0']
  process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
  log = []
  for line in process.stderr:  # Progress lines: '... finetune epoch 1/1 step K/125: ...'
    log.append(line)
    if ' step 5/125' in line:
      process.send_signal(signal.SIGTERM)
      break
  try:
    log += process.communicate(timeout=120)[1]
  finally:
    process.kill()
  log = ''.join(log)
  assert process.returncode == 128 + signal.SIGTERM, log[-3000:]
  stopped_at = int(log.split('Stopped by SIGTERM at step ')[1].split()[0])
  assert 5 <= stopped_at < 125
  assert (workdir / 'checkpoints' / f'ckpt-{stopped_at}.index').exists()
  assert not (workdir / 'metrics.jsonl').exists()

  resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f'ckpt-{stopped_at} at step {stopped_at} of 125' in resumed.stderr
  assert json.loads((workdir / 'final_metrics.json').read_text())['step'] == 125
