"""tftransfer.predict: image files through the exported serving_default signature."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tftransfer.serving import prediction
from tests.helpers import MAX_IMAGE_PIXELS, write_image_folder


def test_image_files_walks_folders_and_refuses_missing_paths(tmp_path):
  root = write_image_folder(tmp_path / 'images', classes=('a', 'b'), per_class=2)
  (root / 'a' / 'notes.txt').write_text('not an image')
  assert prediction.image_files([str(root), str(root / 'a' / '0.png')]) == [
      str(root / 'a' / '0.png'), str(root / 'a' / '1.jpg'), str(root / 'b' / '0.png'),
      str(root / 'b' / '1.jpg'), str(root / 'a' / '0.png')]
  with pytest.raises(FileNotFoundError, match='typo.jpg'):
    prediction.image_files([str(tmp_path / 'typo.jpg')])


def test_load_export_points_at_the_version_directory(tiny_export):
  with pytest.raises(FileNotFoundError, match=r'pass a version directory, e.g. .*/1'):
    prediction.load_export(str(tiny_export.parent))
  assert prediction.load_export(str(tiny_export)).class_names[0] == 'zigzag'


@pytest.mark.slow
def test_predict_prints_one_json_line_per_image(tiny_export, tmp_path):
  root = write_image_folder(tmp_path / 'images', classes=('a', 'b'), per_class=3,
                            size=(50, 41))
  (root / 'b' / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n truncated')
  files = prediction.image_files([str(root)])
  environment = {key: value for key, value in os.environ.items()
                 if key != 'TF_CPP_MIN_LOG_LEVEL'}  # as users run it
  result = subprocess.run(
      [sys.executable, '-m', 'tftransfer.predict', f'--model={tiny_export}', '--batch_size=4',
       str(root)], capture_output=True, text=True, timeout=300, env=environment)
  assert result.returncode == 1, result.stderr[-3000:]  # one file was rejected
  # The rejection is in its line of stdout; stderr counts it, without TensorFlow's echo.
  assert result.stderr.splitlines()[-1] == '1 of 7 images were rejected (see their "error").'
  assert 'rendezvous' not in result.stderr and '[[{{node' not in result.stderr
  lines = [json.loads(line) for line in result.stdout.splitlines()]
  assert [line['path'] for line in lines] == files

  served = tf.saved_model.load(str(tiny_export)).signatures['serving_default']
  for line in lines:
    if line['path'].endswith('broken.png'):
      assert line == {'path': line['path'], 'error': line['error']}
      assert 'PNG' in line['error']
      continue
    with open(line['path'], 'rb') as f:
      expected = served(image_bytes=tf.constant([f.read()]))
    assert [entry['class'] for entry in line['top_k']] == expected['classes'].numpy()[
        0].astype(str).tolist()
    np.testing.assert_allclose([entry['score'] for entry in line['top_k']],
                               expected['scores'].numpy()[0], atol=1e-5)
    assert (line['class'], line['score']) == (line['top_k'][0]['class'],
                                              line['top_k'][0]['score'])


def test_predict_runs_a_tflite_export_with_host_decoding(tiny_edge_export, tmp_path):
  from tftransfer.data import image_ops
  from tftransfer.serving import litert_runtime
  root = write_image_folder(tmp_path / 'images', classes=('a',), per_class=3, size=(50, 41))
  (root / 'a' / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n truncated')
  model = tiny_edge_export / 'model_int8.tflite'
  result = subprocess.run(
      [sys.executable, '-m', 'tftransfer.predict', f'--model={model}', str(root)],
      capture_output=True, text=True, timeout=300)
  assert result.returncode == 1, result.stderr[-3000:]
  assert 'rendezvous' not in result.stderr and '[[{{node' not in result.stderr
  lines = [json.loads(line) for line in result.stdout.splitlines()]
  assert [line['path'] for line in lines] == prediction.image_files([str(root)])
  assert lines[3]['error'].startswith('Invalid PNG'), lines[3]
  classifier = litert_runtime.LiteRTClassifier(str(model))
  names = ['zigzag', 'spiral', 'diamonds', 'waves', 'hatch']
  for line in lines[:3]:
    with open(line['path'], 'rb') as f:
      view = image_ops.evaluation_view(
          image_ops.decode_image(f.read(), max_pixels=MAX_IMAGE_PIXELS), 32)
    expected = classifier.probabilities(image_ops.to_pixels(view).numpy()[np.newaxis])[0]
    assert len(line['top_k']) == 3  # the run's export.top_k
    assert line['class'] == names[int(expected.argmax())]
    np.testing.assert_allclose([entry['score'] for entry in line['top_k']],
                               np.sort(expected)[::-1][:3], atol=1e-6)
