"""Every config in configs/ loads, validates, builds its model, and parses overrides."""

import subprocess
import sys

from absl import flags
import keras
import ml_collections
from ml_collections import config_flags
import pytest

from tftransfer import config as config_lib
from tftransfer.model import backbones, transfer
from tftransfer.training import resolve, schedule
from helpers import REPO, load_config

CONFIGS = sorted((REPO / 'configs').glob('*.py'))
# Configs taking an argument, and the arguments they accept.
ARGUMENTS = {'quickstart': ['source', 'transfer', 'scratch'],
             'cifar10': ['resnet50', 'vgg16', 'inception_v3']}


def _cases():
  for path in CONFIGS:
    for arg in ARGUMENTS.get(path.stem, [None]):
      yield pytest.param(path, arg, id=f'{path.stem}:{arg}' if arg else path.stem)


def test_configs_exist():
  names = {path.stem for path in CONFIGS}
  assert {'quickstart', 'folder', 'cifar10', 'mobilenet_cpu', 'classic'} <= names


@pytest.mark.parametrize('path,arg', list(_cases()))
def test_config_loads_validates_and_builds(path, arg, tmp_path):
  config = load_config(path, arg)
  assert config.is_locked
  with config.unlocked():
    # Offline: no ImageNet download, and a folder that exists for folder configs.
    config.model.weights = 'none'
    if config.data.source == 'folder':
      config.data.path = str(tmp_path)
  config_lib.validate(config)
  resolved = resolve.resolve(config).config
  size = resolved.model.image_size
  if config_lib.is_auto(size):  # decided once data is loaded; photos keep the native size
    size = schedule.rule_image_size(resolved.model.backbone, shorter_side=500)[0]
  model = transfer.build_model(backbone=resolved.model.backbone, num_classes=10,
                             image_size=size, width=resolved.model.width,
                             weights='none', dropout=resolved.model.dropout)
  assert model.model.input_shape == (None, size, size, 3)
  assert model.model.output_shape == (None, 10)
  assert size >= backbones.get_spec(resolved.model.backbone).min_size
  keras.backend.clear_session()


def _parse(argv, monkeypatch):
  # config_flags reads the overrides from sys.argv, as a real command line would give them.
  monkeypatch.setattr(sys, 'argv', ['prog'] + argv)
  values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', flag_values=values)
  values(sys.argv)
  return values.config


def test_command_line_overrides_reach_the_config(monkeypatch):
  config = _parse([f'--config={REPO / "configs" / "cifar10.py"}:resnet50',
                   '--config.train.unfreeze=20', '--config.train.jit_compile=false',
                   '--config.model.image_size=160'], monkeypatch)
  assert config.train.unfreeze == '20' and config.model.image_size == 160
  config_lib.validate(config)


def test_misspelt_override_fails_at_start_up(monkeypatch):
  with pytest.raises(AttributeError, match='Did you mean "batch_size" instead of "batchsize"'):
    _parse([f'--config={REPO / "configs" / "folder.py"}', '--config.train.batchsize=8'],
           monkeypatch)


@pytest.mark.parametrize('path,arg', list(_cases()))
def test_configs_are_locked_against_new_fields(path, arg):
  config = load_config(path, arg)
  assert config.is_locked
  with pytest.raises(AttributeError, match='cannot be added since the config is locked'):
    config.train.batchsize = 8  # a typo in Python code must not add a field that nothing reads


def test_validate_names_bad_values():
  config = config_lib.default_config()
  config.train.mixed_precision = 'fp16'
  with pytest.raises(ValueError, match=r"mixed_precision='fp16'.*'bfloat16'"):
    config_lib.validate(config)
  config = config_lib.default_config()
  config.data.source = 'folder'
  with pytest.raises(ValueError, match='needs config.data.path'):
    config_lib.validate(config)


def _leaves(config, prefix=''):
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      yield from _leaves(value, f'{prefix}{key}.')
    else:
      yield prefix + key


def test_every_field_is_documented_and_helpfull_shows_it():
  docs = config_lib.field_docs()
  assert set(docs) == set(_leaves(config_lib.default_config()))
  assert all(len(doc) > 10 for doc in docs.values())
  helpfull = subprocess.run([sys.executable, '-m', 'tftransfer.train', '--helpfull'],
                            capture_output=True, text=True, timeout=120).stdout
  assert '--config.train.unfreeze=' in helpfull
  assert docs['train.unfreeze'][:40] in ' '.join(helpfull.split())


def test_one_image_size_limit_for_scan_training_and_serving():
  # Issue 11 kind 6: one field, admitting 48-50 MP phone photos (8064 x 6048 to 8192 x 6144)
  # and 108 MP ones (12000 x 9000).
  config = config_lib.default_config()
  assert 'max_image_pixels' not in config.export
  assert config.data.max_image_pixels >= 12000 * 9000
  assert '8064 x 6048' in config_lib.field_docs()['data.max_image_pixels']  # sized for
