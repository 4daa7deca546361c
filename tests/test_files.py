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
