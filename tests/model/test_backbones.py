"""The backbone registry: coverage, preprocessing and sizes as the applications define them,
input-size checks, weights handling."""

import time
import urllib.error

import keras
import numpy as np
import pytest

from tftransfer.model import backbones

# Every family keras.applications offers for classification transfer (NASNet, whose input
# size is fixed by its weights, is deliberately left out).
FAMILIES = ('VGG', 'ResNet', 'Inception', 'Xception', 'MobileNet', 'DenseNet', 'EfficientNet',
            'ConvNeXt')


def _application_module(name):
  """The public keras.applications module of a registry entry's constructor."""
  return getattr(keras.applications,
                 backbones.get_spec(name).constructor.__module__.rsplit('.', 1)[-1])


def test_registry_covers_the_families():
  constructors = {spec.constructor.__name__ for spec in backbones.REGISTRY.values()}
  for family in FAMILIES:
    assert any(name.startswith(family) for name in constructors), family


@pytest.mark.parametrize('name', sorted(backbones.REGISTRY))
def test_preprocessing_matches_the_applications_own(name):
  images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype('float32')
  expected = _application_module(name).preprocess_input(images.copy())
  layer = backbones.BackbonePreprocess(backbones.get_spec(name).preprocessing)
  np.testing.assert_allclose(layer(images), expected, rtol=1e-5, atol=1e-4)



@pytest.mark.parametrize('mode', ['tf', 'torch', 'caffe', 'none'])
def test_preprocess_affine_is_the_layer_as_a_matrix(mode):
  """The portable .keras export applies preprocessing as pixels @ matrix + bias."""
  images = np.random.default_rng(1).uniform(0, 255, (2, 8, 8, 3)).astype('float32')
  expected = np.asarray(backbones.BackbonePreprocess(mode)(images))
  affine = backbones.preprocess_affine(mode)
  if mode == 'none':
    assert affine is None and np.array_equal(expected, images)
    return
  matrix, bias = affine
  np.testing.assert_allclose(images @ matrix + bias, expected, rtol=1e-6, atol=1e-5)

class _Probed(Exception):
  pass


@pytest.mark.parametrize('name', sorted(backbones.REGISTRY))
def test_sizes_are_the_applications_own(name, monkeypatch):
  """The registry's native and minimum sizes are what the application itself declares to
  keras' input-shape check (intercepted, so no network is built)."""
  from keras.src.applications import imagenet_utils
  declared = {}

  def probe(input_shape, *, default_size, min_size, **kwargs):
    declared.update(default_size=default_size, min_size=min_size)
    raise _Probed

  monkeypatch.setattr(imagenet_utils, 'obtain_input_shape', probe)
  spec = backbones.get_spec(name)
  try:
    spec.constructor(include_top=True, weights=None)
  except _Probed:
    pass
  if not declared:  # MobileNetV3 declares no size: its ImageNet weights are all 224 px.
    assert spec.constructor.__name__.startswith('MobileNetV3')
    declared = {'default_size': 224, 'min_size': 32}
  assert (spec.default_size, spec.min_size) == (declared['default_size'],
                                                declared['min_size'])


def test_preprocessing_accepts_uint8():
  layer = backbones.BackbonePreprocess('tf')
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
  # The message names the width the file fits, read from its arrays' shapes.
  with pytest.raises(ValueError, match=r"does not fit backbone 'mobilenet' \(width=0\.5\) "
                     r'without its top \(the file fits width=0\.25: pass '
                     r'--config\.model\.width=0\.25\)'):
    backbones.build_backbone('mobilenet', image_size=32, width=0.5, weights=str(path))
  with pytest.raises(ValueError, match=r"does not fit backbone 'mobilenet_v2' \(width=1\.0\) "
                     r'without its top: '):  # no width of another backbone fits
    backbones.build_backbone('mobilenet_v2', image_size=32, width=1.0, weights=str(path))


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
