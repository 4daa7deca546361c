"""The training loop: what each phase moves and leaves frozen, the workdir it writes, resuming,
caps, precision and stop requests."""

import json
import os
import shutil
import signal

import keras
import numpy as np
import pytest

from tftransfer.data import features
from tftransfer.model import backbones, transfer
from tftransfer import errors, restore, runtime, workdir as workdir_lib
from tftransfer.training import interrupts, loop, state
from tests.helpers import tiny_config, tiny_run_config, write_image_folder


def _trained_backbone(workdir):
  return backbones.build_backbone('mobilenet', image_size=32, width=0.25,
                                  weights=str(workdir / 'backbone.weights.h5'))


def _batchnorm(model):
  return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


@pytest.mark.slow
@pytest.mark.parametrize('on_features', [True, False])
def test_head_phase_moves_only_the_head(tmp_path, fake_weights, on_features):
  path, pretrained = fake_weights
  config = tiny_config(model__weights=str(path), train__finetune_epochs=0,
                       train__head_epochs=2, train__head_on_features=on_features)
  final = loop.train_and_evaluate(config, str(tmp_path / 'run'))
  assert final['step'] == 2 * 5  # 40 images / batch 8, two epochs.
  backbone = _trained_backbone(tmp_path / 'run')
  for variable, before in zip(backbone.weights, pretrained):
    np.testing.assert_array_equal(variable.numpy(), before, err_msg=variable.path)
  # ... while the head did train: compare with its initialisation under the same seed.
  with runtime.seeded(config.seed):
    untrained = transfer.build_model(backbone='mobilenet', num_classes=5, image_size=32,
                                     width=0.25, weights=str(path)).head
  trained = restore.restore(str(tmp_path / 'run')).model.get_layer('head')
  assert not np.allclose(trained.weights[0].numpy(), untrained.weights[0].numpy())


def test_finetune_trains_convolutions_but_not_batchnorm(tmp_path, fake_weights):
  path, pretrained = fake_weights
  config = tiny_config(model__weights=str(path), train__head_epochs=0,
                       train__finetune_epochs=2, train__finetune_lr=1e-2)
  loop.train_and_evaluate(config, str(tmp_path / 'run'))
  backbone = _trained_backbone(tmp_path / 'run')
  by_path = {v.path: (v.numpy(), before) for v, before in zip(backbone.weights, pretrained)}
  batchnorm = [w.path for layer in _batchnorm(backbone) for w in layer.weights]
  assert len(batchnorm) == 4 * 27
  for name in batchnorm:  # moving statistics and gamma/beta alike
    np.testing.assert_array_equal(*by_path[name], err_msg=name)
  kernels = [name for name in by_path if name.endswith('kernel')]
  assert all(not np.array_equal(*by_path[name]) for name in kernels)


@pytest.mark.slow
def test_unfreezing_top_layers_leaves_the_rest(tmp_path, fake_weights):
  path, pretrained = fake_weights
  config = tiny_config(model__weights=str(path), train__head_epochs=0,
                       train__unfreeze='6', train__finetune_lr=1e-2)
  loop.train_and_evaluate(config, str(tmp_path / 'run'))
  backbone = _trained_backbone(tmp_path / 'run')
  before = dict(zip((v.path for v in backbone.weights), pretrained))
  top = {w.path for layer in backbone.layers[-6:] for w in layer.weights}
  for variable in backbone.weights:
    moved = not np.array_equal(variable.numpy(), before[variable.path])
    trainable_kernel = variable.path in top and variable.path.endswith('kernel')
    assert moved == trainable_kernel, variable.path


@pytest.mark.slow
def test_batchnorm_trains_from_scratch_unless_frozen(tmp_path):
  config = tiny_config(train__head_epochs=0)
  loop.train_and_evaluate(config, str(tmp_path / 'run'))
  plan = json.loads((tmp_path / 'run' / 'plan.json').read_text())
  assert plan['freeze_batchnorm'] is False  # weights='none': must learn
  fresh = backbones.build_backbone('mobilenet', image_size=32, width=0.25, weights='none')
  trained = _trained_backbone(tmp_path / 'run')
  assert not np.array_equal(_batchnorm(trained)[0].moving_mean.numpy(),
                            _batchnorm(fresh)[0].moving_mean.numpy())


