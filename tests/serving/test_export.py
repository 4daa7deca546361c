"""The versioned SavedModel export: its layout, warmup requests, reloading without tftransfer,
versions, and what happens when it fails."""

import json
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tftransfer.serving import export
from tftransfer import restore
from tests.helpers import encode_image, expected_probabilities, random_image

IMAGE_SIZE = 32  # tiny_config's model.image_size
TOLERANCE = 1e-4  # see test_signatures.py
CLASSES = ['zigzag', 'spiral', 'diamonds', 'waves', 'hatch']  # textures_target, label order


def test_export_layout_labels_and_metadata(tiny_export, tiny_run):
  assert sorted(os.listdir(tiny_export)) == ['assets', 'assets.extra', 'fingerprint.pb',
                                             'saved_model.pb', 'variables']
  assert (tiny_export / 'assets' / 'labels.txt').read_text() == ''.join(
      f'{name}\n' for name in CLASSES)
  metadata = json.loads((tiny_export / 'assets.extra' / 'tftransfer.json').read_text())
  final = json.loads((tiny_run / 'final_metrics.json').read_text())
  # The export holds the selected epoch, which need not be the last.
  assert metadata['step'] == final['selected']['step'] and metadata['final_metrics'] == final
  assert (metadata['image_size'], metadata['top_k'], metadata['max_image_pixels']) == (
      IMAGE_SIZE, 3, 64 * 64)
  # Readable by a TF Serving running as another user, as the files inside it are.
  umask = os.umask(0)
  os.umask(umask)
  assert stat.S_IMODE(os.stat(tiny_export).st_mode) == 0o777 & ~umask


def test_warmup_requests_parse_and_run(tiny_export, served):
  path = tiny_export / 'assets.extra' / 'tf_serving_warmup_requests'
  signatures = []
  for record in tf.data.TFRecordDataset(str(path)):
    request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
    signatures.append(request.model_spec.signature_name)
    inputs = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
    outputs = served.signatures[request.model_spec.signature_name](**inputs)
    assert outputs['probabilities'].shape == (1, 5)
  assert signatures == ['serving_default', 'predict_images']


@pytest.mark.slow
def test_reloads_in_a_fresh_process_with_tensorflow_alone(tiny_export, tmp_path):
  png = tmp_path / 'image.png'
  png.write_bytes(encode_image(random_image(45, 30)))
  script = f'''
import json, sys
import numpy as np
import tensorflow as tf
model = tf.saved_model.load({str(tiny_export)!r})
by_bytes = model.signatures['serving_default'](
    image_bytes=tf.constant([open({str(png)!r}, 'rb').read()]))
by_pixels = model.signatures['predict_images'](images=tf.constant(np.zeros((2, 20, 24, 3),
                                                                           np.uint8)))
assert 'tftransfer' not in sys.modules, 'the export must not need tftransfer'
print(json.dumps({{'classes': by_bytes['classes'].numpy().astype(str).tolist(),
                  'probabilities': by_pixels['probabilities'].numpy().tolist()}}))
'''
  result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  outputs = json.loads(result.stdout.splitlines()[-1])
  assert len(outputs['classes'][0]) == 3 and set(outputs['classes'][0]) <= set(CLASSES)
  assert np.asarray(outputs['probabilities']).shape == (2, 5)


@pytest.mark.slow
def test_versions_count_up_and_are_never_overwritten(tiny_run, tmp_path):
  models = tmp_path / 'models'
  first = export.export(str(tiny_run), str(models))
  assert first == str(models / '1')
  (models / 'not_a_version').mkdir()
  assert export.export(str(tiny_run), str(models)) == str(models / '2')
  before = (models / '1' / 'saved_model.pb').stat()
  with pytest.raises(FileExistsError, match=r'1 already exists.*--version.*--overwrite'):
    export.export(str(tiny_run), str(models), version=1)
  assert (models / '1' / 'saved_model.pb').stat().st_mtime_ns == before.st_mtime_ns
  export.export(str(tiny_run), str(models), version=1, overwrite=True)
  assert (models / '1' / 'saved_model.pb').stat().st_ino != before.st_ino
  assert export.export(str(tiny_run), str(models), version=7) == str(models / '7')
  assert export.next_version(str(models)) == 8
  assert sorted(os.listdir(models)) == ['1', '2', '7', 'not_a_version']


