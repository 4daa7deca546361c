"""keras-hub presets as backbones (model.backbone='keras_hub', model/hub.py), offline: a tiny
ResNet built from a config and saved with save_to_preset stands in for a downloaded preset."""

import json
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tftransfer import config as config_lib
from tftransfer import errors
from tftransfer import runtime
from tftransfer.model import backbones, hub, transfer
from tests.helpers import REPO, encode_image, random_image, tiny_config

keras_hub = pytest.importorskip(
    'keras_hub', reason="keras-hub is not installed (pip install 'tftransfer[keras_hub]')")

# A converter with per-channel ImageNet-like normalisation, so that a channel mix-up shows.
SCALE = (1 / 58.4, 1 / 57.1, 1 / 57.4)
OFFSET = (-2.12, -2.04, -1.80)


def write_preset(path, *, seed=3, image_size=32):
  """A tiny ResNet preset (backbone, its 'pretrained' weights and an image converter) as
  save_to_preset writes it, with BatchNorm statistics nobody could mistake for their initial
  values. Returns the backbone."""
  with runtime.seeded(seed):  # the same weights whatever ran before, no global seed left set
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 16],
        stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type='basic_block',
        use_pre_activation=False, image_shape=(None, None, 3))
  rng = np.random.default_rng(seed)
  for variable in backbone.weights:
    if 'moving_variance' in variable.path:
      variable.assign(rng.uniform(0.5, 2.0, variable.shape))
    elif 'moving_mean' in variable.path:
      variable.assign(rng.normal(0, 0.5, variable.shape))
  backbone.save_to_preset(str(path))
  keras_hub.layers.ImageConverter(image_size=(image_size, image_size), scale=list(SCALE),
                                  offset=list(OFFSET)).save_to_preset(str(path))
  return backbone


@pytest.fixture(scope='module')
def preset(tmp_path_factory):
  path = tmp_path_factory.mktemp('hub') / 'tiny_resnet'
  write_preset(path)
  return path


def _moving_statistics(model):
  return {v.path: v.numpy() for v in model.weights if 'moving_' in v.path}


def test_the_preset_sets_size_and_preprocessing_and_its_weights_load(preset):
  spec = backbones.get_spec('keras_hub', str(preset))
  assert (spec.preprocessing, spec.default_size) == ('affine', 32)
  built = transfer.build_model(backbone='keras_hub', preset=str(preset), num_classes=3,
                               image_size=32, weights='imagenet')
  images = random_image(32, 32, seed=1)[None].astype(np.float32)
  # The model's preprocess layer computes what the preset's own converter does.
  converter = keras_hub.layers.ImageConverter.from_preset(str(preset))
  np.testing.assert_allclose(built.model.get_layer('preprocess')(images),
                             converter(images), atol=1e-5)
  # 'imagenet' is the preset's own weights; 'none' leaves them random.
  saved = keras_hub.models.Backbone.from_preset(str(preset))
  for variable, expected in zip(built.backbone.weights, saved.weights):
    np.testing.assert_array_equal(variable.numpy(), expected.numpy())
  scratch = transfer.build_model(backbone='keras_hub', preset=str(preset), num_classes=3,
                                 image_size=32, weights='none')
  assert not np.allclose(_moving_statistics(scratch.backbone)[next(iter(
      _moving_statistics(saved)))], next(iter(_moving_statistics(saved).values())))


def test_the_portable_keras_file_applies_the_converter_as_a_matrix():
  images = random_image(4, 5, seed=2).astype(np.float32)
  matrix, bias = backbones.preprocess_affine('affine', SCALE, OFFSET)
  layer = backbones.BackbonePreprocess('affine', scale=SCALE, offset=OFFSET)
  np.testing.assert_allclose(images @ matrix + bias, layer(images), atol=1e-5)
  # The layer reloads from its config (a run's model is saved and exported with it).
  again = backbones.BackbonePreprocess.from_config(layer.get_config())
  np.testing.assert_array_equal(again(images), layer(images))


