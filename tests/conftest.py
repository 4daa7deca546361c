"""Shared fixtures (helpers.py holds the plain functions), the markers' skips, and the guard
that fails a test which leaks global state into the tests after it.

Two tiers: `python -m pytest -q -m "not slow"` is the fast one; the README's command runs
every test. `TFTRANSFER_SHARED=none` hides ../shared from the tests, as on a user's clone.
"""

import os
import pathlib
import random
import stat

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import logging  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from tests.helpers import (SHARED, SHARED_TRAIN, SHARED_WEIGHTS,  # noqa: E402
                           tiny_run_config, write_calibrated_weights, write_fake_weights,
                           write_messy_folder)

pytest_plugins = ['pytester']  # tests/test_isolation.py runs pytest on a leaky test

# The library's own INFO lines ('Resuming from ...', 'not retraining') are part of what tests
# check through caplog.
logging.set_verbosity(logging.INFO)
# TensorFlow's CPU kernels are not bit-for-bit deterministic across processes (parallel
# reductions), so a tiny run's best epoch could differ from one session to the next: with op
# determinism and the runs' seeds, the same tests train the same weights every time.
tf.config.experimental.enable_op_determinism()


def pytest_collection_modifyitems(config, items):
  """Whole runs are slow: everything in tests/e2e/ and every test on real data (../shared);
  real-data tests skip when ../shared is absent.

  The suite runs on two pytest-xdist workers (setup.cfg's addopts, --dist loadgroup): a
  file's tests go to one worker, so its module fixtures are built once, and so do all the
  tests of the session's most expensive fixture, tiny_edge_export (every export format)."""
  del config
  skip_shared = pytest.mark.skip(reason=f'needs real data in {SHARED} (absent or hidden by '
                                 'TFTRANSFER_SHARED=none)')
  e2e = pathlib.Path(__file__).parent / 'e2e'
  for item in items:
    if e2e in pathlib.Path(item.fspath).parents or 'shared_data' in item.keywords:
      item.add_marker(pytest.mark.slow)
    group = ('tiny_edge_export' if 'tiny_edge_export' in item.fixturenames
             else item.nodeid.split('::')[0])
    item.add_marker(pytest.mark.xdist_group(group))
    if 'shared_data' in item.keywords and not (SHARED_TRAIN.is_dir()
                                               and SHARED_WEIGHTS.is_file()):
      item.add_marker(skip_shared)


def _global_state() -> dict:
  """What one test may not leave changed for the next: the Keras dtype policy, the process's
  environment and working directory, the global seeds of TensorFlow and Keras (what
  keras.utils.set_random_seed sets) and the absl log level."""
  from keras.src.backend.common import global_state  # pylint: disable=g-import-not-at-top
  from tensorflow.python.eager import context  # pylint: disable=g-import-not-at-top
  return {'keras dtype policy': keras.mixed_precision.dtype_policy().name,
          # pytest itself sets PYTEST_CURRENT_TEST around each test.
          'environment': {key: value for key, value in os.environ.items()
                          if key != 'PYTEST_CURRENT_TEST'},
          'working directory': os.getcwd(),
          'TensorFlow global seed': context.global_seed(),
          'Keras global seed': global_state.get_global_attribute('global_random_seed'),
          'absl verbosity': logging.get_verbosity()}


def _restore(state: dict) -> None:
  from keras.src.backend.common import global_state  # pylint: disable=g-import-not-at-top
  keras.mixed_precision.set_global_policy(state['keras dtype policy'])
  for key in set(os.environ) - set(state['environment']) - {'PYTEST_CURRENT_TEST'}:
    del os.environ[key]
  os.environ.update(state['environment'])
  os.chdir(state['working directory'])
  tf.random.set_seed(state['TensorFlow global seed'])
  global_state.set_global_attribute('global_random_seed', state['Keras global seed'])
  logging.set_verbosity(state['absl verbosity'])


def _changed_keys(before: dict, after: dict) -> list[str]:
  """The keys of either dict whose values differ (a key in one only counts), sorted."""
  return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def _differences(before: dict, after: dict) -> list[str]:
  changed = []
  for name, value in before.items():
    if name == 'environment':
      changed += [f'environment variable {key}' for key in _changed_keys(value, after[name])]
    elif value != after[name]:
      changed.append(name)
  return changed


# The session's shared directories: every test that uses one sees it as its fixture built it.
SESSION_DIRECTORIES = ('tiny_run', 'tiny_export', 'tiny_edge_export')


def _files(root: pathlib.Path) -> dict:
  """Each file and directory under root, relative, with its size and modification time (ns)."""
  files = {}
  for path in root.rglob('*'):
    status = path.stat()
    files[str(path.relative_to(root))] = (stat.S_ISDIR(status.st_mode) or status.st_size,
                                          status.st_mtime_ns)
  return files


@pytest.fixture(autouse=True)
def no_leaked_state(request):
  """Fails the test that changes global state without restoring it (restoring it for the
  tests after it), so a leak is found where it starts rather than where it hurts. Python's
  and NumPy's global random streams are given back after every test too: building any Keras
  model draws from them (its layers' default seeds), so they are restored, not policed.

  It also fails a test that changes a session fixture's directory (tiny_run and the exports
  of it), which the tests after it share: such a test works on a copy (shutil.copytree)."""
  before = _global_state()
  shared = {name: pathlib.Path(request.getfixturevalue(name))
            for name in SESSION_DIRECTORIES if name in request.fixturenames}
  files_before = {name: _files(root) for name, root in shared.items()}
  streams = random.getstate(), np.random.get_state()
  yield
  random.setstate(streams[0])
  np.random.set_state(streams[1])
  changed = _differences(before, _global_state())
  if changed:
    _restore(before)
    pytest.fail(f'{request.node.nodeid} left global state changed: {", ".join(changed)}. '
                'Restore it (monkeypatch, runtime.keras_policy, runtime.seeded) before the '
                'test ends.', pytrace=False)
  for name, root in shared.items():
    files = _changed_keys(files_before[name], _files(root))
    if files:
      pytest.fail(f'{request.node.nodeid} changed the session fixture {name}, which later '
                  f'tests share: {", ".join(files[:5])}. Work on a copy '
                  f'(shutil.copytree({name}, tmp_path / ...)).', pytrace=False)


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
  for the training, export and evaluation tests. Which epoch is selected is read from its
  final_metrics.json, never assumed. Copy it before changing it."""
  from tftransfer.training import loop  # Imported here: only these fixtures train.
  root = tmp_path_factory.mktemp('tiny_run')
  write_calibrated_weights(root / 'calibrated_mobilenet.weights.h5')
  loop.train_and_evaluate(tiny_run_config(root / 'run'), str(root / 'run'))
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
  return tf.saved_model.load(str(tiny_export))


@pytest.fixture(scope='session')
def trained(tiny_run):
  """`tiny_run` restored from its workdir."""
  from tftransfer import restore
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
