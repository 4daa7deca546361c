"""Labels in tables: what real CSVs and JSON lines hold is read as meant, and every row that
cannot be meant is one error naming its line, the value and the fix (manifests.py); the
manifest source scans, splits and reports like a folder (manifest_source.py)."""

import json
import os

import numpy as np
import pytest

from tftransfer import errors
from tftransfer.data import folders, manifest_source, manifests, sources, splits
from tests.helpers import encode_image, random_image, tiny_config, write_image_folder


def _write(path, text, encoding='utf-8'):
  path.write_bytes(text.encode(encoding))
  return str(path)


def test_what_real_csvs_hold_is_read_as_meant(tmp_path):
  # A byte-order mark, Windows line endings, a quoted cell holding the delimiter, spaces
  # around cells, a non-ASCII path, blank lines, a label typed in decomposed Unicode.
  manifest = _write(tmp_path / 'labels.csv',
                    '\ufeffpath , label\r\n'
                    'a.jpg, cat \r\n'
                    '\r\n'
                    '"b, with comma.jpg",dog\r\n'
                    'images/żaba.png,cafe\u0301\r\n'
                    '/data/abs.jpg,café\r\n'
                    'gs://bucket/c.jpg,dog\r\n'
                    '  \r\n')
  read = manifests.read(manifest)
  assert [row.path for row in read.rows] == ['a.jpg', 'b, with comma.jpg', 'images/żaba.png',
                                             '/data/abs.jpg', 'gs://bucket/c.jpg']
  assert [row.line for row in read.rows] == [2, 4, 5, 6, 7]
  assert read.rows[0].file == str(tmp_path / 'a.jpg')  # relative to the manifest's folder
  assert read.rows[2].file == str(tmp_path / 'images' / 'żaba.png')
  assert read.rows[3].file == '/data/abs.jpg' and read.rows[4].file == 'gs://bucket/c.jpg'
  assert read.class_names == ('café', 'cat', 'dog')  # NFC: the two cafés are one class
  assert not read.multi_label and read.repeated == ()


def test_several_labels_a_cell_label_columns_tsv_and_json_lines(tmp_path):
  cell = manifests.read(_write(tmp_path / 'tags.csv', 'file,tags\na.jpg,"cat|indoor"\n'
                               'b.jpg,dog\n'), image_column='file', label_column='tags',
                        label_delimiter='|')
  assert [row.labels for row in cell.rows] == [('cat', 'indoor'), ('dog',)]
  assert cell.multi_label and cell.class_names == ('cat', 'dog', 'indoor')
  columns = manifests.read(_write(tmp_path / 'columns.tsv', 'path\tcat\tdog\n'
                                  'a.jpg\t1\t0\nb.jpg\t0\t0\n'), label_columns=('cat', 'dog'))
  assert [row.labels for row in columns.rows] == [('cat',), ()]  # an image may have none
  assert columns.multi_label and columns.class_names == ('cat', 'dog')
  lines = manifests.read(_write(tmp_path / 'm.jsonl',
                                '{"path": "a.jpg", "label": ["cat", "indoor"]}\n\n'
                                '{"path": "b.jpg", "label": "dog", "split": "val"}\n'),
                         split_column='')
  assert [(row.line, row.labels) for row in lines.rows] == [(1, ('cat', 'indoor')),
                                                            (3, ('dog',))]


def test_the_same_row_twice_is_kept_once_and_reported(tmp_path):
  read = manifests.read(_write(tmp_path / 'm.csv', 'path,label\na.jpg,cat\nb.jpg,dog\n'
                               './a.jpg,cat\n'))
  assert [row.path for row in read.rows] == ['a.jpg', 'b.jpg']
  assert read.repeated == ((4, 2),)


