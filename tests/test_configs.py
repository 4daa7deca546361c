"""Every config in configs/ loads, validates, builds its model, and parses overrides."""

import os
import sys

from absl import flags
import keras
import ml_collections
from ml_collections import config_flags
import pytest

from tftransfer import config as config_lib, restore
from tftransfer.model import backbones
from tftransfer.training import resolve, rules
from tests.helpers import REPO, load_config

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
  if size == config_lib.AUTO:  # decided once data is loaded; photos keep the native size
    size = rules.image_size(resolved.model.backbone, shorter_side=500)[0]
  size = backbones.resolve_image_size(resolved.model.backbone, size)
  model = restore.build_model(resolved, image_size=size, num_classes=10, weights='none')
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


def test_every_field_is_declared_once_documented_and_unique_by_name():
  docs = config_lib.field_docs()
  assert set(docs) == set(_leaves(config_lib.default_config()))
  assert all(len(doc) > 10 for doc in docs.values())
  names = [path.rpartition('.')[2] for path in docs]
  assert len(names) == len(set(names))  # the notebook API takes them as keywords
  described = config_lib.describe_fields()
  assert "--config.train.unfreeze='all'" in described
  assert "Values: 'all' or a positive number of top backbone layers" in described


def test_defaults_come_locked_and_auto_is_one_value():
  config = config_lib.default_config()
  assert config.is_locked
  with pytest.raises(AttributeError):
    config.train.learning_rate = 0.5  # a typo must not become a field nothing reads
  config.model.image_size = 96  # 'auto' fields take numbers ...
  config.train.freeze_batchnorm = False  # ... and switches booleans
  config_lib.validate(config)
  config.train.freeze_batchnorm = 'false'
  with pytest.raises(ValueError, match=r"freeze_batchnorm='false' is not valid; use 'auto', "
                                       'True or False'):
    config_lib.validate(config)


def test_fields_by_name_suggest_what_a_guess_meant():
  config = config_lib.from_fields(image_size=96, head_epochs=2, **{'train.batch_size': 16})
  assert (config.model.image_size, config.train.head_epochs, config.train.batch_size) == (
      96, 2, 16)
  assert config_lib.suggest('batchsize') == ['train.batch_size']
  assert config_lib.suggest('epochs') == ['train.head_epochs', 'train.finetune_epochs']
  assert config_lib.suggest('learning_rate') == ['train.head_lr', 'train.finetune_lr']
  with pytest.raises(ValueError, match="epochs=5: no such config field; did you mean "
                                       "'head_epochs', 'finetune_epochs'"):
    config_lib.from_fields(epochs=5)
  with pytest.raises(ValueError, match=r'dropout=1.5 is not valid; use a number in \[0, 1\)'):
    config_lib.from_fields(dropout=1.5)
  # A value of the wrong type, as a notebook passes one typed from a widget: named, no
  # ml_collections TypeError.
  with pytest.raises(ValueError, match=r"batch_size='32' is a str; config.train.batch_size "
                                       'takes an integer'):
    config_lib.from_fields(batch_size='32')


def test_a_config_file_loads_by_its_path_as_the_flag_reads_it(tmp_path):
  quickstart = config_lib.load_file(os.path.join(REPO, 'configs', 'quickstart.py') + ':source')
  assert quickstart.data.name == 'textures_source'
  with pytest.raises(FileNotFoundError, match=r"config='nope.py': no config file .*nope.py"):
    config_lib.load_file('nope.py')
  empty = tmp_path / 'empty.py'
  empty.write_text('X = 1\n')
  with pytest.raises(ValueError, match='defines no get_config'):
    config_lib.load_file(str(empty))


def test_one_image_size_limit_for_scan_training_and_serving():
  # Issue 11 kind 6: one field, admitting 48-50 MP phone photos (8064 x 6048 to 8192 x 6144)
  # and 108 MP ones (12000 x 9000).
  config = config_lib.default_config()
  assert 'max_image_pixels' not in config.export
  assert config.data.max_image_pixels >= 12000 * 9000
  assert '8064 x 6048' in config_lib.field_docs()['data.max_image_pixels']  # sized for
