"""configs/classic.py is the classic recipe: a N(0, 0.02) head with zero bias, everything
training from step 0, plain-momentum SGD at a constant 0.001."""

import keras
import numpy as np
import pytest

from tftransfer import config as config_lib, runtime
from tftransfer.clock import Clock
from tftransfer.data import sources
from tftransfer.training import planning, resolve, state
from tftransfer.workdir import Workdir
from tests.helpers import REPO, load_config


def test_the_classic_recipe_is_what_it_says(tmp_path):
  config = config_lib.copy_config(load_config(REPO / 'configs' / 'classic.py'))
  # Offline and small, but the recipe's backbone, optimizer and schedule as they are.
  config.model.weights = 'none'
  config.model.image_size = 32
  config.data.source, config.data.name = 'synthetic', 'textures_target'
  config.data.eval_split = 'carve'
  config.train.mixed_precision = 'float32'
  setup = resolve.resolve(config)
  data = sources.load(setup.config.data, seed=0)
  plan = planning.make_plan(setup.config, setup.runtime, planning.facts(data))
  with runtime.seeded(0):
    run = state.create(setup, plan, Workdir(str(tmp_path / 'run')), data, Clock())

  kernel, bias = run.model.head.get_layer('logits').weights
  assert kernel.shape == (2048, 5)  # ResNet50's features to the task's classes
  assert np.std(kernel.numpy()) == pytest.approx(0.02, rel=0.05)
  assert abs(np.mean(kernel.numpy())) < 0.002
  np.testing.assert_array_equal(bias.numpy(), 0.0)

  assert [(phase.name, phase.first_step) for phase in run.plan.phases] == [('finetune', 0)]
  run.set_trainable('finetune')
  assert all(layer.trainable for layer in run.model.backbone.layers)  # BatchNorm too
  assert len(run.model.model.trainable_weights) == len(run.model.model.weights) - 2 * sum(
      isinstance(layer, keras.layers.BatchNormalization) for layer in run.model.backbone.layers)

  optimizer = run.optimizers['finetune']
  assert isinstance(optimizer, keras.optimizers.SGD)
  assert (optimizer.momentum, optimizer.nesterov, optimizer.weight_decay) == (0.9, False, None)
  schedule = run.schedules['finetune']
  rates = [schedule(step).numpy() for step in (0, 1, 500, run.plan.total_steps)]
  assert rates == [np.float32(0.001)] * 4
  assert run.config.train.batch_size == 100 and run.plan.total_steps == 10 * (900 // 100)
