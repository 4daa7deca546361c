"""tft.ImageData: every source, its size and classes, a stratified split, and the bad inputs
refused before anything runs."""

import numpy as np
import pytest

import tftransfer as tft
from tftransfer import errors
from tftransfer.api import data as data_lib
from tests.helpers import write_image_folder

NAMES = ['cat', 'dog', 'frog']


def _pixels(count, size=(20, 16)):
  return np.random.default_rng(0).integers(0, 256, (count, *size, 3), dtype=np.uint8)


def test_a_folder_has_its_classes_length_and_a_stratified_split(tmp_path):
  root = write_image_folder(tmp_path / 'images', per_class=10)
  data = tft.ImageData.from_folder(str(root))
  assert data.class_names == tuple(NAMES) and len(data) == 30
  train, validation = data.split(0.2, seed=3)
  assert (len(train), len(validation)) == (24, 6)  # two of each class held out
  assert repr(validation) == f"ImageData.from_folder({str(root)!r}).split(0.2, seed=3)[1]"
  with pytest.raises(errors.InvalidValueError, match='already one side of a split'):
    train.split(0.5)
  with pytest.raises(errors.InvalidValueError, match=r'split\(fraction=1.5\)'):
    data.split(1.5)
  with pytest.raises(errors.NotFoundError, match='is not a directory'):
    tft.ImageData.from_folder(str(tmp_path / 'nothing'))


def test_arrays_of_any_size_and_grey_ones_are_taken(tmp_path):
  images = [_pixels(1, (12, 30))[0], _pixels(1, (40, 8))[0][..., 0]]  # grey [H, W] too
  data = tft.ImageData.from_arrays(images, [0, 1], ['a', 'b'])
  assert len(data) == 2 and data.class_names == ('a', 'b')
  assert data.arrays.images[1].shape == (40, 8, 3)
  # Its repr names the source, as a notebook cell prints it (a trial found it crashing).
  assert repr(data) == 'ImageData.from_arrays(<2 images>)'
  assert repr(data.split(0.5, seed=1)[1]) == (
      'ImageData.from_arrays(<2 images>).split(0.5, seed=1)[1]')
  grey = tft.ImageData.from_arrays(_pixels(4)[..., 0], [0, 1, 0, 1], ['a', 'b'])
  assert grey.arrays.images[0].shape == (20, 16, 3)
  # Written as a folder, in their order, losslessly: the folder the run then trains on.
  folder = tmp_path / 'written'
  data.write_arrays(str(folder))
  assert sorted(p.name for p in (folder / 'a').iterdir()) == ['0.png']
  written = tft.ImageData.from_folder(str(folder))
  assert written.class_names == ('a', 'b') and len(written) == 2
  mtime = (folder / 'a' / '0.png').stat().st_mtime_ns
  data.write_arrays(str(folder))  # the same arrays again: left as they are
  assert (folder / 'a' / '0.png').stat().st_mtime_ns == mtime


@pytest.mark.parametrize('images, labels, names, message', [
    (_pixels(3).astype(np.float32) / 255, [0, 1, 2], NAMES,
     r'float32 \(largest value 1\); pass uint8 .* \(images \* 255\).round\(\)'),
    (_pixels(3).astype(np.float32), [0, 1, 2], NAMES, r'np.clip\(images, 0, 255\)'),
    (_pixels(3)[..., :2], [0, 1, 2], NAMES, r'shape \(20, 16, 2\)'),
    (_pixels(3), [0, 1, 3], NAMES, r'labels \[3\] are outside range\(3\)'),
    (_pixels(3), [0, 1], NAMES, r'labels has shape \(2,\) for 3 images'),
    (_pixels(3), [0.0, 1.0, 2.0], NAMES, 'labels are float64; pass integer'),
    (_pixels(0), [], NAMES, 'no images'),
    (_pixels(3), [1, 1, 1], NAMES, "every image is labelled 'dog'"),
    (_pixels(3), [0, 1, 1], ['cat', 'cat'], 'must be distinct'),
    (_pixels(3), [0, 1, 1], ['a/b', 'c'], "without '/'"),
    ('not images', [0], NAMES, 'images is a str'),
])
def test_bad_arrays_are_refused_naming_the_fix(images, labels, names, message):
  with pytest.raises(errors.InvalidValueError, match=message):
    tft.ImageData.from_arrays(images, labels, names)