def test_workdir_holds_the_whole_run(tiny_run):
  workdir = tiny_run
  final = json.loads((workdir / 'final_metrics.json').read_text())
  config = json.loads((workdir / 'config.json').read_text())
  assert config['train']['mixed_precision'] == 'float32'
  assert config['train']['head_on_features'] == 'auto'  # the config as given ...
  plan = json.loads((workdir / 'plan.json').read_text())
  assert plan['head_on_features'] is True  # ... and what 'auto' became, with why
  assert 'computed once' in plan['decisions']['train.head_on_features'][1]
  assert json.loads((workdir / 'data.json').read_text())['class_names'][0] == 'zigzag'
  rows = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert [(row['phase'], row['epoch']) for row in rows] == [('head', 1), ('finetune', 1)]
  for key in ('phase', 'epoch', 'seconds', 'train_loss', 'train_accuracy', 'val_accuracy',
              'val_loss', 'val_balanced_accuracy', 'val_recall', 'images_per_sec',
              'learning_rate', 'step'):
    assert all(key in row for row in rows), key
  # The result is the best epoch by val_accuracy (the earlier of equals); 'last' the last.
  best = max(rows, key=lambda row: (row['val_accuracy'], -row['step']))
  assert (final['val_accuracy'], final['selected']['step']) == (best['val_accuracy'],
                                                                 best['step'])
  assert final['last']['val_accuracy'] == rows[-1]['val_accuracy']
  assert final['last']['step'] == rows[-1]['step'] == final['step'] == 10
  assert (workdir / 'checkpoints' / 'checkpoint').exists()
  events = os.listdir(workdir / 'tensorboard')
  assert any(name.startswith('events.out.tfevents') for name in events)


def test_the_saved_backbone_is_the_selected_epochs(tiny_run):
  saved = _trained_backbone(tiny_run)
  selected = restore.restore(str(tiny_run)).model
  last = restore.restore(str(tiny_run), checkpoint='last').model
  backbone = [layer for layer in selected.layers if layer.name == saved.name][0]
  for variable, expected in zip(saved.weights, backbone.weights):
    np.testing.assert_array_equal(variable.numpy(), expected.numpy(), err_msg=variable.path)
  final = json.loads((tiny_run / 'final_metrics.json').read_text())
  if final['selected']['step'] != final['step']:  # then the last epoch's backbone differs
    last_backbone = [layer for layer in last.layers if layer.name == saved.name][0]
    assert any(not np.array_equal(a.numpy(), b.numpy())
               for a, b in zip(saved.weights, last_backbone.weights))


def test_finished_run_is_not_retrained(tiny_run, tmp_path, monkeypatch, caplog):
  workdir = tmp_path / 'run'
  shutil.copytree(tiny_run, workdir)
  first = json.loads((workdir / 'final_metrics.json').read_text())
  checkpoints = sorted(os.listdir(workdir / 'checkpoints'))

  def no_work(*args, **kwargs):
    pytest.fail('a finished run trained or evaluated again')

  monkeypatch.setattr(loop, '_train_phase', no_work)
  monkeypatch.setattr(state, 'finish', no_work)
  second = loop.train_and_evaluate(tiny_run_config(tiny_run), str(workdir))
  assert second == first
  assert 'already holds a finished run (step 10); not retraining' in caplog.text
  assert sorted(os.listdir(workdir / 'checkpoints')) == checkpoints


def test_a_different_experiment_in_the_workdir_is_refused(tmp_path):
  workdir = tmp_path / 'run'
  loop.train_and_evaluate(tiny_config(train__max_steps=3), str(workdir))
  with pytest.raises(ValueError, match=r'train.head_lr: 0.001 -> 0.5'):
    loop.train_and_evaluate(tiny_config(train__head_lr=0.5), str(workdir))


