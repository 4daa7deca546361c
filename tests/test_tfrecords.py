"""Image folder -> TFRecords -> training: same examples, file-level sharding, atomic output."""

import collections
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tftransfer import datasets, tfrecords, training
from conftest import tiny_config


def _config(source, path, **overrides):
  return tiny_config(data__source=source, data__path=str(path), data__val_fraction=0.2,
                     data__max_examples_per_class=0, **overrides)


def _examples(dataset):
  """The multiset of (label, pixel hash) of a dataset of (image, label)."""
  return collections.Counter(
      (int(label), hashlib.sha256(image.numpy().tobytes()).hexdigest() + str(image.shape))
      for image, label in dataset)


def _records(directory):
  """Every parsed record, by file name."""
  features = {key: tf.io.FixedLenFeature([], tf.string) for key in (
      'image/encoded', 'image/format', 'image/class/text', 'image/filename')}
  features.update({key: tf.io.FixedLenFeature([], tf.int64) for key in (
      'image/class/label', 'image/folder_index')})
  return {name: [tf.io.parse_single_example(record, features)
                 for record in tf.data.TFRecordDataset(str(directory / name))]
          for name in sorted(os.listdir(directory)) if name.endswith('.tfrecord')}


@pytest.fixture
def converted(messy_folder, tmp_path):
  root, valid, broken = messy_folder
  output = tmp_path / 'records'
  description = tfrecords.convert_folder(str(root), str(output), num_shards=4, seed=1)
  return root, output, description, valid, broken


def test_tfrecords_give_the_same_examples_and_split_as_the_folder(converted):
  root, output, _, _, _ = converted
  folder = datasets.load(_config('folder', root).data, seed=3)
  records = datasets.load(_config('tfrecord', output).data, seed=3)
  assert records.class_names == folder.class_names == ('cat', 'dog', 'émeu')
  for name in ('train', 'val'):
    from_folder, from_records = getattr(folder, name), getattr(records, name)
    assert from_records.class_counts == from_folder.class_counts
    assert _examples(from_records.dataset()) == _examples(from_folder.dataset()), name
  assert [row['file'] for row in records.report()['scan']['skipped']] == [
      row['file'] for row in folder.report()['scan']['skipped']]


def test_records_hold_each_file_byte_for_byte(converted):
  root, output, description, valid, broken = converted
  records = [record for rows in _records(output).values() for record in rows]
  assert sorted(os.fsdecode(r['image/filename'].numpy()) for r in records) == valid
  expected_format = {b'\xff\xd8': b'jpeg', b'\x89P': b'png', b'GI': b'gif', b'BM': b'bmp',
                     b'RI': b'webp'}
  for record in records:
    path = root / os.fsdecode(record['image/filename'].numpy())
    encoded = record['image/encoded'].numpy()
    assert encoded == path.read_bytes(), path  # stored as is, JPEGs not re-encoded
    assert record['image/format'].numpy() == expected_format[encoded[:2]], path
    label = int(record['image/class/label'])
    assert record['image/class/text'].numpy().decode() == description['class_names'][label]
    assert path.relative_to(root).parts[0] == description['class_names'][label]
  assert sorted(int(r['image/folder_index']) for r in records) == list(range(len(valid)))
  on_disk = json.loads((output / 'dataset.json').read_text())
  assert on_disk == description
  assert on_disk['class_counts'] == [8, 8, 4] and on_disk['num_examples'] == 20
  assert [row['file'] for row in on_disk['scan']['skipped']] == sorted(broken)
  assert [file['num_examples'] for file in on_disk['files']] == [5, 5, 5, 5]


def test_every_file_mixes_the_classes(converted):
  _, output, _, _, _ = converted
  for name, rows in _records(output).items():
    assert len({int(r['image/class/label']) for r in rows}) > 1, name


