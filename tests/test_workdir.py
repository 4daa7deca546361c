"""The workdir: what a resumed run may change, the metrics rows, files written in place."""

import functools
import json
import os
import pathlib
import re
import socket
import subprocess
import sys

import pytest

from tests.helpers import REPO, write_image_folder
from tftransfer import config as config_lib, errors, locking, workdir as workdir_lib
from tftransfer.workdir import Workdir


def _config(**changes):
  config = config_lib.default_config()
  for dotted, value in changes.items():
    section, field = dotted.split('__')
    config[section][field] = value
  return config


def test_a_resumed_run_may_change_how_it_runs_but_not_what_it_learns(tmp_path):
  run = Workdir(str(tmp_path / 'run'))
  run.save_experiment(_config(), {'class_names': ['a', 'b']})
  run.check_same_config(_config(train__max_steps=10, train__mixed_precision='bfloat16',
                                distribute__strategy='mirrored', export__top_k=3))
  with pytest.raises(ValueError, match=r'different experiment \(train.head_lr: 0.001 -> 0.5; '
                                       r'train.label_smoothing: 0.1 -> 0.0\).*new --workdir'):
    run.check_same_config(_config(train__head_lr=0.5, train__label_smoothing=0.0))


def test_data_changes_name_what_differs(tmp_path):
  run = Workdir(str(tmp_path / 'run'))
  run.save_experiment(_config(), {'class_names': ['a', 'b'], 'train_counts': [5, 5],
                                  'description': 'folder x'})
  assert run.data_changes({'class_names': ['a', 'b'], 'train_counts': [5, 5],
                           'description': 'folder y'}) == []  # the wording may change
  assert run.data_changes({'class_names': ['a', 'c'], 'train_counts': [5, 5],
                           'description': 'folder x'}) == [
                               "class_names: ['a', 'b'] -> ['a', 'c']"]
  with pytest.raises(ValueError, match='train_counts'):
    run.check_same_data({'class_names': ['a', 'b'], 'train_counts': [5, 6]})


def test_metrics_rows_append_and_forget_undone_epochs(tmp_path):
  run = Workdir(str(tmp_path / 'run'))
  assert run.read_metrics() == []
  for step in (5, 10, 15):
    run.append_metrics({'step': step, 'val_accuracy': step / 100})
  run.drop_metrics_after(10)  # resumed from the checkpoint of step 10
  assert [row['step'] for row in run.read_metrics()] == [5, 10]


def test_a_partial_epochs_row_is_replaced_by_that_epochs_next_row(tmp_path):
  # Capped at step 7 inside head epoch 2 (steps 6-10), continued to step 8, then to 10.
  run = Workdir(str(tmp_path / 'run'))
  run.append_metrics({'phase': 'head', 'epoch': 1, 'step': 5})
  run.append_metrics({'phase': 'head', 'epoch': 2, 'step': 7, 'partial': True})
  run.append_metrics({'phase': 'head', 'epoch': 2, 'step': 8, 'partial': True})
  assert [row['step'] for row in run.read_metrics()] == [5, 8]
  run.append_metrics({'phase': 'head', 'epoch': 2, 'step': 10})
  run.append_metrics({'phase': 'finetune', 'epoch': 2, 'step': 20})
  assert [(row['step'], row.get('partial')) for row in run.read_metrics()] == [
      (5, None), (10, None), (20, None)]
  # Only a partial row gives way, and only to a row of its own phase and epoch.
  rows = [{'phase': 'head', 'epoch': 2, 'step': 10},
          {'phase': 'finetune', 'epoch': 1, 'step': 12, 'partial': True}]
  assert workdir_lib.with_metrics_row(rows, {'phase': 'head', 'epoch': 2, 'step': 11}) == [
      *rows, {'phase': 'head', 'epoch': 2, 'step': 11}]


def test_readers_do_not_create_and_writers_leave_no_temporaries(tmp_path):
  missing = tmp_path / 'typo'
  assert not Workdir(str(missing), create=False).exists('config.json')
  assert not missing.exists()
  run = Workdir(str(tmp_path / 'run'))
  assert run.read_json('final_metrics.json') is None
  run.write_json('final_metrics.json', {'step': 3})
  run.write_json('final_metrics.json', {'step': 4})
  run.save_local_file('weights.h5', lambda path: open(path, 'wb').write(b'weights'))
  assert run.read_json('final_metrics.json') == {'step': 4}
  assert sorted(os.listdir(run.path)) == ['final_metrics.json', 'weights.h5']
  run.remove('final_metrics.json')
  assert not run.exists('final_metrics.json')


# The lock: one training at a time in a workdir.


def _dead_pid() -> int:
  """The pid of a process that has ended (and been waited for)."""
  finished = subprocess.Popen(['sleep', '0'])
  finished.wait()
  return finished.pid


def _write_lock(run, **holder):
  holder = {'host': socket.gethostname(), 'pid': os.getpid(), 'since': '2026-01-02T03:04:05+00:00',
            'command': 'tftransfer train --workdir=x', 'token': 'theirs', **holder}
  (pathlib.Path(run.path) / workdir_lib.LOCK).write_text(json.dumps(holder))
  return holder