@pytest.mark.slow
def test_max_steps_stops_early_and_a_higher_cap_continues(tmp_path, monkeypatch, caplog):
  workdir = tmp_path / 'run'
  # Its first session writes checkpoints as older versions did, without random states.
  with monkeypatch.context() as older:
    older.setattr(workdir_lib, 'random_states', lambda model: [])
    assert loop.train_and_evaluate(tiny_config(train__max_steps=3), str(workdir))[
        'step'] == 3
  final = loop.train_and_evaluate(tiny_config(train__max_steps=7), str(workdir))
  assert 'ckpt-3 holds no dropout random state (an older checkpoint)' in caplog.text
  rows = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  # Steps 1-3 and 4-5 are the head's one epoch in two pieces: one row, the partial one's
  # replaced; fine-tuning's first epoch (steps 6-10), capped at 7, is partial.
  assert [(row['step'], row.get('partial')) for row in rows] == [(5, None), (7, True)]
  assert (final['step'], final['epochs'], final['selected']['step']) == (7, 2, 5)
  # A continued run is unfinished until it finishes again, not finished at its old end.
  monkeypatch.setattr(state, 'finish', lambda run: 1 / 0)
  with pytest.raises(ZeroDivisionError):
    loop.train_and_evaluate(tiny_config(train__max_steps=8), str(workdir))
  assert not (workdir / 'final_metrics.json').exists()


def _rows(workdir):
  return [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]


@pytest.mark.slow
def test_a_run_capped_inside_an_epoch_and_continued_has_the_uninterrupted_runs_rows(tmp_path):
  # Four head epochs of 5 steps that learn nothing (the first stays best), patience 2.
  config = dict(train__head_epochs=4, train__finetune_epochs=0, train__head_lr=1e-9,
                train__early_stopping_patience=2)
  whole = loop.train_and_evaluate(tiny_config(**config), str(tmp_path / 'whole'))
  capped = loop.train_and_evaluate(tiny_config(**config, train__max_steps=7),
                                   str(tmp_path / 'continued'))
  assert [(row['step'], row.get('partial')) for row in _rows(tmp_path / 'continued')] == [
      (5, None), (7, True)]
  assert capped['selected']['step'] == 5  # the partial epoch is no candidate
  continued = loop.train_and_evaluate(tiny_config(**config), str(tmp_path / 'continued'))
  expected = [(5, 'head', 1), (10, 'head', 2), (15, 'head', 3)]
  for run in ('whole', 'continued'):
    rows = _rows(tmp_path / run)
    assert [(row['step'], row['phase'], row['epoch']) for row in rows] == expected, run
    assert not any('partial' in row for row in rows)
  # Patience counted epochs: both runs stopped after epoch 3, not 2.
  for final in (whole, continued):
    assert final['step'] == 15 and final['selected']['step'] == 5
    assert [(stop['step'], stop['epochs_done']) for stop in final['stopped_early']] == [
        (15, 3)]
  assert continued['epochs'] == whole['epochs'] == 3


@pytest.mark.slow
def test_a_run_stopped_twice_and_continued_trains_the_uninterrupted_runs_numbers(tmp_path):
  # Stopped inside a head epoch (on features) and inside a fine-tuning epoch (on images),
  # the continued run reads on in each phase's data stream, so it trains on the batches the
  # uninterrupted run trained on, in the same order: the same rows, to float rounding.
  config = dict(train__head_epochs=2, train__finetune_epochs=2, train__head_on_features=True)
  loop.train_and_evaluate(tiny_config(**config), str(tmp_path / 'whole'))
  for cap in (7, 17):
    loop.train_and_evaluate(tiny_config(**config, train__max_steps=cap),
                            str(tmp_path / 'continued'))
  loop.train_and_evaluate(tiny_config(**config), str(tmp_path / 'continued'))
  whole, continued = _rows(tmp_path / 'whole'), _rows(tmp_path / 'continued')
  assert [row['step'] for row in continued] == [row['step'] for row in whole] == [5, 10, 15, 20]
  for expected, row in zip(whole, continued):
    for key in ('train_loss', 'train_accuracy', 'val_loss', 'val_accuracy'):
      assert row[key] == pytest.approx(expected[key], rel=1e-4, abs=1e-6), (row['step'], key)


