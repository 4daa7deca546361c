"""Image folder -> TFRecords -> training: same examples, file-level sharding, atomic output."""

import collections
import functools
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tftransfer.data import image_ops, sources, tfrecords
from tftransfer.training import loop
from tests.helpers import MAX_IMAGE_PIXELS, tiny_config, write_image_folder


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
  description = tfrecords.convert_folder(str(root), str(output), num_shards=4, seed=1,
                                         max_image_pixels=MAX_IMAGE_PIXELS)
  return root, output, description, valid, broken


def test_tfrecords_give_the_same_examples_and_split_as_the_folder(tmp_path):
  # Every image distinct, so each decoded example names the one file it came from.
  root = write_image_folder(tmp_path / 'images', per_class=12, size=(20, 17))
  output = tmp_path / 'records'
  tfrecords.convert_folder(str(root), str(output), num_shards=3, seed=1,
                           max_image_pixels=MAX_IMAGE_PIXELS)
  file_of = {}
  for path in sorted(root.glob('*/*')):
    pixels = image_ops.decode_image(path.read_bytes(), max_pixels=MAX_IMAGE_PIXELS).numpy()
    file_of[hashlib.sha256(pixels.tobytes()).hexdigest()] = str(path.relative_to(root))
  assert len(file_of) == 36

  def examples(split):
    """(file, label, pixels) of every example of `split`, ordered by file."""
    found = [(file_of[hashlib.sha256(image.numpy().tobytes()).hexdigest()], int(label),
              image.numpy()) for image, label in split.dataset()]
    return sorted(found, key=lambda example: example[0])

  folder = sources.load(_config('folder', root).data, seed=3)
  records = sources.load(_config('tfrecord', output).data, seed=3)
  assert records.class_names == folder.class_names == ('cat', 'dog', 'frog')
  for name in ('train', 'val'):
    from_folder, from_records = examples(getattr(folder, name)), examples(getattr(records, name))
    assert [(f, label) for f, label, _ in from_records] == [
        (f, label) for f, label, _ in from_folder], name
    for (_, _, a), (_, _, b) in zip(from_records, from_folder):
      np.testing.assert_array_equal(a, b)
    assert all(folder.class_names[label] == f.split('/')[0] for f, label, _ in from_folder)
  assert len(examples(folder.val)) == 3 * 2  # a stratified 20 %: 2 of 12 per class


def test_tfrecords_report_the_folder_scan(converted):
  root, output, _, _, _ = converted
  folder = sources.load(_config('folder', root).data, seed=3)
  records = sources.load(_config('tfrecord', output).data, seed=3)
  assert records.train.class_counts == folder.train.class_counts
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
  read = functools.partial(tfrecords.read_examples, str(output), description, keep,
                           max_pixels=MAX_IMAGE_PIXELS)
  whole = _examples(read())
  by_file = {name: _examples((image_ops.decode_image(r['image/encoded'],
                                                     max_pixels=MAX_IMAGE_PIXELS),
                              tf.cast(r['image/class/label'], tf.int32)) for r in rows)
             for name, rows in _records(output).items()}
  names = sorted(by_file)
  shards = [_examples(read(index, 2)) for index in range(2)]
  assert shards[0] == by_file[names[0]] + by_file[names[2]]
  assert shards[1] == by_file[names[1]] + by_file[names[3]]
  # More workers than files: each reads every file and keeps its share of the examples.
  shards = [_examples(read(index, 6)) for index in range(6)]
  assert sum(shards, collections.Counter()) == whole
  assert all(sum(shard.values()) in (3, 4) for shard in shards)


@pytest.mark.slow
def test_training_from_tfrecords_runs_and_reports_the_scan(converted, tmp_path):
  _, output, _, _, broken = converted
  workdir = tmp_path / 'run'
  final = loop.train_and_evaluate(_config('tfrecord', output), str(workdir))
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
    tfrecords.convert_folder(str(root), str(output), num_shards=4,
                             max_image_pixels=MAX_IMAGE_PIXELS)
  assert not output.exists()
  assert sorted(os.listdir(tmp_path)) == ['messy']  # the temporary directory is gone too
  with pytest.raises(FileNotFoundError, match='make_tfrecords --input=FOLDER'):
    sources.load(_config('tfrecord', tmp_path / 'messy').data, seed=0)


def test_an_existing_output_is_never_overwritten(messy_folder, tmp_path):
  root, _, _ = messy_folder
  output = tmp_path / 'records'
  output.mkdir()
  (output / 'keep.txt').write_text('mine')
  with pytest.raises(FileExistsError, match='not empty'):
    tfrecords.convert_folder(str(root), str(output), max_image_pixels=MAX_IMAGE_PIXELS)
  assert os.listdir(output) == ['keep.txt']