@pytest.mark.parametrize('text, fields, message', [
    ('path,lable\na.jpg,cat\n', {},
     r"no column 'label' \(its columns: path, lable\); did you mean 'lable'\? Set "
     r'--config.data.label_column='),
    ('file,label\na.jpg,cat\n', {},
     r"no column 'path' \(its columns: file, label\).* --config.data.image_column="),
    ('path,label\na.jpg,cat\nb.jpg,dog,extra\n', {},
     r'line 3 has 3 cells, the header 2 \(path, label\); quote a cell that holds'),
    ('path,label\na.jpg,cat\n,dog\n', {}, r"line 3 has no image path in column 'path'"),
    ('path,label\na.jpg,cat\nb.jpg,  \n', {}, r"line 3 has no label in column 'label'"),
    ('path,cat,dog\na.jpg,1,0\nb.jpg,yes please,0\n', {'label_columns': ('cat', 'dog')},
     r"line 3, column 'cat' holds 'yes please', not 0 or 1"),
    ('path,label,split\na.jpg,cat,train\nb.jpg,dog,holdout\n', {'split_column': 'split'},
     r"line 3 has split 'holdout' in column 'split'; use train, validation \(or val\) or "
     'test'),
    ('path,label\na.jpg,cat\nb.jpg,dog\na.jpg,dog\n', {},
     r"lines 2 and 4 list 'a.jpg' with different labels or splits \(\['cat'\], \['dog'\]\)"),
    ('path,label\n', {}, r'lists no image'),
    ('', {}, r'is empty; give a header row'),
    ('{"path": "a.jpg", "label": "cat"}\n{"path": "b.jpg", label: "dog"}\n', {},
     r'line 2 is not JSON'),
    ('["a.jpg", "cat"]\n', {}, r'line 1 is a JSON list, not an object'),
])
def test_a_row_that_cannot_be_meant_is_one_error_naming_its_line(tmp_path, text, fields,
                                                                 message):
  name = 'm.jsonl' if text.startswith(('{', '[')) else 'm.csv'
  path = _write(tmp_path / name, text)
  with pytest.raises(errors.InvalidValueError, match=message) as raised:
    manifests.read(path, **fields)
  assert str(raised.value).startswith(f'Manifest {path}: ')
  assert '\n' not in str(raised.value)


def test_a_manifest_that_is_not_there_or_not_utf8(tmp_path):
  with pytest.raises(errors.NotFoundError, match=r"config.data.path='.*nope.csv': no such"):
    manifests.read(str(tmp_path / 'nope.csv'))
  path = _write(tmp_path / 'latin1.csv', 'path,label\nä.jpg,cat\n', encoding='latin-1')
  with pytest.raises(errors.InvalidValueError, match=r'line 2 is not UTF-8 text \(byte 11 of the '
                     r'file\); save the table as UTF-8'):
    manifests.read(path)


def _images(root, names):
  root.mkdir(parents=True, exist_ok=True)
  for index, name in enumerate(names):
    (root / name).write_bytes(encode_image(random_image(12, 12, seed=index)))


def _config(path, **fields):
  config = tiny_config(data__source='csv', data__path=str(path), data__max_examples_per_class=0,
                       **{f'data__{key}': value for key, value in fields.items()})
  return config.data


def test_missing_and_undecodable_files_are_reported_with_their_lines(tmp_path):
  _images(tmp_path / 'img', [f'{i}.png' for i in range(8)])
  (tmp_path / 'img' / 'broken.png').write_bytes(b'not an image')
  rows = [f'img/{i}.png,{"cat" if i % 2 else "dog"}' for i in range(8)]
  path = _write(tmp_path / 'm.csv', 'path,label\n' + '\n'.join(
      rows[:3] + ['img/gone.png,cat'] + rows[3:] + ['img/broken.png,dog']) + '\n')
  data = sources.load(_config(path), seed=0)
  skipped = data.report()['scan']['skipped']
  assert [(entry['file'], entry['line']) for entry in skipped] == [('img/gone.png', 5),
                                                                   ('img/broken.png', 11)]
  assert skipped[0]['reason'] == 'file not found'
  assert data.train.num_examples + data.val.num_examples == 8
  with pytest.raises(folders.BadImagesError,
                     match=r"2 images listed in .* on_bad_image='fail': line 5 img/gone.png "
                     r'\(file not found\); line 11 img/broken.png'):
    sources.load(_config(path, on_bad_image='fail'), seed=0)


