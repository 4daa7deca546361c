"""Evaluation of a run and of an export: the same split and numbers as training, a readable
PNG, and the command."""

import json
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tftransfer import errors, workdir as workdir_lib
from tftransfer.evaluation import evaluate, report as report_lib
from tftransfer.serving import export
from tests.helpers import tiny_config


def _check_report(directory, metrics):
  written = json.loads((directory / 'metrics.json').read_text())
  assert written == json.loads(json.dumps(metrics))
  counts = np.asarray(written['confusion_matrix']['counts'])
  assert written['confusion_matrix']['class_names'] == [
      'zigzag', 'spiral', 'diamonds', 'waves', 'hatch']
  assert counts.sum() == written['num_examples']
  assert written['top1_accuracy'] == round(np.trace(counts) / counts.sum(), 5)
  for index, name in enumerate(written['confusion_matrix']['class_names']):
    assert written['per_class'][name]['support'] == counts[index].sum()
  png = tf.io.decode_png((directory / 'confusion_matrix.png').read_bytes())
  assert png.shape[0] > 300 and png.shape[1] > 300
  return written


def test_evaluate_workdir_agrees_with_training(tiny_run, tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(tiny_run, workdir)
  metrics = evaluate.evaluate_workdir(str(workdir), report=False)
  written = _check_report(workdir / 'eval', metrics)
  assert not (workdir / 'report').exists()
  final = json.loads((workdir / 'final_metrics.json').read_text())
  # The same split and view as training's own validation: the same accuracy.
  assert written['num_examples'] == final['num_val_examples']
  assert written['top1_accuracy'] == pytest.approx(final['val_accuracy'], abs=1e-5)


def test_evaluate_export_matches_the_workdir_evaluation(tiny_run, tiny_export, tmp_path):
  config = tiny_config(model__weights='none')  # The data section is what matters here.
  metrics = evaluate.evaluate_export(str(tiny_export), config, str(tmp_path / 'eval'))
  _check_report(tmp_path / 'eval', metrics)
  workdir = tmp_path / 'run'
  shutil.copytree(tiny_run, workdir)
  assert (metrics['confusion_matrix']['counts'] ==
          evaluate.evaluate_workdir(str(workdir))['confusion_matrix']['counts'])
  with pytest.raises(ValueError, match=r'has classes .* the model'):
    evaluate.evaluate_export(str(tiny_export), tiny_config(data__name='textures_source'),
                               str(tmp_path / 'other'))


@pytest.mark.parametrize('name', ['tflite', 'tflite_int8'])
def test_evaluate_a_tflite_export_as_its_export_report_measured_it(tiny_edge_export, tmp_path,
                                                                  name):
  report = json.loads((tiny_edge_export / 'export_report.json').read_text())
  artifact = next(item for item in report['artifacts'] if item['name'] == name)
  model = tiny_edge_export / artifact['file']
  metrics = evaluate.evaluate_export(str(model), tiny_config(model__weights='none'),
                                     str(tmp_path / 'eval'))
  _check_report(tmp_path / 'eval', metrics)
  assert metrics['num_examples'] == artifact['num_images']
  assert metrics['top1_accuracy'] == pytest.approx(artifact['top1_accuracy'], abs=1e-5)
  assert metrics['model']['step'] == report['source']['step']


@pytest.mark.slow
def test_evaluate_command_writes_the_workdir_report(tiny_run, tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(tiny_run, workdir)
  command = [sys.executable, '-m', 'tftransfer.evaluate', f'--workdir={workdir}']
  result = subprocess.run(command, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Top-1 accuracy' in result.stderr
  assert (workdir / 'eval' / 'metrics.json').exists()
  # The HTML report from the same predictions, naming the command that made it.
  assert (f'tftransfer-evaluate --workdir={workdir}'
          in (workdir / 'report' / 'index.html').read_text())
  misuse = subprocess.run(command + [f'--model={workdir}'], capture_output=True, text=True,
                          timeout=300)
  assert misuse.returncode != 0 and 'exactly one of --workdir' in misuse.stderr


def test_export_evaluate_and_report_read_a_run_while_a_training_holds_it(tiny_run, tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(tiny_run, workdir)
  running = subprocess.Popen(['sleep', '120'])  # the training holding the workdir
  holder = json.dumps({'host': socket.gethostname(), 'pid': running.pid, 'token': 'theirs',
                       'since': '2026-01-02T03:04:05+00:00', 'command': 'tftransfer train'})
  (workdir / workdir_lib.LOCK).write_text(holder)
  try:
    export.export(str(workdir), str(tmp_path / 'models'))
    evaluate.evaluate_workdir(str(workdir), report=False)
    report_lib.report_workdir(str(workdir))
    # Still training (no final_metrics.json): the refusal says so, not "re-run its train
    # command" (the lock would refuse that), and names the flag that reads it as it is.
    unfinished = tmp_path / 'unfinished'
    shutil.copytree(workdir, unfinished)
    (unfinished / 'final_metrics.json').unlink()
    with pytest.raises(errors.InvalidValueError,
                       match=rf'is training now \(pid {running.pid} on host .*--allow_unfinished'):
      evaluate.evaluate_workdir(str(unfinished), report=False)
    evaluate.evaluate_workdir(str(unfinished), report=False, allow_unfinished=True)
  finally:
    running.kill()
    running.wait()
  assert (workdir / workdir_lib.LOCK).read_text() == holder  # readers leave it alone
  assert (tmp_path / 'models' / '1').is_dir() and (workdir / 'report' / 'index.html').is_file()