def test_the_config_says_what_the_data_is(tmp_path):
  root = write_image_folder(tmp_path / 'images', per_class=4)
  folder = tft.ImageData.from_folder(str(root))
  train, validation = folder.split(0.25, seed=2)
  assert data_lib.run_fields(train, validation, images_dir=str(tmp_path)) == {
      'data.source': 'folder', 'data.path': str(root), 'data.val_fraction': 0.25,
      'data.split_seed': 2}
  other = tft.ImageData.from_folder(str(write_image_folder(tmp_path / 'val', per_class=2)))
  assert data_lib.run_fields(folder, other, images_dir=str(tmp_path))['data.val_path'] == (
      other.path)
  arrays = tft.ImageData.from_arrays(_pixels(4), [0, 1, 0, 1], ['a', 'b'])
  fields = data_lib.run_fields(arrays, None, images_dir=str(tmp_path / 'images_dir'))
  assert fields['data.path'] == str(tmp_path / 'images_dir' / 'train')
  assert data_lib.run_fields(tft.ImageData.from_tfds('cifar10', split='train[:90%]'),
                             tft.ImageData.from_tfds('cifar10', split='train[90%:]'),
                             images_dir='') == {
      'data.source': 'tfds', 'data.name': 'cifar10', 'data.train_split': 'train[:90%]',
      'data.data_dir': '', 'data.eval_split': 'train[90%:]'}
  with pytest.raises(errors.InvalidValueError, match='is the validation side of a split'):
    data_lib.run_fields(validation, None, images_dir='')
  with pytest.raises(errors.InvalidValueError, match='not its other side'):
    data_lib.run_fields(train, other, images_dir='')
  with pytest.raises(errors.InvalidValueError, match='pass a tft.ImageData'):
    data_lib.run_fields(str(root), None, images_dir='')


def _tag_table(tmp_path):
  from tests.helpers import write_tag_manifest
  return write_tag_manifest(tmp_path / 'tags', count=30)


def test_a_csv_is_read_now_and_names_its_bad_line(tmp_path):
  manifest = _tag_table(tmp_path)
  data = tft.ImageData.from_csv(str(manifest), label_column='tags', label_delimiter='|')
  assert data.class_names == ('blue_bottom', 'green_right', 'red_top_left')
  assert len(data) == 30
  train, validation = data.split(0.2, seed=1)
  assert len(train) + len(validation) == 30 and 4 <= len(validation) <= 8
  assert data_lib.run_fields(train, validation, images_dir=str(tmp_path)) == {
      'data.source': 'csv', 'data.path': str(manifest), 'data.image_column': 'path',
      'data.label_column': 'tags', 'data.label_delimiter': '|', 'data.label_columns': '',
      'data.split_column': '', 'data.val_fraction': 0.2, 'data.split_seed': 1}
  bad = tmp_path / 'bad.csv'
  bad.write_text('path,label\na.png,cat\nb.png\n')
  with pytest.raises(errors.InvalidValueError, match=r'bad.csv: line 3 has 1 cells'):
    tft.ImageData.from_csv(str(bad))
  with pytest.raises(errors.InvalidValueError, match=r"no column 'tag'.* did you mean "
                     "'tags'"):
    tft.ImageData.from_csv(str(manifest), label_column='tag')


def test_a_dataframe_is_a_manifest_with_lists_and_0_1_columns(tmp_path):
  pandas = pytest.importorskip('pandas')
  manifest = _tag_table(tmp_path)
  rows = [line.split(',') for line in manifest.read_text().splitlines()[1:]]
  lists = pandas.DataFrame({'file': [path for path, _ in rows],
                            'tags': [tags.split('|') for _, tags in rows]})
  data = tft.ImageData.from_dataframe(lists, image_column='file', label_column='tags',
                                      root=str(manifest.parent))
  assert data.class_names == ('blue_bottom', 'green_right', 'red_top_left') and len(data) == 30
  names = ['blue_bottom', 'green_right', 'red_top_left']
  # 0/1 columns as pandas reads them from a spreadsheet with a gap: floats, with a NaN.
  columns = pandas.DataFrame({'path': [str(manifest.parent / path) for path, _ in rows],
                              **{name: [float(name in tags.split('|')) for _, tags in rows]
                                 for name in names}})
  columns.loc[0, 'green_right'] = float('nan')
  by_columns = tft.ImageData.from_dataframe(columns, label_columns=names)
  assert by_columns.class_names == tuple(names) and len(by_columns) == 30
  assert repr(by_columns) == 'ImageData.from_dataframe(<30 rows>)'
  fields = data_lib.run_fields(by_columns, None, images_dir=str(tmp_path / 'images'))
  assert fields['data.path'].startswith(str(tmp_path / 'images'))  # kept with the run
  assert fields['data.label_columns'] == ','.join(names)
  broken = pandas.DataFrame({'path': ['a.png', 'b.png'], 'label': ['cat', None]})
  with pytest.raises(errors.InvalidValueError, match=r"line 2 has no label in column 'label'"):
    tft.ImageData.from_dataframe(broken)
  with pytest.raises(errors.InvalidValueError, match='frame is a list; pass a pandas'):
    tft.ImageData.from_dataframe([{'path': 'a.png'}])


def test_from_dataframe_without_pandas_says_how_to_get_it(monkeypatch):
  import sys
  monkeypatch.setitem(sys.modules, 'pandas', None)
  with pytest.raises(ImportError, match=r'needs pandas.*pip install pandas.*from_csv'):
    tft.ImageData.from_dataframe(object())