def test_fine_tuning_keeps_the_presets_batchnorm_statistics(preset):
  built = transfer.build_model(backbone='keras_hub', preset=str(preset), num_classes=3,
                               image_size=32, weights='imagenet')
  transfer.set_trainable(built, train_backbone=True, freeze_batchnorm=True)
  before = _moving_statistics(built.backbone)
  kernels = [v.numpy() for v in built.backbone.trainable_weights]
  assert kernels and not any('gamma' in v.path for v in built.backbone.trainable_weights)
  built.model.compile(optimizer=keras.optimizers.SGD(0.5),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  images = np.stack([random_image(32, 32, seed=seed) for seed in range(8)]).astype(np.float32)
  with runtime.seeded(0):  # dropout's random ops need a seed under op determinism
    built.model.fit(images, np.arange(8) % 3, batch_size=4, epochs=1, verbose=0)
  for path, value in _moving_statistics(built.backbone).items():
    np.testing.assert_array_equal(value, before[path])
  assert any(not np.array_equal(a, v.numpy())
             for a, v in zip(kernels, built.backbone.trainable_weights))


def test_a_handle_offline_fails_fast_with_the_remedy(monkeypatch):
  def offline(preset, path):
    raise ConnectionError('Failed to resolve www.kaggle.com')
  monkeypatch.setattr(hub._preset_utils(), 'get_file', offline)
  hub.preset_facts.cache_clear()
  handle = 'kaggle://keras/efficientnet/keras/efficientnet_b0_ra_imagenet'
  with pytest.raises(hub.PresetUnavailableError,
                     match=r"(?s)Could not fetch.*efficientnet_b0_ra_imagenet.*Failed to "
                           r"resolve.*save_to_preset\('DIR'\).*--config.model.preset=DIR"):
    backbones.get_spec('keras_hub', handle)


def test_preset_mistakes_are_named(tmp_path):
  with pytest.raises(errors.NotFoundError, match='not a keras-hub preset directory'):
    backbones.get_spec('keras_hub', str(tmp_path))
  with pytest.raises(errors.InvalidValueError, match="needs config.model.preset"):
    config_lib.from_fields(backbone='keras_hub')
  with pytest.raises(errors.InvalidValueError, match="for config.model.backbone='keras_hub'"):
    config_lib.from_fields(preset=str(tmp_path))


def test_without_keras_hub_the_error_names_the_pip_command(preset):
  code = ('import sys; sys.modules["keras_hub"] = None\n'
          'import tftransfer\n'  # the package and its other backbones work without it
          'from tftransfer.model import backbones, transfer\n'
          'transfer.build_model(backbone="mobilenet", width=0.25, num_classes=2, '
          'image_size=32, weights="none")\n'
          'try:\n'
          f'  backbones.get_spec("keras_hub", {str(preset)!r})\n'
          'except Exception as e:\n'
          '  print(type(e).__name__, e)\n')
  result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          cwd=REPO, check=True)
  assert 'PresetUnavailableError' in result.stdout and 'pip install keras-hub' in result.stdout


@pytest.mark.slow
def test_a_preset_trains_exports_to_every_format_and_explains(preset, tmp_path):
  from tftransfer import restore
  from tftransfer.auditing import run as audit_run
  from tftransfer.evaluation import explain, gradcam
  from tftransfer.serving import export
  from tftransfer.training import loop
  config = tiny_config(model__backbone='keras_hub', model__preset=str(preset),
                       model__width=1.0, model__weights='imagenet', train__unfreeze='all')
  workdir = tmp_path / 'run'
  loop.train_and_evaluate(config, str(workdir))
  # The fine-tuned weights (the last checkpoint), whichever epoch the run selected.
  trained = restore.restore(str(workdir), checkpoint='last')
  assert trained.config.model.preset == str(preset)
  assert trained.final_metrics['preset'] == str(preset)
  # Fine-tuning changed the convolutions but kept the pretrained BatchNorm statistics
  # (frozen BatchNorm runs in inference mode).
  backbone = transfer.classifier_parts(trained.model)[1]
  original = keras_hub.models.Backbone.from_preset(str(preset))
  statistics = _moving_statistics(original)
  assert len(statistics) == len(_moving_statistics(backbone)) > 0
  for path, value in _moving_statistics(backbone).items():
    np.testing.assert_array_equal(value, statistics[path])
  kernels = [(v.numpy(), o.numpy()) for v, o in zip(backbone.weights, original.weights)
             if 'kernel' in v.path]
  assert any(not np.array_equal(a, b) for a, b in kernels)

  version = pathlib.Path(export.export(
      str(workdir), str(tmp_path / 'models'), formats=('saved_model', 'keras', 'tflite'),
      checkpoint='last', max_accuracy_drop=100.0, latency_runs=2))
  images = np.stack([random_image(32, 32, seed=seed) for seed in range(4)])
  expected = tf.nn.softmax(trained.model(images.astype(np.float32), training=False)).numpy()
  served = tf.saved_model.load(str(version))
  outputs = served.signatures['predict_images'](images=tf.constant(images))
  np.testing.assert_allclose(outputs['probabilities'].numpy(), expected, atol=1e-4)
  reloaded = keras.models.load_model(str(version / 'model.keras'), safe_mode=True,
                                     compile=False)
  np.testing.assert_allclose(reloaded(images.astype(np.float32)), expected, atol=1e-4)
  metadata = json.loads((version / 'assets.extra' / 'tftransfer.json').read_text())
  assert (metadata['backbone'], metadata['preset']) == ('keras_hub', str(preset))
  report = json.loads((version / 'export_report.json').read_text())
  artifacts = {artifact['name']: artifact for artifact in report['artifacts']}
  assert set(artifacts) == {'saved_model', 'keras', 'tflite'}
  assert artifacts['tflite']['max_probability_difference'] < 1e-4

  # Grad-CAM reads the backbone's last feature map (4 x 4 for 32 px at stride 8).
  heatmaps, logits = gradcam.GradCam(trained.model)(images.astype(np.float32))
  assert heatmaps.shape == (4, 4, 4) and heatmaps.max() > 0
  np.testing.assert_allclose(tf.nn.softmax(logits), expected, atol=1e-5)
  path = tmp_path / 'photo.png'
  path.write_bytes(encode_image(random_image(40, 48, seed=9)))
  [result] = explain.explain_files(trained, [str(path)], str(tmp_path / 'explained'), top_k=2)
  assert tf.io.decode_png(tf.io.read_file(result['gradcam'])).shape == (32, 32, 3)

  # The audit embeds the data with the run's fine-tuned keras-hub backbone.
  audit_run.audit_workdir(str(workdir))
  assert (workdir / 'audit.json').exists()