def test_bfloat16_trains_with_float32_logits(tmp_path, monkeypatch):
  built, build = [], transfer.build_model
  monkeypatch.setattr(transfer, 'build_model',
                      lambda **kwargs: built.append(build(**kwargs)) or built[-1])
  final = loop.train_and_evaluate(
      tiny_config(train__mixed_precision='bfloat16', train__max_steps=4), str(tmp_path / 'r'))
  assert final['precision'] == 'bfloat16' and np.isfinite(final['val_loss'])
  # The run set the policy itself: its backbone computed in bfloat16, while features,
  # logits and every weight stayed float32.
  model = built[0]
  assert model.backbone.compute_dtype == 'bfloat16'
  assert model.features.output.dtype == 'float32' and model.model.output.dtype == 'float32'
  assert {weight.dtype for weight in model.model.weights} == {'float32'}
  assert keras.mixed_precision.dtype_policy().name == 'float32'  # restored afterwards


def test_bad_values_fail_before_any_work(tmp_path):
  with pytest.raises(ValueError, match=r"unfreeze='top'.*'all' or a positive number"):
    loop.train_and_evaluate(tiny_config(train__unfreeze='top'), str(tmp_path / 'a'))
  with pytest.raises(ValueError, match=r"backbone='resnet'.*resnet50"):
    loop.train_and_evaluate(tiny_config(model__backbone='resnet'), str(tmp_path / 'b'))
  with pytest.raises(ValueError, match='too small'):
    loop.train_and_evaluate(tiny_config(model__backbone='xception'), str(tmp_path / 'c'))
  with pytest.raises(ValueError, match='larger than the training split'):
    loop.train_and_evaluate(tiny_config(train__batch_size=64), str(tmp_path / 'd'))
  assert not (tmp_path / 'a').exists()
  # Found only once the data is loaded, yet it does not lock the workdir to the bad value.
  assert not (tmp_path / 'd' / 'config.json').exists()
  assert loop.train_and_evaluate(tiny_config(train__max_steps=1),
                                     str(tmp_path / 'd'))['step'] == 1






@pytest.mark.slow
def test_a_run_resumes_under_another_precision(tmp_path):
  # float16 wraps the optimizer in a loss-scale optimizer; the checkpoint must not care.
  workdir = str(tmp_path / 'run')
  loop.train_and_evaluate(tiny_config(train__max_steps=3), workdir)
  final = loop.train_and_evaluate(
      tiny_config(train__max_steps=5, train__mixed_precision='float16'), workdir)
  assert (final['step'], final['precision']) == (5, 'float16')
  final = loop.train_and_evaluate(tiny_config(train__max_steps=6), workdir)
  assert (final['step'], final['precision']) == (6, 'float32')


@pytest.mark.slow
def test_a_stop_request_during_the_feature_pass_stops_before_training(tmp_path, monkeypatch):
  # Every tf.function call ends an epoch here (5 steps per loop and per epoch), so only the
  # checks outside the step loop (after the feature pass, at epoch ends) can see the request.
  compute, signals = features.compute_features, []

  def features_then_sigint(*args, **kwargs):
    if not signals:  # Once: a second Ctrl-C means 'stop at once'.
      signals.append(os.kill(os.getpid(), signal.SIGINT))
    return compute(*args, **kwargs)

  monkeypatch.setattr(features, 'compute_features', features_then_sigint)
  workdir = tmp_path / 'run'
  with pytest.raises(interrupts.Interrupted, match='Stopped by SIGINT at step 0 of 10') as error:
    loop.train_and_evaluate(tiny_config(), str(workdir))
  assert error.value.exit_code == 130
  assert (workdir / 'checkpoints' / 'ckpt-0.index').exists()
  monkeypatch.undo()
  assert loop.train_and_evaluate(tiny_config(), str(workdir))['step'] == 10


def _unhandled(signum, unused_frame):  # SIGTERM that the loop left to its default
  raise RuntimeError(f'{signal.Signals(signum).name} was not handled')