def test_workers_read_their_own_files(converted):
  _, output, description, _, _ = converted
  keep = np.ones(description['num_examples'], bool)
  whole = _examples(tfrecords.read_examples(str(output), description, keep))
  by_file = {name: _examples((tf.io.decode_image(r['image/encoded'], channels=3,
                                                 expand_animations=False),
                              tf.cast(r['image/class/label'], tf.int32)) for r in rows)
             for name, rows in _records(output).items()}
  names = sorted(by_file)
  shards = [_examples(tfrecords.read_examples(str(output), description, keep, index, 2))
            for index in range(2)]
  assert shards[0] == by_file[names[0]] + by_file[names[2]]
  assert shards[1] == by_file[names[1]] + by_file[names[3]]
  # More workers than files: each reads every file and keeps its share of the examples.
  shards = [_examples(tfrecords.read_examples(str(output), description, keep, index, 6))
            for index in range(6)]
  assert sum(shards, collections.Counter()) == whole
  assert all(sum(shard.values()) in (3, 4) for shard in shards)


def test_training_from_tfrecords_runs_and_reports_the_scan(converted, tmp_path):
  _, output, _, _, broken = converted
  workdir = tmp_path / 'run'
  final = training.train_and_evaluate(_config('tfrecord', output), str(workdir))
  assert final['step'] == 2 and np.isfinite(final['val_loss'])
  report = json.loads((workdir / 'data_report.json').read_text())
  assert report['split_sizes'] == {'train': 15, 'val': 5}
  assert [row['file'] for row in report['scan']['skipped']] == sorted(broken)


def test_a_crash_leaves_no_output_that_looks_complete(messy_folder, tmp_path, monkeypatch):
  root, _, _ = messy_folder
  output = tmp_path / 'records'
  written = []

  def crash_after_five(encoded, **kwargs):
    written.append(encoded)
    if len(written) > 5:
      raise KeyboardInterrupt
    return real(encoded, **kwargs)

  real = tfrecords._example
  monkeypatch.setattr(tfrecords, '_example', crash_after_five)
  with pytest.raises(KeyboardInterrupt):
    tfrecords.convert_folder(str(root), str(output), num_shards=4)
  assert not output.exists()
  assert sorted(os.listdir(tmp_path)) == ['messy']  # the temporary directory is gone too
  with pytest.raises(FileNotFoundError, match='make_tfrecords --input=FOLDER'):
    datasets.load(_config('tfrecord', tmp_path / 'messy').data, seed=0)


def test_an_existing_output_is_never_overwritten(messy_folder, tmp_path):
  root, _, _ = messy_folder
  output = tmp_path / 'records'
  output.mkdir()
  (output / 'keep.txt').write_text('mine')
  with pytest.raises(FileExistsError, match='not empty'):
    tfrecords.convert_folder(str(root), str(output))
  assert os.listdir(output) == ['keep.txt']


def test_bad_images_fail_the_conversion_when_asked(messy_folder, tmp_path):
  root, _, broken = messy_folder
  with pytest.raises(ValueError, match='cat/truncated.jpg'):
    tfrecords.convert_folder(str(root), str(tmp_path / 'records'), on_bad_image='fail')
  assert not (tmp_path / 'records').exists()


def test_automatic_shard_count():
  assert tfrecords.auto_num_shards(10_000, 20) == 16
  assert tfrecords.auto_num_shards(10_000, 5) == 5
  assert tfrecords.auto_num_shards(10 * 2**30, 10**6) == 80


def test_make_tfrecords_command(messy_folder, tmp_path):
  root, _, _ = messy_folder
  output = tmp_path / 'records'
  result = subprocess.run(
      [sys.executable, '-m', 'tftransfer.make_tfrecords', f'--input={root}',
       f'--output={output}', '--shards=2'], capture_output=True, text=True, cwd=tmp_path,
      timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'cat/zero.jpg' in result.stderr  # the skipped files are named in the log
  description = json.loads((output / 'dataset.json').read_text())
  assert [file['name'] for file in description['files']] == [
      'images-00000-of-00002.tfrecord', 'images-00001-of-00002.tfrecord']