def test_a_lock_is_stale_only_when_its_process_on_this_host_is_gone():
  def alive(pid):
    return pid == 7
  stale = functools.partial(locking.lock_is_stale, host='here', pid=5, held=False,
                            alive=alive)
  assert not stale({'host': 'here', 'pid': 7})  # running
  assert stale({'host': 'here', 'pid': 8})  # gone
  assert not stale({'host': 'there', 'pid': 8})  # another host's: cannot be checked
  assert not stale({'host': 'here', 'pid': 'x'})  # not a pid: refuse rather than guess
  # Our own pid: a container restarted with the same host name and pid, unless we hold it.
  assert stale({'host': 'here', 'pid': 5})
  assert not locking.lock_is_stale({'host': 'here', 'pid': 5}, host='here', pid=5,
                                       held=True, alive=alive)
  assert locking.process_alive(os.getpid())
  assert not locking.process_alive(_dead_pid())


def test_a_second_training_in_one_workdir_is_refused_naming_the_holder(tmp_path):
  run = Workdir(str(tmp_path / 'run'))
  lock = tmp_path / 'run' / workdir_lib.LOCK
  with run.lock(command='tftransfer train --config=a.py'):
    holder = json.loads(lock.read_text())
    assert holder['host'] == socket.gethostname() and holder['pid'] == os.getpid()
    assert holder['command'] == 'tftransfer train --config=a.py' and holder['since']
    with Workdir(run.path).lock():  # nested in the process that holds it: a no-op
      assert json.loads(lock.read_text()) == holder
    assert json.loads(lock.read_text()) == holder
  assert not lock.exists()
  running = subprocess.Popen(['sleep', '60'])  # another training of this host, still running
  try:
    theirs = _write_lock(run, pid=running.pid)
    with pytest.raises(errors.InUseError) as refused:
      with run.lock():
        pass
  finally:
    running.kill()
    running.wait()
  message = str(refused.value)
  assert '\n' not in message
  for part in (f'Workdir {run.path} is in use', f'pid {running.pid}',
               f'host {socket.gethostname()}', f'since {theirs["since"]}',
               'tftransfer train --workdir=x', f'If pid {running.pid} is not that training',
               f'rm {lock}'):
    assert part in message
  assert json.loads(lock.read_text()) == theirs  # the refused one leaves it alone
  lock.unlink()
  with pytest.raises(RuntimeError, match='boom'):  # released on the way out of an error too
    with run.lock():
      raise RuntimeError('boom')
  assert not lock.exists()


def test_a_lock_left_by_a_killed_process_is_taken_over_with_a_warning(tmp_path, caplog):
  run = Workdir(str(tmp_path / 'run'))
  dead = _write_lock(run, pid=_dead_pid())
  with caplog.at_level('WARNING'), run.lock():
    assert json.loads(open(run.file(workdir_lib.LOCK)).read())['pid'] == os.getpid()
  assert f'Taking over the lock {run.file(workdir_lib.LOCK)}' in caplog.text
  assert f'pid {dead["pid"]}' in caplog.text
  assert not run.exists(workdir_lib.LOCK)


def test_a_lock_of_another_host_is_refused_with_how_to_remove_it(tmp_path):
  run = Workdir(str(tmp_path / 'run'))
  theirs = _write_lock(run, host='gpu-box-7', pid=_dead_pid())  # gone, but not checkable here
  with pytest.raises(errors.InUseError, match=(
      rf'host gpu-box-7 holds it since {re.escape(theirs["since"])}.*'
      rf'If that process is gone \(host gpu-box-7 cannot be checked from .*\), '
      rf'remove the lock: rm {re.escape(run.file(workdir_lib.LOCK))}$')):
    with run.lock():
      pass
  assert json.loads(open(run.file(workdir_lib.LOCK)).read()) == theirs


def test_a_second_train_command_is_refused_in_one_line_before_any_work(tmp_path):
  write_image_folder(tmp_path / 'images')
  run = Workdir(str(tmp_path / 'run'))
  with run.lock(command='tftransfer train --config=first.py'):
    second = subprocess.run(
        [sys.executable, '-m', 'tftransfer', 'train', f'--config={REPO}/configs/folder.py',
         f'--config.data.path={tmp_path / "images"}', '--config.model.weights=none',
         f'--workdir={run.path}'], capture_output=True, text=True, timeout=300,
        env={key: value for key, value in os.environ.items()  # as a user runs it
             if key != 'TF_CPP_MIN_LOG_LEVEL'})
    assert second.returncode == 2, second.stderr[-3000:]
    assert second.stderr.splitlines() == [
        f'tftransfer train: error: Workdir {run.path} is in use: a training by pid '
        f'{os.getpid()} on host {socket.gethostname()} holds it since '
        f'{json.loads(open(run.file(workdir_lib.LOCK)).read())["since"]} (tftransfer train '
        f'--config=first.py). Wait for it to finish or train in another workdir (export, '
        f'evaluate and report read this one meanwhile with --allow_unfinished). If pid '
        f'{os.getpid()} is not that training, remove the lock: rm {run.file(workdir_lib.LOCK)}'], second.stderr[-3000:]
  assert sorted(os.listdir(run.path)) == []  # refused before the scan, the config, the plan