def test_training_holds_the_workdir_lock_and_releases_it_however_it_ends(tmp_path,
                                                                         monkeypatch):
  run = tmp_path / 'run'
  lock = run / workdir_lib.LOCK
  held = []
  loop.train_and_evaluate(tiny_config(train__max_steps=1), str(run), hooks=loop.Hooks(
      epoch_end=lambda row: held.append(json.loads(lock.read_text()))))
  assert [holder['pid'] for holder in held] == [os.getpid()]
  assert not lock.exists()
  # Another training holds it: refused before any work (the scan, config.json, the plan).
  elsewhere = tmp_path / 'busy'
  elsewhere.mkdir()
  theirs = {'host': 'other-host', 'pid': 1, 'since': '2026-01-01T00:00:00+00:00',
            'command': 'tftransfer train', 'token': 'x'}
  (elsewhere / workdir_lib.LOCK).write_text(json.dumps(theirs))
  with pytest.raises(errors.InUseError, match='pid 1 on host other-host'):
    loop.train_and_evaluate(tiny_config(), str(elsewhere))
  assert os.listdir(elsewhere) == [workdir_lib.LOCK]
  # A run that fails once the data is loaded, and one stopped by SIGTERM while it loads.
  with pytest.raises(ValueError, match='larger than the training split'):
    loop.train_and_evaluate(tiny_config(train__batch_size=64), str(tmp_path / 'failed'))
  assert not (tmp_path / 'failed' / workdir_lib.LOCK).exists()
  load = loop._load_data

  def terminated_while_loading(setup, run_dir):
    os.kill(os.getpid(), signal.SIGTERM)
    return load(setup, run_dir)
  monkeypatch.setattr(loop, '_load_data', terminated_while_loading)
  before = signal.signal(signal.SIGTERM, _unhandled)  # never pytest's death
  try:
    with pytest.raises(interrupts.Interrupted, match='SIGTERM') as stopped:
      loop.train_and_evaluate(tiny_config(), str(tmp_path / 'stopped'))
  finally:
    signal.signal(signal.SIGTERM, before)
  assert stopped.value.exit_code == 143
  assert not (tmp_path / 'stopped' / workdir_lib.LOCK).exists()


def test_a_run_without_validation_trains_every_epoch_and_keeps_the_last(tmp_path):
  # Issue 28 kind 4: data.val_fraction=0 on classes of one image each asks for a run without
  # validation. The feature pass and the audit must not trip on the empty split, early
  # stopping must not end a phase (nothing measures progress), and the result is the last
  # epoch, said in final_metrics.json: never a traceback, never a NaN accuracy.
  from tftransfer.auditing import run as audit_run  # pylint: disable=g-import-not-at-top
  from tftransfer.evaluation import predictions  # pylint: disable=g-import-not-at-top
  from tftransfer.serving import export  # pylint: disable=g-import-not-at-top
  root = write_image_folder(tmp_path / 'images', per_class=1)
  config = tiny_config(data__source='folder', data__path=str(root), data__val_fraction=0.0,
                       data__max_examples_per_class=0, train__batch_size=2,
                       train__head_epochs=2, train__finetune_epochs=1,
                       train__early_stopping_patience=1)
  workdir = tmp_path / 'run'
  final = loop.train_and_evaluate(config, str(workdir),
                                  hooks=loop.Hooks(features_ready=audit_run.in_training))
  assert final['validated'] is False and not any(key.startswith('val_') for key in final)
  assert final['stopped_early'] == [] and final['epochs'] == 3
  assert final['selected']['phase'] == 'finetune' and final['selected']['epoch'] == 1
  assert 'no validation' in final['selected']['description']
  assert final['selected']['metric'] is None  # no metric chose it
  assert json.loads((workdir / 'final_metrics.json').read_text())['validated'] is False
  rows = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert len(rows) == 3 and not any(key.startswith('val_') for row in rows for key in row)
  audit = json.loads((workdir / 'audit.json').read_text())
  assert audit['counts']['images'] == 3 and 'label_errors' in audit['not_judged']
  # What measures on the validation split refuses in one line, before restoring anything.
  with pytest.raises(errors.InvalidValueError, match='trained without validation.*--data='):
    predictions.predict_workdir(str(workdir))
  with pytest.raises(errors.InvalidValueError,
                     match='trained without validation.*--format=saved_model'):
    export.export(str(workdir), str(tmp_path / 'export'), formats='saved_model,tflite')
  assert not (tmp_path / 'export').exists()
