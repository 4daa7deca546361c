"""LiteRT export: each format reloaded in a fresh process agrees with the Keras model on the
same pixels; int8 is integer-only and takes raw pixels; calibration draws stratified training
images; the interpreter wrapper refuses what it cannot run."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tftransfer.data import pipeline
from tftransfer.serving import litert, litert_runtime
from tftransfer import restore

# Largest difference of any probability from the Keras model's (softmax of its logits) on the
# validation pixels: float32 formats differ only in the order of float operations; float16
# rounds every weight to 11 significant bits, which moves the tiny near-chance model's
# probabilities by up to about 0.05 (measured 0.043).
TOLERANCE = {'saved_model': 1e-4, 'keras': 1e-4, 'model.tflite': 1e-4,
             'model_float16.tflite': 0.1}
# Quantized weights (dynamic) and activations (int8) move it further: their top-1 classes are
# compared instead, on the tiny model; tests/e2e/test_real_data.py checks int8 agreement on a
# real model.
MIN_TOP1_AGREEMENT = {'model_float16.tflite': 0.9, 'model_dynamic.tflite': 0.7,
                      'model_int8.tflite': 0.5}

_FRESH_PROCESS = r'''
import json, os, sys
import numpy as np
import keras
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
version, pixels = sys.argv[1], np.load(sys.argv[2])
results = {}
predict = tf.saved_model.load(version).signatures['predict_images']
results['saved_model'] = predict(images=tf.constant(pixels))['probabilities'].numpy()
model = keras.models.load_model(os.path.join(version, 'model.keras'), safe_mode=True)
results['keras'] = np.asarray(model(pixels.astype('float32'), training=False))
for name in sorted(os.listdir(version)):
  if name.endswith('.tflite'):
    runner = Interpreter(model_path=os.path.join(version, name)).get_signature_runner(
        'serving_default')
    output = runner.get_output_details()['probabilities']
    scale, zero_point = output['quantization']
    rows = []
    for image in pixels:
      row = runner(images=image[None])['probabilities'][0]
      rows.append((row.astype('float32') - zero_point) * scale if scale else row)
    results[name] = np.stack(rows)
assert 'tftransfer' not in sys.modules, 'the exports must not need tftransfer'
print(json.dumps({name: value.tolist() for name, value in results.items()}))
'''


@pytest.fixture(scope='module')
def validation_pixels(trained, tiny_run):
  data = restore.run_data(str(tiny_run), trained.config)
  images, labels = zip(*pipeline.pixel_batches(
      data.val, image_size=trained.image_size, batch_size=32).as_numpy_iterator())
  return np.concatenate(images), np.concatenate(labels)


@pytest.mark.slow
def test_every_format_reloads_in_a_fresh_process_and_agrees_with_keras(
    tiny_edge_export, trained, validation_pixels, tmp_path):
  pixels, _ = validation_pixels
  np.save(tmp_path / 'pixels.npy', pixels)
  result = subprocess.run(
      [sys.executable, '-c', _FRESH_PROCESS, str(tiny_edge_export), str(tmp_path / 'pixels.npy')],
      capture_output=True, text=True, cwd=tmp_path, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  outputs = {name: np.asarray(value)
             for name, value in json.loads(result.stdout.splitlines()[-1]).items()}
  assert sorted(outputs) == ['keras', 'model.tflite', 'model_dynamic.tflite',
                             'model_float16.tflite', 'model_int8.tflite', 'saved_model']
  expected = np.asarray(trained.model(pixels.astype(np.float32), training=False))
  expected = np.exp(expected - expected.max(-1, keepdims=True))
  expected /= expected.sum(-1, keepdims=True)
  for name, probabilities in outputs.items():
    assert probabilities.shape == expected.shape, name
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=0.05, err_msg=name)
    if name in TOLERANCE:
      np.testing.assert_allclose(probabilities, expected, atol=TOLERANCE[name], err_msg=name)
    if name in MIN_TOP1_AGREEMENT:
      agreement = np.mean(probabilities.argmax(-1) == expected.argmax(-1))
      assert agreement >= MIN_TOP1_AGREEMENT[name], (name, agreement)


def test_int8_is_integer_only_and_takes_raw_pixels(tiny_edge_export):
  summary = litert.check_integer_only((tiny_edge_export / 'model_int8.tflite').read_bytes())
  assert set(summary['tensor_dtypes']) <= {'int8', 'uint8', 'int32'}, summary
  assert not summary['float_tensors']
  assert summary['input'] == {'dtype': 'uint8', 'shape': [1, 32, 32, 3], 'scale': 1.0,
                              'zero_point': 0}
  assert summary['output']['dtype'] == 'uint8' and summary['output']['shape'] == [1, 5]
  assert {'CONV_2D', 'DEPTHWISE_CONV_2D', 'FULLY_CONNECTED', 'SOFTMAX'} <= set(summary['ops'])
  # A float model, or an int8 one the converter left partly float (tensorflow#57619), fails.
  with pytest.raises(RuntimeError, match=r'kept \d+ float tensors.*57619'):
    litert.check_integer_only((tiny_edge_export / 'model_dynamic.tflite').read_bytes())


def test_an_int8_model_casting_uint8_inside_keeps_a_float_tensor_and_is_refused(
    trained, monkeypatch):
  """The #57619 shape: a uint8 input cast to float inside the graph stays float after full
  int8 conversion; convert() must refuse it, not write it."""
  original = litert._saved_model_for_conversion

  def uint8_input(model, path, *, image_size, input_dtype, **options):
    original(model, path, image_size=image_size, input_dtype=tf.uint8, **options)

  monkeypatch.setattr(litert, '_saved_model_for_conversion', uint8_input)
  calibration = [np.full((1, 32, 32, 3), 128, np.uint8)] * 4
  with pytest.raises(RuntimeError, match='float tensors'):
    litert.convert(trained, 'int8', calibration)


def test_the_input_range_is_pinned_to_pixels_whatever_the_calibration_images(trained):
  """Calibration images without black or white pixels still give scale 1, zero point 0."""
  grey = [np.random.default_rng(seed).uniform(60, 190, (1, 32, 32, 3)).astype(np.float32)
          for seed in range(8)]
  summary = litert.graph_summary(litert.convert(trained, 'int8', grey))
  assert (summary['input']['scale'], summary['input']['zero_point']) == (1.0, 0)


def test_calibration_draws_stratified_training_images(trained, tiny_run):
  data = restore.run_data(str(tiny_run), trained.config)
  images, per_class = litert.calibration_images(data.train, image_size=32, num_images=10)
  assert per_class == [2, 2, 2, 2, 2] and len(images) == 10  # 8 training images per class
  training = {image.tobytes() for image, _ in pipeline.eval_batches(
      data.train, image_size=32, batch_size=1, cache=False).as_numpy_iterator()}
  assert all(image.shape == (1, 32, 32, 3) and image.tobytes() in training for image in images)
  everything, counts = litert.calibration_images(data.train, image_size=32, num_images=1000)
  assert counts == [8] * 5 and len(everything) == 40  # capped at the split


def test_the_runtime_dequantizes_int8_scores_and_refuses_wrong_pixels(tiny_edge_export):
  classifier = litert_runtime.LiteRTClassifier(str(tiny_edge_export / 'model_int8.tflite'))
  scores = classifier.probabilities(np.zeros((2, 32, 32, 3), np.uint8))
  assert scores.dtype == np.float32 and scores.shape == (2, 5)
  np.testing.assert_allclose(scores.sum(-1), 1.0, atol=0.03)
  with pytest.raises(ValueError, match=r'uint8 pixels of shape \(32, 32, 3\)'):
    classifier.probabilities(np.zeros((1, 32, 32, 3), np.float32))
  assert litert_runtime.labels_beside(str(tiny_edge_export / 'model.tflite'))[0] == 'zigzag'


@pytest.mark.parametrize('quantize, message', [
    (['int4'], 'int4.*none, float16, dynamic, int8'), (['int8', 'int8'], 'each once'), ([], 'one or more')])
def test_bad_quantize_values_are_named(quantize, message):
  with pytest.raises(ValueError, match=message):
    litert.check_quantizations(quantize)
