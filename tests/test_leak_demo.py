"""Deliberately leaky, to show the state-leak guard fails it (removed in the next commit)."""

import keras


def test_sets_the_dtype_policy_and_does_not_restore_it():
  keras.mixed_precision.set_global_policy('mixed_bfloat16')


def test_after_it():
  assert keras.mixed_precision.dtype_policy().name == 'float32'
