"""The versioned SavedModel export: its layout, warmup requests, reloading without tftransfer,
versions, and what happens when it fails."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tftransfer.serving import edge_export, export, export_report, litert_runtime
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
  # An empty export directory would publish 1/ into whatever the current directory is.
  with pytest.raises(ValueError, match=r"export directory is '': name the model's base"):
    export.export(str(tiny_run), '')


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


class _RolledFloat16(litert_runtime.LiteRTClassifier):
  """A float16 .tflite that answers the next class: a conversion that lost its accuracy."""

  def __init__(self, model, **options):
    super().__init__(model, **options)
    self.rolled = isinstance(model, str) and model.endswith('_float16.tflite')

  def probabilities(self, images):
    scores = super().probabilities(images)
    return np.roll(scores, 1, axis=-1) if self.rolled else scores


@pytest.mark.slow
def test_a_format_the_guard_fails_is_named_and_left_out_while_the_others_are_published(
    tiny_run, tmp_path, monkeypatch):
  monkeypatch.setattr(edge_export.litert_runtime, 'LiteRTClassifier', _RolledFloat16)
  # The tiny run is near chance (0.26 top-1 on 100 images), so even a rolled model's loss is
  # within its 95% interval; a narrower interval lets the guard judge it (the statistics
  # themselves are test_one_flip_among_few_images_is_chance_and_a_real_loss_fails's).
  monkeypatch.setattr(export_report, 'Z_95', 0.5)
  models = tmp_path / 'models'
  with pytest.raises(export_report.AccuracyDropError,
                     match=r'tflite_float16 top-1 0\.\d{4} is \d+\.\d\d points below the '
                     r"SavedModel's 0\.\d{4}, 95% interval -?\d+\.\d\d to \d+\.\d\d, more than "
                     r'--max_accuracy_drop=1 \(on 100 validation images\)\. Exported the others '
                     r'\(saved_model, tflite\) to .*/models/1, without tflite_float16\.') as raised:
    export.export(str(tiny_run), str(models), formats=('saved_model', 'tflite'),
                  quantize=('none', 'float16'), latency_runs=1)
  assert raised.value.failed == ('tflite_float16',)
  assert raised.value.exported_to == str(models / '1')
  assert 'model.tflite' in os.listdir(models / '1')
  assert 'model_float16.tflite' not in os.listdir(models / '1')
  report = json.loads((models / '1' / 'export_report.json').read_text())
  verdicts = {artifact['name']: (artifact.get('guard'), artifact.get('exported', True))
              for artifact in report['artifacts']}
  assert verdicts == {'saved_model': (None, True), 'tflite': ('passed', True),
                      'tflite_float16': ('failed', False)}

  # Only the failing format asked for: nothing is published.
  with pytest.raises(export_report.AccuracyDropError, match=r'Nothing was exported\.'):
    export.export(str(tiny_run), str(models), formats=('tflite',), quantize=('float16',),
                  latency_runs=1)
  assert sorted(os.listdir(models)) == ['1']


def test_one_flip_among_few_images_is_chance_and_a_real_loss_fails():
  # The case: 45 images, one prediction flipped: 2.2 points, not a real loss.
  low, high = export_report.paired_drop_interval(45, 1, 0)
  assert low < 0 < 2.22 < high
  assert export_report.accuracy_guard(2.22, 1.0, (low, high)) == 'passed'
  # int8 losing 4.5 points on 1,000 images, 199 disagreements: real.
  interval = export_report.paired_drop_interval(1000, 122, 77)
  assert 0 < interval[0] < 4.5 < interval[1]
  assert export_report.accuracy_guard(4.5, 2.0, interval) == 'failed'
  assert export_report.accuracy_guard(1.5, 2.0, interval) == 'passed'  # real but allowed
  assert export_report.accuracy_guard(50.0, None, interval) == 'not_guarded'
  assert export_report.accuracy_guard(3.0, 2.0, None) == 'failed'  # mAP: no interval
  # No disagreement: an interval around zero that narrows with the sample.
  small, large = (export_report.paired_drop_interval(n, 0, 0) for n in (45, 4500))
  assert small[0] < 0 < small[1] and large[1] - large[0] < (small[1] - small[0]) / 5
  with pytest.raises(ValueError, match='do not fit'):
    export_report.paired_drop_interval(10, 8, 5)


def test_the_export_warns_when_its_sample_cannot_resolve_the_maximum_drop():
  results = [{'name': 'saved_model', 'top1_accuracy': 0.76, 'num_images': 45,
              'metric': 'top1_accuracy'},
             {'name': 'tflite_float16', 'num_images': 45, 'accuracy_drop_points': 2.22,
              'max_accuracy_drop_points': 1.0, 'accuracy_drop_interval_points': list(
                  export_report.paired_drop_interval(45, 1, 0))}]
  warning = export_report.imprecise(results)
  assert re.fullmatch(
      r'On 45 validation images the top-1 drops are known only roughly \(95% intervals, '
      r'points\): tflite_float16 2\.22 \(-\d\.\d\d to \d\.\d\d, more than '
      r'--max_accuracy_drop=1 wide\)\. The guard fails only drops it can tell from chance; '
      r'a larger validation split .*', warning), warning
  results[1]['accuracy_drop_interval_points'] = [2.1, 2.3]
  assert export_report.imprecise(results) is None


def test_check_accuracy_names_each_failure_and_what_was_published():
  results = [{'name': 'saved_model', 'top1_accuracy': 0.8, 'num_images': 1000,
              'metric': 'top1_accuracy', 'exported': True},
             {'name': 'tflite_int8', 'top1_accuracy': 0.785, 'accuracy_drop_points': 1.5,
              'max_accuracy_drop_points': 2.0, 'guard': 'passed',
              'accuracy_drop_interval_points': [0.5, 2.5]},
             {'name': 'keras', 'top1_accuracy': 0.7, 'accuracy_drop_points': 10.0,
              'max_accuracy_drop_points': None, 'guard': 'not_guarded'}]
  export_report.check_accuracy(results)  # nothing failed
  assert export_report.kept(results) == ['saved_model', 'tflite_int8', 'keras']
  results[1]['guard'] = 'failed'
  assert export_report.kept(results) == ['saved_model', 'keras']
  with pytest.raises(export_report.AccuracyDropError,
                     match=r'tflite_int8 top-1 0\.7850 is 1\.50 points below .* 0\.8000, 95% '
                     r'interval 0\.50 to 2\.50, more than --max_accuracy_drop=2 \(on 1000 '
                     r'validation images\)\. Exported the others \(saved_model, keras\) to /m/3, '
                     r'without tflite_int8\.'):
    export_report.check_accuracy(results, exported_to='/m/3')


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


@pytest.mark.slow
def test_formats_are_added_beside_a_published_saved_model_without_a_new_version(tiny_run,
                                                                              tmp_path):
  models = tmp_path / 'models'
  version = export.export(str(tiny_run), str(models))
  served = sorted(os.listdir(version))
  added = export.export(str(tiny_run), str(models), version=1, formats=('tflite', 'keras'),
                        max_accuracy_drop=100.0, latency_runs=1)
  assert added == version and os.listdir(models) == ['1']
  assert sorted(os.listdir(version)) == sorted(
      served + ['export_report.json', 'labels.txt', 'model.keras', 'model.tflite'])
  report = json.loads((models / '1' / 'export_report.json').read_text())
  assert [artifact['name'] for artifact in report['artifacts']] == [
      'saved_model', 'keras', 'tflite']
  assert report['artifacts'][0]['exported'] is True

  # A second quantization joins them, and the report keeps what it measured before.
  export.export(str(tiny_run), str(models), version=1, formats=('tflite',),
                quantize=('int8',), max_accuracy_drop=100.0, latency_runs=1)
  report = json.loads((models / '1' / 'export_report.json').read_text())
  assert [artifact['name'] for artifact in report['artifacts']] == [
      'saved_model', 'keras', 'tflite', 'tflite_int8']
  with pytest.raises(FileExistsError, match=r'model\.tflite already in .*never replaced'):
    export.export(str(tiny_run), str(models), version=1, formats=('tflite',), latency_runs=1)
  with pytest.raises(FileExistsError, match=r'--version=1 --format=tflite \(without '):
    export.export(str(tiny_run), str(models), version=1)  # a SavedModel again: refused

  # Another checkpoint's files never join a version.
  other = tmp_path / 'other'
  shutil.copytree(tiny_run, other)
  with pytest.raises(ValueError, match=r'holds step \d+ of .*, not step \d+ of .*other'):
    export.export(str(other), str(models), version=1, formats=('tflite',), latency_runs=1)
