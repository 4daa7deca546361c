"""Evaluation: metrics that agree with the confusion matrix, a readable PNG, both entry points."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tftransfer import evaluation
from conftest import tiny_config


def test_metrics_follow_from_the_confusion_matrix():
  names = tuple('abcdefg')
  labels = np.array([0, 0, 1, 1, 2, 6])
  scores = np.full((6, 7), 0.0)
  scores[np.arange(6), [0, 1, 1, 1, 0, 5]] = 1.0  # predictions: a b b b a f
  scores[5, 6] = 0.5  # the true class of the last example ranks second
  scores[4] = [1.0, 0.9, -1.0, 0.8, 0.7, 0.6, 0.5]  # ... and of the fifth, last
  metrics = evaluation.classification_metrics([(scores[:4], labels[:4]),
                                               (scores[4:], labels[4:])], names)
  counts = np.asarray(metrics['confusion_matrix']['counts'])
  assert counts[0].tolist() == [1, 1, 0, 0, 0, 0, 0]
  assert counts.sum() == metrics['num_examples'] == 6
  assert metrics['top1_accuracy'] == round(3 / 6, 5)
  # Ties count in the true class's favour, as in tf.math.in_top_k (examples 1-4 tie at 0.0).
  assert metrics['top5_accuracy'] == round(5 / 6, 5)
  assert metrics['per_class']['a'] == {'precision': 0.5, 'recall': 0.5, 'f1': 0.5, 'support': 2}
  assert metrics['per_class']['b'] == {'precision': round(2 / 3, 5), 'recall': 1.0,
                                       'f1': 0.8, 'support': 2}
  assert metrics['per_class']['c'] == {'precision': 0.0, 'recall': 0.0, 'f1': 0.0,
                                       'support': 1}
  assert metrics['per_class']['d']['support'] == 0
  assert 'top5_accuracy' not in evaluation.classification_metrics(
      [(scores[:, :5], np.zeros(6, int))], names[:5])


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
  metrics = evaluation.evaluate_workdir(str(workdir))
  written = _check_report(workdir / 'eval', metrics)
  final = json.loads((workdir / 'final_metrics.json').read_text())
  # The same split and view as training's own validation: the same accuracy.
  assert written['num_examples'] == final['num_val_examples']
  assert written['top1_accuracy'] == pytest.approx(final['val_accuracy'], abs=1e-5)


def test_evaluate_export_matches_the_workdir_evaluation(tiny_run, tiny_export, tmp_path):
  config = tiny_config(model__weights='none')  # The data section is what matters here.
  metrics = evaluation.evaluate_export(str(tiny_export), config, str(tmp_path / 'eval'))
  _check_report(tmp_path / 'eval', metrics)
  workdir = tmp_path / 'run'
  shutil.copytree(tiny_run, workdir)
  assert (metrics['confusion_matrix']['counts'] ==
          evaluation.evaluate_workdir(str(workdir))['confusion_matrix']['counts'])
  with pytest.raises(ValueError, match=r'has classes .* the model'):
    evaluation.evaluate_export(str(tiny_export), tiny_config(data__name='textures_source'),
                               str(tmp_path / 'other'))


def test_evaluate_command_writes_the_workdir_report(tiny_run, tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(tiny_run, workdir)
  command = [sys.executable, '-m', 'tftransfer.evaluate', f'--workdir={workdir}']
  result = subprocess.run(command, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Top-1 accuracy' in result.stderr
  assert (workdir / 'eval' / 'metrics.json').exists()
  misuse = subprocess.run(command + [f'--model={workdir}'], capture_output=True, text=True,
                          timeout=300)
  assert misuse.returncode != 0 and 'exactly one of --workdir' in misuse.stderr
