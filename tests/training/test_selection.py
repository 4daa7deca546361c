"""The run's result is its best epoch, not its last; early stopping ends a phase for good."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tftransfer.evaluation import evaluate
from tftransfer.serving import export
from tftransfer import restore
from tftransfer.training import loop, pacing, selection, state
from tests.helpers import encode_image, random_image, tiny_config, write_calibrated_weights


def _rows(workdir):
  return [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]


@pytest.fixture(scope='module')
def degraded_run(tmp_path_factory):
  """Three good head epochs, then fine-tuning at a learning rate far too high."""
  root = tmp_path_factory.mktemp('degraded')
  weights = root / 'calibrated.weights.h5'
  write_calibrated_weights(weights)
  config = tiny_config(model__weights=str(weights), train__head_epochs=3, train__head_lr=3e-2,
                       train__finetune_epochs=2, train__finetune_lr=0.3,
                       train__warmup_fraction=0.0)
  final = loop.train_and_evaluate(config, str(root / 'run'))
  return root / 'run', final


def test_selection_helpers():
  rows = [{'phase': 'head', 'step': 5, 'val_accuracy': 0.5, 'val_loss': 1.0},
          {'phase': 'head', 'step': 10, 'val_accuracy': 0.7, 'val_loss': 0.9},
          {'phase': 'finetune', 'step': 15, 'val_accuracy': 0.7, 'val_loss': 0.8},
          {'phase': 'finetune', 'step': 20, 'val_accuracy': 0.6, 'val_loss': float('nan')}]
  assert selection.best_row(rows, 'val_accuracy')['step'] == 10  # ties keep the earlier
  assert selection.best_row(rows, 'val_loss')['step'] == 15  # lower is better; NaN never
  assert selection.epochs_without_improvement(rows, 'val_accuracy', 'finetune') == 2
  assert selection.epochs_without_improvement(rows, 'val_loss', 'finetune') == 1
  assert selection.best_row([], 'val_accuracy') is None


def test_a_partial_epochs_row_is_neither_selected_nor_counted_for_patience():
  # Capped at step 7 inside head epoch 2: its evaluation is no epoch.
  rows = [{'phase': 'head', 'epoch': 1, 'step': 5, 'val_accuracy': 0.5},
          {'phase': 'head', 'epoch': 2, 'step': 7, 'val_accuracy': 0.9, 'partial': True}]
  assert selection.best_row(rows, 'val_accuracy')['step'] == 5
  assert selection.best_row(rows[1:], 'val_accuracy') is None  # the last model stands in
  assert selection.epochs_without_improvement(rows, 'val_accuracy', 'head') == 0
  assert pacing.no_progress(rows, phase='head', metric='val_accuracy', patience=1) == ''
  # Completed (the partial row replaced), epoch 2 is one epoch without a better result.
  rows = [rows[0], {'phase': 'head', 'epoch': 2, 'step': 10, 'val_accuracy': 0.4}]
  assert pacing.no_progress(rows, phase='head', metric='val_accuracy', patience=1) != ''


@pytest.mark.slow
def test_a_degraded_fine_tune_still_exports_the_better_earlier_model(degraded_run, tmp_path):
  workdir, final = degraded_run
  rows = _rows(workdir)
  head_best = max((row for row in rows if row['phase'] == 'head'),
                  key=lambda row: row['val_accuracy'])
  assert all(row['val_accuracy'] < head_best['val_accuracy'] for row in rows
             if row['phase'] == 'finetune'), rows  # the fine-tuning did degrade
  assert final['selected']['phase'] == 'head' and final['selected']['step'] == head_best['step']
  assert final['val_accuracy'] == head_best['val_accuracy'] > final['last']['val_accuracy']
  assert final['last']['step'] == rows[-1]['step']
  # Export, evaluation and restore use the selected checkpoint by default.
  assert restore.restore(str(workdir)).step == head_best['step']
  assert restore.restore(str(workdir), checkpoint='last').step == rows[-1]['step']
  metrics = evaluate.evaluate_workdir(str(workdir), output_dir=str(tmp_path / 'eval'))
  assert metrics['top1_accuracy'] == pytest.approx(final['val_accuracy'], abs=1e-5)
  assert metrics['model']['step'] == head_best['step']
  served = tf.saved_model.load(export.export(str(workdir), str(tmp_path / 'models')))
  images = [encode_image(random_image(32, 32, seed=seed)) for seed in range(8)]
  probabilities = served.signatures['serving_default'](image_bytes=tf.constant(images))[
      'probabilities'].numpy()
  from tests.helpers import expected_probabilities
  best = restore.restore(str(workdir)).model
  last = restore.restore(str(workdir), checkpoint='last').model
  np.testing.assert_allclose(probabilities, expected_probabilities(best, images), atol=1e-4)
  assert np.abs(probabilities - expected_probabilities(last, images)).max() > 1e-2


@pytest.mark.slow
def test_a_step_that_is_not_kept_is_refused(degraded_run):
  workdir, _ = degraded_run
  with pytest.raises(FileNotFoundError, match=r'--checkpoint=3: .* keeps checkpoints of steps'):
    restore.restore(str(workdir), checkpoint=3)


def test_early_stopping_ends_the_run_for_good(tmp_path, monkeypatch, caplog):
  weights = tmp_path / 'calibrated.weights.h5'
  write_calibrated_weights(weights)
  config = tiny_config(model__weights=str(weights), train__head_epochs=2, train__head_lr=3e-2,
                       train__finetune_epochs=6, train__finetune_lr=0.3,
                       train__warmup_fraction=0.0, train__early_stopping_patience=2)
  workdir = tmp_path / 'run'
  final = loop.train_and_evaluate(config, str(workdir))
  rows = _rows(workdir)
  finetune_rows = [row for row in rows if row['phase'] == 'finetune']
  assert len(finetune_rows) == 2, rows  # two epochs without a new best, not six
  assert final['step'] == 2 * 5 + 2 * 5 == rows[-1]['step']  # the steps trained
  (stop,) = final['stopped_early']
  assert (stop['phase'], stop['epochs_done']) == ('finetune', 2)
  assert 'no better val_accuracy in 2 epochs' in stop['reason']
  assert 'Ending phase finetune at step 20, after 2 of its 6 epochs' in caplog.text

  def no_work(*args, **kwargs):
    pytest.fail('an early-stopped run trained or evaluated again')

  monkeypatch.setattr(loop, '_train_phase', no_work)
  monkeypatch.setattr(state, 'finish', no_work)
  assert loop.train_and_evaluate(config, str(workdir)) == final
