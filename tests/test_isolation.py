"""The guard against leaked state: a test that changes the global dtype policy (or an
environment variable, or the seeds) without restoring it fails itself, and the tests after
it see the state as it was."""

LEAKY = '''
import os
import keras

def test_leaks_the_dtype_policy():
  keras.mixed_precision.set_global_policy('mixed_bfloat16')

def test_after_it_sees_float32():
  assert keras.mixed_precision.dtype_policy().name == 'float32'

def test_leaks_an_environment_variable():
  os.environ['TFTRANSFER_LEAK'] = '1'

def test_restores_what_it_changes(monkeypatch):
  monkeypatch.setenv('TFTRANSFER_OK', '1')
'''


def test_a_leak_fails_the_test_that_leaked_and_not_the_next(pytester):
  pytester.makeconftest('from tests.conftest import no_leaked_state  # noqa: F401\n')
  pytester.makepyfile(test_leaky=LEAKY)
  result = pytester.runpytest_inprocess('-p', 'no:cacheprovider')
  result.assert_outcomes(passed=4, errors=2)
  result.stdout.fnmatch_lines([
      '*test_leaks_the_dtype_policy left global state changed: keras dtype policy*',
      '*test_leaks_an_environment_variable left global state changed: environment variable '
      'TFTRANSFER_LEAK*'])


def test_calibrated_weights_do_not_depend_on_what_ran_before(tmp_path):
  """The 'pretrained' weights many tests train from are a function of their seed alone: a
  test's outcome must not depend on the random draws of the tests before it."""
  import h5py
  import keras
  import numpy as np
  from tests.helpers import write_calibrated_weights

  def arrays(path):
    write_calibrated_weights(path)
    found = []
    with h5py.File(path) as weights:
      weights.visititems(lambda name, item: found.append(np.asarray(item))
                         if isinstance(item, h5py.Dataset) else None)
    return found

  first = arrays(tmp_path / 'a.weights.h5')
  keras.random.normal((3,))  # moves Keras' global generator, as an earlier test would
  second = arrays(tmp_path / 'b.weights.h5')
  assert len(first) == len(second) and all(np.array_equal(a, b) for a, b in zip(first, second))


SHARED_RUN = '''
import pytest

@pytest.fixture(scope='session')
def tiny_run(tmp_path_factory):
  root = tmp_path_factory.mktemp('tiny_run')
  (root / 'final_metrics.json').write_text('{}')
  return root

def test_writes_into_the_session_run(tiny_run):
  (tiny_run / 'report').mkdir()

def test_reads_the_session_run(tiny_run):
  assert (tiny_run / 'final_metrics.json').read_text() == '{}'

def test_works_on_a_copy(tiny_run, tmp_path):
  import shutil
  shutil.copytree(tiny_run, tmp_path / 'run')
  (tmp_path / 'run' / 'evaluation').mkdir()
'''


def test_a_test_that_changes_a_session_fixture_directory_fails(pytester):
  """The leak issue 31's random-order run found: a test wrote a report into the session's
  tiny_run, and a later test that expects no report there failed, in some orders only."""
  pytester.makeconftest('from tests.conftest import no_leaked_state  # noqa: F401\n')
  pytester.makepyfile(test_shared_run=SHARED_RUN)
  result = pytester.runpytest_inprocess('-p', 'no:cacheprovider')
  result.assert_outcomes(passed=3, errors=1)
  result.stdout.fnmatch_lines(['*test_writes_into_the_session_run changed the session fixture '
                               'tiny_run, which later tests share: report*'])
