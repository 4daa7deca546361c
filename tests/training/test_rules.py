"""The 'auto' rules by training set size (planning applies them: test_planning.py)."""

import pytest

from tftransfer.data import sources
from tftransfer.training import rules
from tests.helpers import tiny_config, write_image_folder


@pytest.mark.parametrize('num_train,bucket,finetune,mixup', [
    (500, 'small', rules.FINETUNE_EPOCHS['small'], 0.0),
    (rules.SMALL, 'medium', rules.FINETUNE_EPOCHS['medium'], 0.0),
    (rules.LARGE - 1, 'medium', rules.FINETUNE_EPOCHS['medium'], 0.0),
    (rules.LARGE, 'large', rules.FINETUNE_EPOCHS['large'], rules.MIXUP_ALPHA),
])
def test_rules_by_training_set_size(num_train, bucket, finetune, mixup):
  assert rules.size_bucket(num_train) == bucket
  assert rules.finetune_epochs(num_train)[0] == finetune
  assert rules.mixup_alpha(num_train)[0] == mixup


def test_head_epochs_give_enough_steps_within_bounds():
  assert rules.head_epochs(100_000, 64)[0] == rules.MIN_HEAD_EPOCHS
  spe = 200 // 8
  assert rules.head_epochs(200, 8)[0] == -(-rules.HEAD_STEPS // spe)
  assert rules.head_epochs(10, 8)[0] == rules.MAX_HEAD_EPOCHS


def test_the_head_epochs_reason_counts_the_steps_it_plans_and_names_a_bound_it_hits():
  epochs, reason = rules.head_epochs(40, 8)  # 5 steps an epoch: 200 epochs wanted, capped
  assert epochs == rules.MAX_HEAD_EPOCHS
  assert reason == (f'{rules.MAX_HEAD_EPOCHS * 5} head steps (5 an epoch; about '
                    f'{rules.HEAD_STEPS} wanted, capped at {rules.MAX_HEAD_EPOCHS} epochs)')
  assert rules.head_epochs(100_000, 64)[1].endswith(
      f'at least {rules.MIN_HEAD_EPOCHS} epochs)')
  assert 'capped' not in rules.head_epochs(200, 8)[1]


def test_small_images_are_upsampled_and_large_ones_kept_native():
  assert rules.image_size('mobilenet', 32)[0] == rules.RESOLUTION_FOR_SMALL_IMAGES
  assert rules.image_size('mobilenet', 500)[0] == 224
  assert rules.image_size('inception_v3', 300)[0] == 299


def test_class_weighting_auto_follows_the_imbalance_ratio():
  assert rules.class_weighting([90, 10], 10)[0] == 'none'  # 9x
  assert rules.class_weighting([200, 10], 10)[0] == 'balanced'
  assert rules.class_weighting([200, 10], 0)[0] == 'none'  # 0 = never


def test_typical_shorter_side_of_a_folder(tmp_path):
  root = write_image_folder(tmp_path / 'images', per_class=3, size=(50, 70))
  data = sources.load(tiny_config(data__source='folder', data__path=str(root),
                                  data__val_fraction=0.3).data, seed=0)
  assert rules.typical_shorter_side(data.train) == 50
