"""Optimizers and schedules: where weight decay applies, and the warm-up + cosine curve."""

import keras
import numpy as np
import pytest

from tftransfer.runtime import Precision
from tftransfer.training import optimization


def _layers():
  dense = keras.layers.Dense(3)
  dense.build((None, 4))
  norm = keras.layers.BatchNormalization()
  norm.build((None, 3))
  return dense, norm


@pytest.mark.parametrize('name', ['adamw', 'sgd'])
def test_weight_decay_spares_biases_and_normalisation(name):
  dense, norm = _layers()
  variables = [dense.kernel, dense.bias, norm.gamma, norm.beta]
  for variable in variables:
    variable.assign(np.ones(variable.shape, 'float32'))
  optimizer = optimization.build_optimizer(
      name=name, learning_rate=0.1, weight_decay=0.5, momentum=0.9,
      precision=Precision.FLOAT32, variables=variables)
  # Zero gradients: whatever moves, decay moved it.
  optimizer.apply([np.zeros(v.shape, 'float32') for v in variables], variables)
  assert np.all(dense.kernel.numpy() < 1)
  for variable in (dense.bias, norm.gamma, norm.beta):
    np.testing.assert_array_equal(variable.numpy(), 1.0, err_msg=variable.path)


def test_no_decay_leaves_every_weight():
  dense, _ = _layers()
  dense.kernel.assign(np.ones((4, 3), 'float32'))
  optimizer = optimization.build_optimizer(
      name='adamw', learning_rate=0.1, weight_decay=0.0, momentum=0.9,
      precision=Precision.FLOAT32, variables=[dense.kernel])
  optimizer.apply([np.zeros((4, 3), 'float32')], [dense.kernel])
  np.testing.assert_array_equal(dense.kernel.numpy(), 1.0)


def test_warmup_then_cosine_at_known_steps():
  schedule = optimization.warmup_cosine(peak_lr=0.2, total_steps=110, warmup_fraction=0.1)
  lr = lambda step: float(schedule(step))  # noqa: E731
  # 11 warm-up steps rising linearly from 0, then a half cosine over the other 99 down to 0.
  assert lr(0) == pytest.approx(0.0, abs=1e-7)
  assert lr(5) == pytest.approx(0.2 * 5 / 11, rel=1e-5)
  assert lr(11) == pytest.approx(0.2, rel=1e-5)
  assert lr(11 + 99 / 2) == pytest.approx(0.1, rel=1e-5)
  assert lr(110) == pytest.approx(0.0, abs=1e-7)


def test_cosine_without_warmup_starts_at_the_peak():
  schedule = optimization.warmup_cosine(peak_lr=0.2, total_steps=100, warmup_fraction=0.0)
  assert float(schedule(0)) == pytest.approx(0.2)
  assert float(schedule(50)) == pytest.approx(0.1, rel=1e-5)


def test_float16_scales_the_loss_and_others_do_not():
  dense, _ = _layers()
  for precision, scaled in ((Precision.FLOAT16, True), (Precision.BFLOAT16, False)):
    optimizer = optimization.build_optimizer(
        name='adamw', learning_rate=0.1, weight_decay=0.0, momentum=0.9,
        precision=precision, variables=[dense.kernel])
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer) == scaled
