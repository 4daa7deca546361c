"""The backbone registry: coverage, input-size checks, weights handling, preprocessing."""

import time
import urllib.error

import keras
import numpy as np
import pytest

from tftransfer import backbones, preprocessing

# The application module whose preprocess_input defines each family's convention.
FAMILY_MODULES = {
    'vgg16': 'vgg16', 'resnet50': 'resnet50', 'resnet50_v2': 'resnet_v2',
    'inception_v3': 'inception_v3', 'inception_resnet_v2': 'inception_resnet_v2',
    'xception': 'xception', 'mobilenet': 'mobilenet', 'mobilenet_v2': 'mobilenet_v2',
    'mobilenet_v3_small': 'mobilenet_v3', 'densenet121': 'densenet',
    'efficientnet_b0': 'efficientnet', 'efficientnetv2_b0': 'efficientnet_v2',
    'convnext_tiny': 'convnext',
}


def test_registry_covers_the_families():
  for name in ('resnet50', 'resnet101_v2', 'vgg19', 'inception_v3', 'inception_resnet_v2',
               'xception', 'mobilenet', 'mobilenet_v2', 'mobilenet_v3_large',
               'efficientnet_b7', 'efficientnetv2_s', 'convnext_base', 'densenet201'):
    assert name in backbones.REGISTRY


@pytest.mark.parametrize('name', sorted(FAMILY_MODULES))
def test_preprocessing_matches_the_applications_own(name):
  images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype('float32')
  module = getattr(keras.applications, FAMILY_MODULES[name])
  expected = module.preprocess_input(images.copy())
  layer = preprocessing.BackbonePreprocess(backbones.get_spec(name).preprocessing)
  np.testing.assert_allclose(layer(images), expected, rtol=1e-5, atol=1e-4)


def test_preprocessing_accepts_uint8():
  layer = preprocessing.BackbonePreprocess('tf')
  out = layer(np.full((1, 2, 2, 3), 255, np.uint8))
  np.testing.assert_allclose(out, 1.0)


def test_unknown_backbone_names_the_choices():
  with pytest.raises(ValueError, match=r"backbone='resnet5'.*resnet50"):
    backbones.get_spec('resnet5')


def test_image_too_small_is_rejected_with_the_minimum():
  with pytest.raises(ValueError, match=r'image_size=64 is too small.*at least 75'):
    backbones.resolve_image_size('inception_v3', 64)
  assert backbones.resolve_image_size('inception_v3', 0) == 299


def test_missing_weights_file_is_named(tmp_path):
  missing = tmp_path / 'nope.h5'
  with pytest.raises(FileNotFoundError, match=r"nope\.h5.*'imagenet'.*'none'"):
    backbones.build_backbone('mobilenet', image_size=32, width=0.25, weights=str(missing))


def test_width_only_for_mobilenets():
  with pytest.raises(ValueError, match='only applies to MobileNets'):
    backbones.build_backbone('resnet50', image_size=32, width=0.5, weights='none')


def test_weights_file_is_loaded(fake_weights):
  path, values = fake_weights
  model = backbones.build_backbone('mobilenet', image_size=32, width=0.25, weights=str(path))
  for variable, expected in zip(model.weights, values):
    np.testing.assert_array_equal(variable.numpy(), expected)


def test_weights_for_another_backbone_fail_clearly(fake_weights):
  path, _ = fake_weights
  with pytest.raises(ValueError, match='does not fit backbone'):
    backbones.build_backbone('mobilenet', image_size=32, width=0.5, weights=str(path))


def test_offline_imagenet_download_fails_fast_with_remedies(tmp_path, monkeypatch):
  # Simulate no network (and an empty Keras cache) whatever machine runs the test.
  from keras.src.backend import config as keras_config
  from keras.src.utils import file_utils

  def no_network(*args, **kwargs):
    raise urllib.error.URLError('[Errno -2] Name or service not known')

  monkeypatch.setattr(keras_config, '_KERAS_DIR', str(tmp_path))
  monkeypatch.setattr(file_utils, 'urlretrieve', no_network)
  start = time.time()
  with pytest.raises(backbones.WeightsUnavailableError) as error:
    backbones.build_backbone('mobilenet', image_size=96, width=0.25, weights='imagenet')
  message = str(error.value)
  assert time.time() - start < 30
  assert 'mobilenet_2_5_224_tf_no_top.h5' in message
  assert 'https://storage.googleapis.com/' in message
  assert '--config.model.weights=/path/to/mobilenet_2_5_224_tf_no_top.h5' in message
  assert '--config.model.weights=none' in message
