"""Atomic writes: files and staged directories appear whole or not at all."""

import os

import pytest

from tftransfer import files


def test_write_text_replaces_whole_files(tmp_path):
  path = str(tmp_path / 'a.json')
  files.write_json(path, {'b': 1, 'a': [1, 2]})
  assert open(path).read() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
  files.write_text(path, 'second')
  assert open(path).read() == 'second'
  assert os.listdir(tmp_path) == ['a.json']


def test_a_staged_directory_appears_only_when_complete(tmp_path):
  target = tmp_path / 'out'
  with files.staged_directory(str(target)) as staging:
    open(os.path.join(staging, 'x'), 'w').write('x')
    assert not target.exists()
    assert os.listdir(tmp_path) == [os.path.basename(staging)]
    assert os.path.basename(staging).startswith('.out.incomplete-')  # hidden, not a version
  assert os.listdir(target) == ['x']
  assert os.listdir(tmp_path) == ['out']


def test_a_failed_block_leaves_nothing(tmp_path):
  with pytest.raises(KeyboardInterrupt):
    with files.staged_directory(str(tmp_path / 'out')) as staging:
      open(os.path.join(staging, 'x'), 'w').write('x')
      raise KeyboardInterrupt
  assert os.listdir(tmp_path) == []


def test_existing_targets_are_kept_unless_overwritten(tmp_path):
  target = tmp_path / 'out'
  target.mkdir()
  with files.staged_directory(str(target)) as staging:  # empty: free to take
    open(os.path.join(staging, 'new'), 'w').write('1')
  with pytest.raises(FileExistsError, match='never overwritten'):
    with files.staged_directory(str(target)):
      pytest.fail('the block must not run')
  assert os.listdir(target) == ['new']
  with files.staged_directory(str(target), overwrite=True) as staging:
    open(os.path.join(staging, 'newer'), 'w').write('2')
  assert os.listdir(target) == ['newer']
  assert os.listdir(tmp_path) == ['out']  # the replaced copy is gone too


def test_derived_names_of_long_file_names_stay_valid_and_distinct():
  # Issue 28, kind 2: a valid 250-byte name plus a suffix or a staging tag is over the limit.
  assert files.fitted_name('photo', '.gradcam.png') == 'photo.gradcam.png'
  long_a, long_b = 'é' * 120 + 'a' * 10, 'é' * 120 + 'b' * 10  # 250 bytes, one common start
  fitted = [files.fitted_name(stem, '.gradcam.png') for stem in (long_a, long_b)]
  assert all(len(name.encode()) <= files.NAME_MAX for name in fitted)
  assert fitted[0] != fitted[1] and all(name.endswith('.gradcam.png') for name in fitted)
  assert all(name.startswith('é' * 100) for name in fitted)  # cut between characters
  assert files.fitted_name(long_a, '.x') == files.fitted_name(long_a, '.x')  # stable


def test_a_staged_directory_of_a_long_valid_name_is_published(tmp_path):
  target = tmp_path / ('t' * 230)
  with files.staged_directory(str(target)) as staging:
    assert len(os.path.basename(staging).encode()) <= files.NAME_MAX
    open(os.path.join(staging, 'x'), 'w').write('x')
  assert os.listdir(target) == ['x']
  files.write_text(str(tmp_path / ('n' * 250)), 'text')  # its hidden temporary fits too
  assert open(tmp_path / ('n' * 250)).read() == 'text'
