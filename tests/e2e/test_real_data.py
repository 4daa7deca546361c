"""Train, export, predict and evaluate on real data: shared CIFAR-10 JPEGs, ImageNet MobileNet.

One run (1,000 labels, frozen ImageNet features, 96 px) serves every test here. Skipped when
../shared is absent (as in a user's fresh clone).
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tftransfer.data import folders, splits
from tftransfer.training import loop
from tests.helpers import SHARED_TRAIN, SHARED_WEIGHTS, console_script, tiny_config

pytestmark = pytest.mark.shared_data


def _run(*args):
  result = subprocess.run([sys.executable, '-m', *args], capture_output=True, text=True,
                          timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


@pytest.fixture(scope='module')
def cifar10_run(tmp_path_factory):
  config = tiny_config(
      data__source='folder', data__path=str(SHARED_TRAIN), data__eval_split='carve',
      data__val_fraction=0.02, data__max_examples_per_class=100, data__flip=True,
      model__weights=str(SHARED_WEIGHTS), model__image_size=96, train__batch_size=32,
      train__head_epochs=8, train__finetune_epochs=0, train__head_lr=3e-3)
  workdir = tmp_path_factory.mktemp('cifar10') / 'run'
  return config, workdir, loop.train_and_evaluate(config, str(workdir))


def test_imagenet_features_transfer_to_cifar10_folder(cifar10_run):
  _, workdir, final = cifar10_run
  data = json.loads((workdir / 'data.json').read_text())
  assert data['class_names'][:3] == ['airplane', 'automobile', 'bird']
  assert final['num_val_examples'] == 1000
  # 1,000 labels on frozen ImageNet features: far above the 10 % of chance, where the same
  # run with random weights stays (measured: 0.587 with these weights, 0.100 without).
  assert final['val_accuracy'] > 0.45, final


def test_cifar10_model_exports_predicts_and_evaluates(cifar10_run, tmp_path):
  config, workdir, final = cifar10_run
  models = tmp_path / 'models'
  version = _run('tftransfer.export', f'--workdir={workdir}', f'--export_dir={models}')
  assert version.strip() == str(models / '1')
  shown = subprocess.run([console_script('saved_model_cli'), 'show', '--dir', str(models / '1'),
                          '--all'],
                         capture_output=True, text=True, check=True).stdout
  assert "signature_def['serving_default']" in shown
  assert "signature_def['predict_images']" in shown

  # Ten validation JPEGs per class, chosen as the run chose its validation split.
  listing = folders.list_folder(str(SHARED_TRAIN))
  _, val = splits.stratified_split(listing.labels, val_fraction=0.02, seed=config.seed)
  chosen = np.concatenate([val[listing.labels[val] == label][:10] for label in range(10)])
  files = [listing.files[index] for index in chosen]
  lines = [json.loads(line) for line in _run(
      'tftransfer.predict', f'--model={models / "1"}', *files).splitlines()]
  assert [line['path'] for line in lines] == files
  right = [line['class'] == listing.class_names[listing.labels[index]]
           for line, index in zip(lines, chosen)]
  # Chance is 0.1; measured 0.57 on these 100 images and 0.587 on all 1,000 validation images.
  assert np.mean(right) > 0.45, (np.mean(right), final)

  _run('tftransfer.evaluate', f'--workdir={workdir}')
  metrics = json.loads((workdir / 'eval' / 'metrics.json').read_text())
  assert metrics['num_examples'] == final['num_val_examples'] == 1000
  assert metrics['top1_accuracy'] == pytest.approx(final['val_accuracy'], abs=1e-5)
  assert metrics['top5_accuracy'] > metrics['top1_accuracy']
  assert (workdir / 'eval' / 'confusion_matrix.png').stat().st_size > 10_000



def test_cifar10_model_as_int8_litert_is_guarded_measured_and_served(cifar10_run, tmp_path):
  """Full-integer LiteRT of a real ImageNet MobileNet. This run's head was trained on frozen
  ImageNet features, and int8 costs it 4.5 points (0.586 -> 0.541 measured; the fine-tuned
  README model loses 0.26): the default 2-point guard must stop that export, and one with a
  looser guard must be integer-only, a third of the float size, and predict as measured. The
refused export still publishes the formats that passed."""
  _, workdir, _ = cifar10_run
  models = tmp_path / 'models'
  command = [sys.executable, '-m', 'tftransfer.export', f'--workdir={workdir}',
             f'--export_dir={models}', '--format=saved_model,tflite', '--quantize=none,int8',
             '--latency_runs=5']
  refused = subprocess.run(command, capture_output=True, text=True, timeout=600)
  assert refused.returncode == 2, refused.stderr[-3000:]
  assert re.fullmatch(
      r"tftransfer-export: error: tflite_int8 top-1 0\.\d{4} is \d\.\d\d points below the "
      r"SavedModel's 0\.\d{4}, 95% interval \d\.\d\d to \d+\.\d\d, more than "
      r'--max_accuracy_drop=2 \(on 1000 validation images\)\. Exported the others '
      r'\(saved_model, tflite\) to .*/models/1, without tflite_int8\. .*',
      refused.stderr.splitlines()[-1]), refused.stderr[-500:]
  assert 'model_int8.tflite' not in os.listdir(models / '1')
  assert 'model.tflite' in os.listdir(models / '1')

  version = _run(*command[2:], '--max_accuracy_drop=10').strip()
  assert version.endswith('/models/2')
  report = json.loads((models / '2' / 'export_report.json').read_text())
  artifacts = {artifact['name']: artifact for artifact in report['artifacts']}
  int8, float32 = artifacts['tflite_int8'], artifacts['tflite']
  assert int8['num_images'] == 1000
  assert set(int8['tensor_dtypes']) <= {'int8', 'uint8', 'int32'}, int8['tensor_dtypes']
  assert int8['bytes'] < 0.4 * float32['bytes'], (int8['bytes'], float32['bytes'])
  assert 2.0 < int8['accuracy_drop_points'] <= 10.0 and int8['top1_agreement'] > 0.65, int8
  assert float32['top1_agreement'] == 1.0 and float32['accuracy_drop_points'] == 0.0

  # tftransfer-predict on the float32 .tflite answers as on the SavedModel; the scores differ
  # only by the rounding of the resized image to the uint8 pixels the .tflite takes (the
  # SavedModel's serving_default resizes in float), which moves this 0.59-accurate model's
  # scores by up to 0.048 (measured; the export report, which sends both the same pixels,
  # finds 1e-5).
  files = [str(path) for path in sorted((SHARED_TRAIN / 'ship').iterdir())[:20]]
  on_phone = [json.loads(line) for line in _run(
      'tftransfer.predict', f'--model={version}/model.tflite', *files).splitlines()]
  served = [json.loads(line) for line in _run(
      'tftransfer.predict', f'--model={version}', *files).splitlines()]
  assert np.mean([a['class'] == b['class'] for a, b in zip(on_phone, served)]) >= 0.9
  np.testing.assert_allclose([line['score'] for line in on_phone],
                             [line['score'] for line in served], atol=0.1)
