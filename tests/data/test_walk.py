"""Linked folders: followed everywhere, each real folder listed once, cycles and duplicates
skipped and reported (issue 11 kind 2)."""

import json
import os

import pytest

from tftransfer import errors
from tftransfer.data import folders, walk
from tftransfer.serving import prediction
from tftransfer.training import loop
from tests.helpers import MAX_IMAGE_PIXELS, tiny_config, write_image_folder


def _scan(root):
  return folders.scan_folder(str(root), max_image_pixels=MAX_IMAGE_PIXELS)


@pytest.fixture
def linked(tmp_path):
  """cat/ with 6 images and a link cat/more -> elsewhere/cats with 20; dog/ with 6."""
  root = write_image_folder(tmp_path / 'images', classes=('cat', 'dog'), per_class=6)
  elsewhere = write_image_folder(tmp_path / 'elsewhere', classes=('cats',), per_class=20)
  os.symlink(elsewhere / 'cats', root / 'cat' / 'more')
  return root, elsewhere


def test_a_linked_sub_folder_is_followed_and_reported(linked):
  root, elsewhere = linked
  scan = _scan(root)
  assert scan.class_counts == (26, 6)
  assert sum(path.startswith(str(root / 'cat' / 'more')) for path in scan.files) == 20
  assert scan.summary()['links'] == {
      'followed': [{'link': 'cat/more', 'target': str(elsewhere / 'cats')}], 'skipped': []}


def test_cycles_and_second_links_are_skipped_not_looped_or_counted_twice(linked):
  root, elsewhere = linked
  os.symlink('..', root / 'cat' / 'up')  # the root: every class again
  os.symlink('.', root / 'dog' / 'self')  # its own folder
  os.symlink(elsewhere / 'cats', root / 'dog' / 'cats_again')  # already under cat/more
  os.symlink(root / 'cat', root / 'dog' / 'kittens')  # another class's real folder
  os.symlink(root / 'nowhere', root / 'dog' / 'broken.jpg')  # points at nothing
  scan = _scan(root)
  assert scan.class_counts == (26, 6)
  skipped = {row['link']: row['reason'] for row in scan.summary()['links']['skipped']}
  assert skipped.keys() == {'cat/up', 'dog/self', 'dog/cats_again', 'dog/kittens',
                            'dog/broken.jpg'}
  assert 'cycle' in skipped['cat/up'] and 'cycle' in skipped['dog/self']
  assert skipped['dog/cats_again'] == f'the same folder as {root}/cat/more, already listed'
  assert skipped['dog/kittens'] == f'the same folder as {root}/cat, already listed'
  assert skipped['dog/broken.jpg'] == 'its target does not exist'


def test_a_real_folder_wins_over_a_link_to_it_whatever_the_names(tmp_path):
  # 'a_cat' sorts before 'b_dog': the link in it is met first, yet the images stay in b_dog.
  root = write_image_folder(tmp_path / 'images', classes=('a_cat', 'b_dog'), per_class=2)
  write_image_folder(root / 'b_dog', classes=('sub',), per_class=3)
  os.symlink(root / 'b_dog' / 'sub', root / 'a_cat' / 'borrowed')
  scan = _scan(root)
  assert scan.class_counts == (2, 5)
  assert [row['link'] for row in scan.summary()['links']['skipped']] == ['a_cat/borrowed']


def test_a_class_folder_that_is_a_link_is_followed_unless_it_duplicates_another(linked):
  root, elsewhere = linked
  os.symlink(elsewhere / 'cats', root / 'tiger')
  # The class folder's link wins over the link inside another class (cat/more).
  scan = _scan(root)
  assert scan.class_counts == (6, 6, 20)
  assert scan.summary()['links']['skipped'] == [{
      'link': 'cat/more', 'target': str(elsewhere / 'cats'),
      'reason': f'the same folder as {root}/tiger, already listed'}]
  os.symlink(root / 'dog', root / 'wolf')
  with pytest.raises(errors.InvalidValueError,
                     match=rf'Class folder {root}/wolf links to {root}/dog: the same folder as'):
    _scan(root)


def test_training_and_predict_follow_the_same_links(linked, tmp_path):
  root, _ = linked
  workdir = tmp_path / 'run'
  loop.train_and_evaluate(tiny_config(data__source='folder', data__path=str(root),
                                      data__val_fraction=0.2, data__max_examples_per_class=0,
                                      train__max_steps=1), str(workdir))
  report = json.loads((workdir / 'data_report.json').read_text())
  assert [(row['name'], row['train'] + row['val']) for row in report['classes']] == [
      ('cat', 26), ('dog', 6)]
  assert report['scan']['links']['followed'][0]['link'] == 'cat/more'
  assert len(prediction.image_files([str(root / 'cat')])) == 26
  assert walk.walk_images(str(root / 'cat' / 'more')).images == sorted(
      str(root / 'cat' / 'more' / name) for name in os.listdir(root / 'cat' / 'more'))