def test_bad_images_fail_the_conversion_when_asked(messy_folder, tmp_path):
  root, _, broken = messy_folder
  with pytest.raises(ValueError, match='cat/truncated.jpg'):
    tfrecords.convert_folder(str(root), str(tmp_path / 'records'), on_bad_image='fail',
                             max_image_pixels=MAX_IMAGE_PIXELS)
  assert not (tmp_path / 'records').exists()


def test_automatic_shard_count():
  assert tfrecords.auto_num_shards(10_000, 20) == 16
  assert tfrecords.auto_num_shards(10_000, 5) == 5
  assert tfrecords.auto_num_shards(10 * 2**30, 10**6) == 80


@pytest.mark.slow
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


def test_records_with_images_over_the_training_limit_are_refused_before_training(tmp_path):
  # Issue 11 kind 6: the records' largest image is in dataset.json, so a run whose
  # data.max_image_pixels is lower fails at once, not when the image comes up mid-epoch.
  root = write_image_folder(tmp_path / 'images', per_class=4, size=(40, 36))
  output = tmp_path / 'records'
  description = tfrecords.convert_folder(str(root), str(output), num_shards=2,
                                         max_image_pixels=MAX_IMAGE_PIXELS)
  assert description['scan']['largest_image_pixels'] == 40 * 36
  assert sources.load(_config('tfrecord', output, data__max_image_pixels=40 * 36).data, seed=0)
  with pytest.raises(ValueError, match=r'hold an image of 1440 pixels, more than '
                                       r'config.data.max_image_pixels=1439'):
    sources.load(_config('tfrecord', output, data__max_image_pixels=40 * 36 - 1).data, seed=0)


def _tagged(dataset):
  """{pixel hash: multi-hot labels} of a dataset of (image, multi-hot label)."""
  return {hashlib.sha256(image.numpy().tobytes()).hexdigest(): tuple(label.numpy().tolist())
          for image, label in dataset}


def test_a_multi_label_manifest_converts_with_its_labels_and_splits(tmp_path):
  from tests.helpers import write_tag_manifest
  manifest = write_tag_manifest(tmp_path / 'tags', count=30)
  columns = {'label_column': 'tags', 'label_delimiter': '|'}
  description = tfrecords.convert_manifest(str(manifest), str(tmp_path / 'records'),
                                           columns=columns, max_image_pixels=MAX_IMAGE_PIXELS,
                                           num_shards=3, seed=4)
  assert description['multi_label'] and len(description['labels']) == 30
  from_manifest = sources.load(_config('csv', manifest, data__label_column='tags',
                                       data__label_delimiter='|').data, seed=0)
  from_records = sources.load(_config('tfrecord', tmp_path / 'records').data, seed=0)
  assert from_records.multi_label and from_records.class_names == from_manifest.class_names
  for records_split, manifest_split in ((from_records.train, from_manifest.train),
                                        (from_records.val, from_manifest.val)):
    assert records_split.class_counts == manifest_split.class_counts
    assert _tagged(records_split.read(0, 1)) == _tagged(manifest_split.read(0, 1))
  # Several labels an image are one multi-valued image/class/label.
  record = next(iter(tf.data.TFRecordDataset(
      str(tmp_path / 'records' / description['files'][0]['name']))))
  example = tf.train.Example.FromString(record.numpy())
  labels = example.features.feature['image/class/label'].int64_list.value
  texts = example.features.feature['image/class/text'].bytes_list.value
  assert len(labels) == len(texts) >= 1


def test_a_manifests_split_column_is_kept_in_its_records(tmp_path):
  root = write_image_folder(tmp_path / 'images', per_class=4)
  files = sorted(root.rglob('*.*'))
  manifest = tmp_path / 'm.csv'
  manifest.write_text('path,label,split\n' + ''.join(
      f'{file},{file.parent.name},{"validation" if index % 4 == 0 else "train"}\n'
      for index, file in enumerate(files)))
  tfrecords.convert_manifest(str(manifest), str(tmp_path / 'records'),
                             columns={'split_column': 'split'}, max_image_pixels=0,
                             num_shards=2)
  data = sources.load(_config('tfrecord', tmp_path / 'records').data, seed=0)
  assert data.val.num_examples == 3 and data.train.num_examples == 9
  assert 'split as the manifest says' in data.description


def test_make_tfrecords_takes_a_folder_or_a_manifest_not_both(tmp_path):
  result = subprocess.run([sys.executable, '-m', 'tftransfer.make_tfrecords',
                           f'--output={tmp_path / "out"}'], capture_output=True, text=True)
  assert result.returncode != 0
  assert 'Pass exactly one of --input=FOLDER or --manifest=TABLE.' in result.stderr