def test_a_split_column_is_respected_and_test_rows_kept_out(tmp_path):
  _images(tmp_path, [f'{i}.png' for i in range(9)])
  given = ['train', 'val', 'test'] * 3
  path = _write(tmp_path / 'm.csv', 'path,label,split\n' + ''.join(
      f'{i}.png,{"cat" if i < 5 else "dog"},{split}\n' for i, split in enumerate(given)))
  data = sources.load(_config(path, split_column='split'), seed=0)
  assert sorted(os.path.basename(p) for p in data.train.paths) == ['0.png', '3.png', '6.png']
  assert sorted(os.path.basename(p) for p in data.val.paths) == ['1.png', '4.png', '7.png']
  assert data.report()['scan']['test_rows'] == 3
  only_train = _write(tmp_path / 'train.csv', 'path,label,split\n0.png,cat,train\n'
                      '5.png,dog,train\n')
  with pytest.raises(errors.InvalidValueError, match=r"no usable row has split validation in "
                     r"column 'split'; mark some, or leave config.data.split_column empty"):
    sources.load(_config(only_train, split_column='split'), seed=0)


def test_a_label_left_without_images_is_named(tmp_path):
  _images(tmp_path, ['0.png', '1.png', '2.png'])
  path = _write(tmp_path / 'm.csv', 'path,label\n0.png,cat\n1.png,cat\n2.png,cat\n'
                'gone.png,dog\n')
  with pytest.raises(errors.InvalidValueError, match=r"the labels \['dog'\] have no usable "
                     'image'):
    sources.load(_config(path), seed=0)


def test_multi_label_rows_are_multi_hot_and_every_label_is_validated(tmp_path):
  names = [f'{i}.png' for i in range(40)]
  _images(tmp_path, names)
  rng = np.random.default_rng(0)
  tags = ['cat', 'dog', 'sky', 'rare']
  lines = []
  for index, name in enumerate(names):
    chosen = [tag for tag in tags[:3] if rng.random() < 0.5] + (['rare'] if index < 5 else [])
    lines.append(f'{name},"{"|".join(chosen) or "cat"}"\n')
  path = _write(tmp_path / 'm.csv', 'path,tags\n' + ''.join(lines))
  data = sources.load(_config(path, label_column='tags', label_delimiter='|',
                              val_fraction=0.2), seed=0)
  assert data.multi_label and data.class_names == ('cat', 'dog', 'rare', 'sky')
  targets = np.concatenate([labels for _, labels in data.val.read(0, 1).batch(64)
                            .as_numpy_iterator()])
  assert targets.shape == (data.val.num_examples, 4) and set(np.unique(targets)) <= {0, 1}
  assert targets.sum(axis=0).min() >= 1  # the rare label (5 images) has a validation image
  assert abs(data.val.num_examples - 8) <= 1  # a fifth, give or take the greedy placing


def test_iterative_stratification_keeps_each_labels_fraction():
  rng = np.random.default_rng(1)
  targets = rng.random((500, 6)) < np.array([0.5, 0.3, 0.2, 0.1, 0.04, 0.02])
  train, val = splits.iterative_stratified_split(targets, val_fraction=0.2, seed=0)
  assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 500
  assert abs(len(val) - 100) <= 1
  share = targets[val].sum(axis=0) / targets.sum(axis=0)
  assert np.all(np.abs(share - 0.2) < 0.05), share
  again = splits.iterative_stratified_split(targets, val_fraction=0.2, seed=0)
  assert np.array_equal(val, again[1])  # seeded


