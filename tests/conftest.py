"""Shared fixtures (helpers.py holds the plain functions), and the `shared_data` marker's skip."""

import os
import pathlib

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import logging  # noqa: E402
import pytest  # noqa: E402

from helpers import (SHARED, SHARED_TRAIN, SHARED_WEIGHTS, tiny_config,  # noqa: E402
                     write_calibrated_weights, write_fake_weights, write_messy_folder)


# The library's own INFO lines ('Resuming from ...', 'not retraining') are part of what tests
# check through caplog.
logging.set_verbosity(logging.INFO)


def pytest_collection_modifyitems(config, items):
  skip_shared = pytest.mark.skip(reason=f'needs real data in {SHARED} (absent)')
  for item in items:
    if 'shared_data' in item.keywords and not (SHARED_TRAIN.is_dir()
                                               and SHARED_WEIGHTS.is_file()):
      item.add_marker(skip_shared)


@pytest.fixture
def fake_weights(tmp_path):
  path = tmp_path / 'fake_mobilenet.weights.h5'
  values = write_fake_weights(path)
  return path, values


@pytest.fixture
def messy_folder(tmp_path):
  root = tmp_path / 'messy'
  valid, broken = write_messy_folder(root)
  return root, valid, broken


@pytest.fixture(scope='session')
def tiny_run(tmp_path_factory):
  """A finished tiny run (5 classes, export.top_k=3, data.max_image_pixels=64*64) from
  calibrated 'pretrained' weights, so its outputs depend on the image; trained once per session
  for the export and evaluation tests. Copy it before changing it."""
  from tftransfer.training import loop  # Imported here: only these fixtures train.
  root = tmp_path_factory.mktemp('tiny_run')
  weights = root / 'calibrated_mobilenet.weights.h5'
  write_calibrated_weights(weights)
  loop.train_and_evaluate(
      tiny_config(model__weights=str(weights), export__top_k=3,
                  data__max_image_pixels=64 * 64), str(root / 'run'))
  return root / 'run'


@pytest.fixture(scope='session')
def tiny_export(tiny_run, tmp_path_factory):
  """`tiny_run` exported once as version 1; returns the version directory."""
  from tftransfer.serving import export
  return pathlib.Path(export.export(str(tiny_run),
                                     str(tmp_path_factory.mktemp('models') / 'tiny')))


@pytest.fixture(scope='session')
def served(tiny_export):
  """`tiny_export` loaded with tf.saved_model.load."""
  import tensorflow as tf
  return tf.saved_model.load(str(tiny_export))


@pytest.fixture(scope='session')
def trained(tiny_run):
  """`tiny_run` restored from its workdir."""
  from tftransfer.training import restore
  return restore.restore(str(tiny_run))


@pytest.fixture(scope='session')
def tiny_edge_export(tiny_run, tmp_path_factory):
  """`tiny_run` exported once in every format: the SavedModel, model.keras, and a .tflite per
  quantization; returns the version directory. The accuracy guard is off: the tiny model is
  near chance, where one flipped image of its 100 is a point (the guard has its own tests)."""
  from tftransfer.serving import export
  return pathlib.Path(export.export(
      str(tiny_run), str(tmp_path_factory.mktemp('models') / 'edge'),
      formats=('saved_model', 'keras', 'tflite'),
      quantize=('none', 'float16', 'dynamic', 'int8'), max_accuracy_drop=100.0,
      latency_runs=3))
