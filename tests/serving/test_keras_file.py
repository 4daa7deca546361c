"""The portable .keras classifier: built-in layers only, the same answers as the run's model
up to float32 rounding, on a model whose logits are large; a wrong preprocessing is caught."""

import keras
import numpy as np
import pytest

from tftransfer.serving import keras_file


@pytest.fixture
def confident(trained):
  """`trained` with its head's kernel scaled 20x: logits of realistic magnitude (tens), where
  rounding differences in the preprocessing move probabilities the most."""
  model = keras.models.clone_model(trained.model)
  model.set_weights(trained.model.get_weights())
  kernel, bias = model.get_layer('head').get_layer('logits').weights
  kernel.assign(kernel.numpy() * 20)
  return type(trained)(**{**trained.__dict__, 'model': model})


def _probe(trained, count=16):
  return np.random.default_rng(1).uniform(0, 255, (count, trained.image_size,
                                                   trained.image_size, 3)).astype(np.float32)


def test_the_file_reloads_and_answers_as_the_run_within_rounding(confident, tmp_path):
  images = _probe(confident)
  logits = confident.model(images, training=False).numpy()
  assert np.ptp(logits) > 20  # the magnitudes real classifiers reach
  reloaded = keras_file.write(confident, str(tmp_path / 'model.keras'))
  assert {type(layer).__module__.split('.')[0] for layer in reloaded.layers} == {'keras'}
  expected = keras.ops.softmax(logits).numpy()
  assert np.abs(np.asarray(reloaded(images, training=False)) - expected).max() <= (
      keras_file.ARITHMETIC_TOLERANCE)


def test_a_wrong_preprocessing_is_caught(confident, monkeypatch):
  matrix, bias = keras_file.backbones.preprocess_affine('tf')
  monkeypatch.setattr(keras_file.backbones, 'preprocess_affine',
                      lambda *_: (matrix[:, ::-1], bias))  # RGB read as BGR
  classifier = keras_file.portable_classifier(confident)
  with pytest.raises(RuntimeError, match='probabilities differ by'):
    keras_file.check_agrees(classifier, confident, _probe(confident),
                            tolerance=keras_file.ARITHMETIC_TOLERANCE, what='swapped')
