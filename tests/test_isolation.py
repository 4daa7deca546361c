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
