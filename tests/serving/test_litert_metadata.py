"""The TFLite Model Metadata in every exported .tflite: its fields read back, and MediaPipe
Tasks (the runtime of phone apps) naming the classes from it and agreeing with predict."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tftransfer import errors
from tftransfer.serving import litert_metadata, litert_runtime, prediction
from tests.helpers import encode_image, random_image

CLASSES = ['zigzag', 'spiral', 'diamonds', 'waves', 'hatch']  # the tiny run's, in label order
QUANTIZATIONS = ('model', 'model_float16', 'model_dynamic', 'model_int8')


def test_a_file_without_metadata_is_refused_with_the_remedy():
  with pytest.raises(errors.InvalidValueError, match='no TFL3 identifier'):
    litert_metadata.read(b'\0' * 64)


@pytest.mark.slow
@pytest.mark.parametrize('name', QUANTIZATIONS)
def test_every_field_reads_back(tiny_edge_export, name):
  path = str(tiny_edge_export / f'{name}.tflite')
  written = litert_metadata.read(path)
  step = json.loads((tiny_edge_export / 'export_report.json').read_text())['source']['step']
  assert written['name'] == 'tftransfer mobilenet image classifier'
  assert written['version'] == f'step {step}' and written['author'] == 'tftransfer'
  assert f'{len(CLASSES)} classes' in written['description']
  assert written['min_parser_version'] == '1.0.0'
  (images,) = written['inputs']
  # Every tftransfer .tflite takes uint8 pixels and normalises inside its graph (the int8
  # one too): no NormalizationOptions, which would make a runtime rescale them.
  assert litert_runtime.LiteRTClassifier(path).interpreter.get_input_details()[0][
      'dtype'] == np.uint8
  assert images['name'] == 'images' and images['color_space'] == 'RGB'
  assert images['image_size'] == [32, 32] and images['normalization'] is None
  assert images['stats'] == {'min': [0.0], 'max': [255.0]}
  (probabilities,) = written['outputs']
  assert probabilities['name'] == 'probabilities'
  assert [(f['name'], f['type']) for f in probabilities['associated_files']] == [
      ('labels.txt', 'TENSOR_AXIS_LABELS')]
  assert written['files'] == {'labels.txt': ''.join(f'{c}\n' for c in CLASSES)}
  report = json.loads((tiny_edge_export / 'export_report.json').read_text())
  recorded = next(a for a in report['artifacts'] if a.get('file') == f'{name}.tflite')
  assert recorded['metadata']['associated_files'] == ['labels.txt']


@pytest.mark.slow
@pytest.mark.parametrize('name', QUANTIZATIONS)
def test_mediapipe_names_the_classes_and_agrees_with_predict(tiny_edge_export, name,
                                                             tmp_path):
  mp = pytest.importorskip('mediapipe', reason='MediaPipe Tasks is in the test extra')
  from mediapipe.tasks import python as mp_tasks  # pylint: disable=g-import-not-at-top
  from mediapipe.tasks.python import vision  # pylint: disable=g-import-not-at-top
  path = str(tiny_edge_export / f'{name}.tflite')
  # Images of the model's own size: both runtimes then classify the very same pixels.
  files = []
  for index in range(60):
    files.append(tmp_path / f'{index}.png')
    files[-1].write_bytes(encode_image(random_image(32, 32, seed=index)))
  ours = list(prediction.predict_files(prediction.load_model(path), [str(f) for f in files]))
  options = vision.ImageClassifierOptions(
      base_options=mp_tasks.BaseOptions(model_asset_path=path), max_results=1)
  with vision.ImageClassifier.create_from_options(options) as classifier:
    theirs = [classifier.classify(mp.Image.create_from_file(str(f))).classifications[0]
              .categories[0] for f in files]
  assert all(category.category_name in CLASSES for category in theirs), theirs[:3]
  agree = np.mean([category.category_name == result['class']
                   for category, result in zip(theirs, ours)])
  assert agree >= 0.99, agree


@pytest.mark.slow
def test_the_inspect_command_prints_what_read_finds(tiny_edge_export):
  path = str(tiny_edge_export / 'model_int8.tflite')
  shown = subprocess.run([sys.executable, '-m', 'tftransfer', 'inspect', path],
                         capture_output=True, text=True, timeout=300)
  assert shown.returncode == 0, shown.stderr[-2000:]
  assert json.loads(shown.stdout) == {'path': path, **litert_metadata.read(path)}
  as_a_user = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
  missing = subprocess.run([sys.executable, '-m', 'tftransfer', 'inspect', path + '.gone'],
                           capture_output=True, text=True, timeout=300, env=as_a_user)
  assert missing.returncode == 2
  assert missing.stderr.splitlines() == [
      f"tftransfer inspect: error: '{path}.gone': no such file."]