def test_a_csv_of_a_folder_makes_the_same_splits_as_the_folder(tmp_path):
  root = write_image_folder(tmp_path / 'folder', per_class=10)
  listed = sorted(root.rglob('*.*'))
  path = _write(tmp_path / 'm.csv', 'path,label\n' + ''.join(
      f'{file.relative_to(tmp_path)},{file.parent.name}\n' for file in listed))
  from_csv = sources.load(_config(path), seed=3)
  from_folder = sources.load(tiny_config(data__source='folder', data__path=str(root),
                                         data__max_examples_per_class=0).data, seed=3)
  assert from_csv.class_names == from_folder.class_names
  for csv_split, folder_split in ((from_csv.train, from_folder.train),
                                  (from_csv.val, from_folder.val)):
    assert csv_split.paths == folder_split.paths
    assert csv_split.class_counts == folder_split.class_counts


def test_manifest_read_from_config_parses_label_columns(tmp_path):
  path = _write(tmp_path / 'm.csv', 'path,cat,dog\na.jpg,1,0\n')
  read = manifest_source.read(_config(path, label_columns=' cat, dog '))
  assert read.class_names == ('cat', 'dog') and read.rows[0].labels == ('cat',)
  assert json.loads(json.dumps(read.rows[0].labels)) == ['cat']


def test_a_manifest_judged_by_a_model_matches_labels_by_name(tmp_path):
  from tftransfer import restore
  _images(tmp_path, [f'{i}.png' for i in range(6)])
  path = _write(tmp_path / 'test.csv', 'path,label,split\n0.png,dog,train\n1.png,cat,test\n'
                '2.png,dog,test\n3.png,cat,validation\n')
  columns = {'split_column': 'split'}
  split, report = restore.judged_data(path, ('bird', 'cat', 'dog'), max_pixels=0,
                                      columns=columns)
  assert [os.path.basename(p) for p in split.paths] == ['1.png', '2.png']  # the test rows
  labels = [int(label) for _, label in split.read(0, 1).as_numpy_iterator()]
  assert labels == [1, 2] and report['split_sizes'] == {'judged': 2}
  multi, _ = restore.judged_data(path, ('bird', 'cat', 'dog'), max_pixels=0, columns=columns,
                                 multi_label=True)
  assert [label.tolist() for _, label in multi.read(0, 1).as_numpy_iterator()] == [
      [0, 1, 0], [0, 0, 1]]
  with pytest.raises(errors.InvalidValueError, match=r"--data='.*test.csv' has classes "
                     r"\['dog'\] that are not classes of the model"):
    restore.judged_data(path, ('bird', 'cat'), max_pixels=0, columns=columns)
  several = _write(tmp_path / 'several.csv', 'path,label\n0.png,cat\n1.png,"cat,dog"\n')
  with pytest.raises(errors.InvalidValueError, match=r"line 3 gives \['cat', 'dog'\], but the "
                     'model is single-label'):
    restore.judged_data(several, ('cat', 'dog'), max_pixels=0,
                        columns={'label_delimiter': ','})


def test_a_second_manifest_validates_with_the_same_columns(tmp_path):
  _images(tmp_path, [f'{i}.png' for i in range(8)])
  train = _write(tmp_path / 'train.csv', 'file,kind\n' + ''.join(
      f'{i}.png,{"cat" if i % 2 else "dog"}\n' for i in range(6)))
  val = _write(tmp_path / 'val.csv', 'file,kind\n6.png,dog\n7.png,dog\n')
  data = sources.load(_config(train, val_path=val, image_column='file', label_column='kind'),
                      seed=0)
  assert data.train.num_examples == 6
  assert sorted(os.path.basename(p) for p in data.val.paths) == ['6.png', '7.png']
  assert data.val.class_counts == (0, 2) and 'validated on manifest' in data.description
  other = _write(tmp_path / 'other.csv', 'file,kind\n6.png,bird\n')
  with pytest.raises(errors.InvalidValueError, match=r"config.data.val_path='.*other.csv' has "
                     r"classes \['bird'\]"):
    sources.load(_config(train, val_path=other, image_column='file', label_column='kind'),
                 seed=0)