@pytest.mark.parametrize('failing', ['write_warmup', '_check_loads'])
def test_a_failed_export_leaves_no_version_behind(tiny_run, tmp_path, monkeypatch, failing):
  def fail(*args, **kwargs):
    raise OSError('disk full (simulated)')

  monkeypatch.setattr(export, failing, fail)
  with pytest.raises(OSError, match='simulated'):
    export.export(str(tiny_run), str(tmp_path / 'models'))
  assert os.listdir(tmp_path / 'models') == []  # no version, no half-written staging copy


def test_an_unfinished_run_is_refused_unless_allowed(tiny_run, tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(tiny_run, workdir)
  (workdir / 'final_metrics.json').unlink()
  with pytest.raises(ValueError, match=r'unfinished.*--allow_unfinished'):
    export.export(str(workdir), str(tmp_path / 'models'))
  assert not (tmp_path / 'models').exists()
  path = export.export(str(workdir), str(tmp_path / 'models'), allow_unfinished=True)
  assert json.loads((tmp_path / 'models' / '1' / 'assets.extra' / 'tftransfer.json'
                     ).read_text())['final_metrics'] is None
  assert path.endswith('1')


def test_a_missing_workdir_is_refused_without_creating_it(tmp_path):
  with pytest.raises(FileNotFoundError, match='holds no training run'):
    export.export(str(tmp_path / 'typo'), str(tmp_path / 'models'))
  assert not (tmp_path / 'typo').exists()


@pytest.mark.slow
def test_a_bfloat16_run_serves_float32(tmp_path):
  from tftransfer.training import loop
  from tests.helpers import tiny_config
  workdir = tmp_path / 'run'
  loop.train_and_evaluate(tiny_config(train__mixed_precision='bfloat16', train__max_steps=2,
                                          train__head_epochs=0), str(workdir))
  served = tf.saved_model.load(export.export(str(workdir), str(tmp_path / 'models')))
  encoded = [encode_image(random_image(40, 40))]
  outputs = served.signatures['serving_default'](image_bytes=tf.constant(encoded))
  assert outputs['probabilities'].dtype == tf.float32
  np.testing.assert_allclose(
      outputs['probabilities'].numpy(),
      expected_probabilities(restore.restore(str(workdir)).model, encoded), atol=TOLERANCE)


EDGE_FILES = ['export_report.json', 'labels.txt', 'model.keras', 'model.tflite',
              'model_dynamic.tflite', 'model_float16.tflite', 'model_int8.tflite']


def test_edge_formats_sit_beside_the_saved_model_with_their_report(tiny_edge_export):
  names = sorted(os.listdir(tiny_edge_export))
  assert names == sorted(EDGE_FILES + ['assets', 'assets.extra', 'fingerprint.pb',
                                       'saved_model.pb', 'variables'])
  assert (tiny_edge_export / 'labels.txt').read_text() == ''.join(f'{c}\n' for c in CLASSES)
  report = json.loads((tiny_edge_export / 'export_report.json').read_text())
  artifacts = {artifact['name']: artifact for artifact in report['artifacts']}
  assert list(artifacts) == ['saved_model', 'keras', 'tflite', 'tflite_float16',
                             'tflite_dynamic', 'tflite_int8']
  reference = artifacts['saved_model']
  assert reference['num_images'] == 100  # the tiny run's validation split
  for name, artifact in artifacts.items():
    assert artifact['num_images'] == 100 and artifact['latency_ms'] > 0
    if name.startswith('tflite') or name == 'keras':
      assert artifact['bytes'] == (tiny_edge_export / artifact['file']).stat().st_size
      assert artifact['accuracy_drop_points'] == pytest.approx(
          100 * (reference['top1_accuracy'] - artifact['top1_accuracy']), abs=1e-3)
  assert artifacts['keras']['max_probability_difference'] < 1e-4
  assert artifacts['tflite_int8']['bytes'] < 0.4 * artifacts['tflite']['bytes']
  assert artifacts['tflite_int8']['calibration']['num_images'] == 40
  assert report['source']['step'] == json.loads(
      (tiny_edge_export / 'assets.extra' / 'tftransfer.json').read_text())['step']


@pytest.mark.slow
def test_the_accuracy_guard_refuses_an_impossible_threshold_and_publishes_nothing(
    tiny_run, tmp_path):
  # A drop of at most -100 points: the .tflite would have to beat the SavedModel by 100.
  with pytest.raises(ValueError, match=r'tflite_float16 top-1 0\.\d+ is -?\d+\.\d\d points below '
                     r"the SavedModel's 0\.\d+, more than --max_accuracy_drop=-100 \(on 100 "
                     r'validation images\)\. Nothing was exported'):
    export.export(str(tiny_run), str(tmp_path / 'models'), formats=('tflite',),
                  quantize=('float16',), max_accuracy_drop=-100.0, latency_runs=1)
  assert os.listdir(tmp_path / 'models') == []


def test_check_accuracy_compares_each_drop_with_its_own_maximum():
  from tftransfer.serving import export_report
  results = [{'name': 'saved_model', 'top1_accuracy': 0.8, 'num_images': 1000,
              'metric': 'top1_accuracy'},
             {'name': 'tflite_int8', 'top1_accuracy': 0.785, 'accuracy_drop_points': 1.5,
              'max_accuracy_drop_points': 2.0},
             {'name': 'keras', 'top1_accuracy': 0.7, 'accuracy_drop_points': 10.0,
              'max_accuracy_drop_points': None}]
  export_report.check_accuracy(results)  # within its maximum; keras is not guarded
  results[1]['max_accuracy_drop_points'] = 1.0
  with pytest.raises(export_report.AccuracyDropError,
                     match=r'tflite_int8 top-1 0\.7850 is 1\.50 points below .* 0\.8000, more '
                     r'than --max_accuracy_drop=1 \(on 1000'):
    export_report.check_accuracy(results)


@pytest.mark.slow
def test_tflite_alone_needs_no_saved_model_and_an_unfinished_run_is_refused(tiny_run,
                                                                          tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(tiny_run, workdir)
  (workdir / 'final_metrics.json').unlink()
  with pytest.raises(ValueError, match=r'unfinished.*--allow_unfinished'):
    export.export(str(workdir), str(tmp_path / 'models'), formats=('tflite',))
  assert not (tmp_path / 'models').exists()
  path = export.export(str(workdir), str(tmp_path / 'models'), formats=('tflite',),
                       allow_unfinished=True, latency_runs=1)
  assert sorted(os.listdir(path)) == ['export_report.json', 'labels.txt', 'model.tflite']
  report = json.loads((tmp_path / 'models' / '1' / 'export_report.json').read_text())
  assert report['source']['final_metrics'] is None
  assert report['artifacts'][0]['exported'] is False  # measured, as the reference, not kept


@pytest.mark.parametrize('formats, quantize, message', [
    (('onnx',), None, r'--format=onnx is not valid.*saved_model, tflite, keras'),
    (('tflite', 'tflite'), None, 'each once'),
    (('saved_model',), ('int8',), r'--quantize=int8 applies to LiteRT models: add '
                                  '--format=tflite'),
    (('tflite',), ('int4',), 'int4')])
def test_bad_formats_are_refused_before_anything_is_read(tmp_path, formats, quantize, message):
  with pytest.raises(ValueError, match=message):
    export.export(str(tmp_path / 'no_run'), str(tmp_path / 'models'), formats=formats,
                  quantize=quantize)


@pytest.mark.slow
def test_a_run_from_before_the_shared_pixel_limit_keeps_its_serving_limit(tiny_run, tmp_path):
  # Runs trained before data.max_image_pixels held the serving limit in export.
  workdir = tmp_path / 'run'
  shutil.copytree(tiny_run, workdir)
  config = json.loads((workdir / 'config.json').read_text())
  del config['data']['max_image_pixels']
  config['export']['max_image_pixels'] = 3100  # the warmup request's 48 x 64 fit
  (workdir / 'config.json').write_text(json.dumps(config))
  version = export.export(str(workdir), str(tmp_path / 'models'))
  metadata = json.loads((tmp_path / 'models' / '1' / 'assets.extra' / 'tftransfer.json'
                         ).read_text())
  assert metadata['max_image_pixels'] == 3100
  served = tf.saved_model.load(version).signatures['serving_default']
  with pytest.raises(tf.errors.InvalidArgumentError, match='60 x 60 pixels, more than the 3100'):
    served(image_bytes=tf.constant([encode_image(random_image(60, 60))]))
