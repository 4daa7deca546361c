"""The 'auto' schedule: each rule picks what schedule.py's table says, explicit values win, and
a resumed run keeps what its first session decided."""

import pytest

from tftransfer import config as config_lib
from tftransfer.data import sources
from tftransfer.training import planning, schedule
from helpers import tiny_config, write_image_folder


def _auto(**overrides):
  config = config_lib.mutable_copy(tiny_config(**overrides))
  config.model.image_size = 'auto'
  config.train.head_epochs = 'auto'
  config.train.finetune_epochs = 'auto'
  config.data.mixup_alpha = 'auto'
  return config


@pytest.mark.parametrize('num_train,bucket,finetune,mixup', [
    (500, 'small', schedule.FINETUNE_EPOCHS['small'], 0.0),
    (schedule.SMALL, 'medium', schedule.FINETUNE_EPOCHS['medium'], 0.0),
    (schedule.LARGE - 1, 'medium', schedule.FINETUNE_EPOCHS['medium'], 0.0),
    (schedule.LARGE, 'large', schedule.FINETUNE_EPOCHS['large'], schedule.MIXUP_ALPHA),
])
def test_rules_by_training_set_size(num_train, bucket, finetune, mixup):
  assert schedule.size_bucket(num_train) == bucket
  assert schedule.rule_finetune_epochs(num_train)[0] == finetune
  assert schedule.rule_mixup(num_train)[0] == mixup


def test_head_epochs_give_enough_steps_within_bounds():
  assert schedule.rule_head_epochs(100_000, 64)[0] == schedule.MIN_HEAD_EPOCHS
  spe = 200 // 8
  assert schedule.rule_head_epochs(200, 8)[0] == -(-schedule.HEAD_STEPS // spe)
  assert schedule.rule_head_epochs(10, 8)[0] == schedule.MAX_HEAD_EPOCHS


def test_small_images_are_upsampled_and_large_ones_kept_native():
  assert schedule.rule_image_size('mobilenet', 32)[0] == schedule.RESOLUTION_FOR_SMALL_IMAGES
  assert schedule.rule_image_size('mobilenet', 500)[0] == 224
  assert schedule.rule_image_size('inception_v3', 300)[0] == 299


def test_auto_fields_resolve_by_rule_and_explicit_values_win(tmp_path):
  data = sources.load(tiny_config().data, seed=0)  # 40 training images of 32 px
  resolved = schedule.by_rules(_auto(), data, previous=None)
  assert (resolved.image_size, resolved.finetune_epochs, resolved.mixup_alpha) == (
      128, schedule.FINETUNE_EPOCHS['small'], 0.0)
  assert resolved.head_epochs == schedule.rule_head_epochs(40, 8)[0]
  assert set(resolved.decisions) == set(schedule.FIELDS)
  config = _auto()
  config.train.finetune_epochs = 3
  config.model.image_size = 64
  explicit = schedule.by_rules(config, data, previous=None)
  assert (explicit.finetune_epochs, explicit.image_size) == (3, 64)
  assert 'train.finetune_epochs' not in explicit.decisions


def test_a_resumed_run_keeps_its_first_decisions(tmp_path):
  data = sources.load(tiny_config().data, seed=0)
  previous = {'train.finetune_epochs': [7, 'what the first session decided'],
              'model.image_size': [96, 'ditto']}
  resolved = schedule.by_rules(_auto(), data, previous=previous)
  assert (resolved.finetune_epochs, resolved.image_size) == (7, 96)
  assert 'as planned when the run started' in resolved.decisions['train.finetune_epochs'][1]


def test_class_weights_are_balanced_and_auto_follows_the_imbalance_ratio():
  weights, weighting, _ = planning.class_weights([90, 10], 'balanced', imbalance_ratio=10)
  assert weighting == 'balanced'
  assert weights.tolist() == pytest.approx([100 / (2 * 90), 100 / (2 * 10)])
  assert planning.class_weights([90, 10], 'auto', imbalance_ratio=10)[1] == 'none'  # 9x
  assert planning.class_weights([200, 10], 'auto', imbalance_ratio=10)[1] == 'balanced'
  assert planning.class_weights([200, 10], 'none', imbalance_ratio=10)[0] is None


def test_typical_shorter_side_of_a_folder(tmp_path):
  root = write_image_folder(tmp_path / 'images', per_class=3, size=(50, 70))
  data = sources.load(tiny_config(data__source='folder', data__path=str(root),
                                  data__val_fraction=0.3).data, seed=0)
  assert schedule.typical_shorter_side(data.train) == 50
