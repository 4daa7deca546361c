"""The workdir: what a resumed run may change, the metrics rows, files written in place."""

import os

import pytest

from tftransfer import config as config_lib, workdir as workdir_lib
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
