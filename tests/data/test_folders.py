"""The image-folder scan: messy real-world folders, the bad-image policy, the report, the cache."""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from tftransfer import errors
from tftransfer.data import dataset, folders, image_ops, scan, sources
from tftransfer.evaluation import evaluate
from tftransfer.training import loop
from tests.helpers import (MAX_IMAGE_PIXELS, SHARED_TRAIN, png_claiming, tiny_config,
                     write_image_folder)


def _relative(scan, root):
  return sorted(os.path.relpath(path, root) for path in scan.files)


def _folder_config(root, **overrides):
  return tiny_config(data__source='folder', data__path=str(root), data__val_fraction=0.2,
                     data__max_examples_per_class=0, **overrides)


def test_scan_keeps_exactly_the_decodable_images(messy_folder, caplog):
  root, valid, broken = messy_folder
  scan = folders.scan_folder(str(root), max_image_pixels=MAX_IMAGE_PIXELS)
  assert re.search(r'1 files directly under .* belong to no class folder .*\(unsorted\.jpg\)',
                   caplog.text)
  assert scan.class_names == ('cat', 'dog', 'émeu')
  assert _relative(scan, root) == valid
  assert [path for path, _ in scan.skipped] == sorted(broken)
  for path, reason in scan.skipped:
    assert broken[path] in reason, (path, reason)
    assert not re.search('Op:|function_node|name:', reason), reason  # TF's decoration
  # Nested folders belong to their top-level class; the listing is sorted within a class.
  assert [os.path.relpath(path, root) for path in scan.files][:2] == ['cat/anim.gif',
                                                                       'cat/cmyk.jpg']
  assert scan.class_counts == (8, 8, 4)
  assert scan.ignored == {'.txt': 1, '.db': 1}
  assert scan.hidden == 4  # .cache/, cat/.DS_Store, dog/.hidden.jpg, dog/.thumbnails/
  assert not scan.from_cache


def test_odd_formats_decode_to_the_right_rgb(messy_folder):
  root, _, _ = messy_folder

  def decode(path):
    image = image_ops.decode_image(tf.io.read_file(str(root / path)),
                                   max_pixels=MAX_IMAGE_PIXELS).numpy()
    assert image.shape == (24, 20, 3) and image.dtype == np.uint8, path
    return image

  reference = decode('dog/Mixed.Png')  # a plain RGB PNG: the pixels every copy was made from
  for lossless in ('cat/rgba.png', 'cat/deep.png', 'cat/photo.webp', 'cat/image.bmp',
                   'dog/png_named.jpg'):
    np.testing.assert_array_equal(decode(lossless), reference, err_msg=lossless)
  gray = decode('cat/gray.jpg')
  assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 0],
                                                                         gray[..., 2])
  # CMYK JPEG converted to RGB, and the GIF's first frame (not the inverted second one).
  for approximate in ('cat/cmyk.jpg', 'cat/anim.gif', 'cat/palette.png'):
    assert np.abs(decode(approximate).astype(int) - reference).mean() < 40, approximate


def test_a_class_without_usable_images_is_an_error_naming_it(messy_folder):
  root, _, _ = messy_folder
  (root / 'empty').mkdir()
  (root / 'empty' / 'readme.txt').write_text('nothing here')
  (root / 'ruined').mkdir()
  (root / 'ruined' / 'zero.jpg').write_bytes(b'')
  with pytest.raises(ValueError, match=r'without any usable image.*empty \(no image files\), '
                     r'ruined \(1 undecodable image files\)'):
    folders.scan_folder(str(root), max_image_pixels=MAX_IMAGE_PIXELS)


@pytest.mark.slow
def test_training_on_a_messy_folder_skips_and_reports(messy_folder, tmp_path):
  root, valid, broken = messy_folder
  workdir = tmp_path / 'run'
  final = loop.train_and_evaluate(_folder_config(root), str(workdir))
  assert final["step"] == 2  # 15 training images, batches of 8: one step per epoch, 2 epochs
  report = json.loads((workdir / 'data_report.json').read_text())
  assert report['classes'] == [{'name': 'cat', 'train': 6, 'val': 2},
                               {'name': 'dog', 'train': 6, 'val': 2},
                               {'name': 'émeu', 'train': 3, 'val': 1}]
  assert report['split_sizes'] == {'train': 15, 'val': 5}
  assert report['scan']['usable_images'] == len(valid) == 20
  assert {row['file']: row['reason'] for row in report['scan']['skipped']}.keys() == broken.keys()
  assert report['scan']['ignored_non_images'] == {'.db': 1, '.txt': 1}
  assert report['warnings'] == []
  assert json.loads((workdir / 'data.json').read_text())['class_names'] == ['cat', 'dog',
                                                                              'émeu']


@pytest.mark.slow
def test_a_folder_changed_since_the_run_started_is_refused(messy_folder, tmp_path):
  # Export and predict name classes from data.json: a renamed class folder must not
  # silently relabel a trained head.
  root, _, _ = messy_folder
  workdir = tmp_path / 'run'
  loop.train_and_evaluate(_folder_config(root), str(workdir))
  os.rename(root / 'cat', root / 'zebra')
  with pytest.raises(ValueError, match=r"class_names: \['cat', 'dog', 'émeu'\] -> "
                                       r"\['dog', 'zebra', 'émeu'\].*new --workdir"):
    loop.train_and_evaluate(_folder_config(root), str(workdir))
  assert json.loads((workdir / 'data.json').read_text())['class_names'][0] == 'cat'
  # Nor may evaluation score it on a 'validation split' carved from other data.
  with pytest.raises(ValueError, match=r'data changed since .*class_names'):
    evaluate.evaluate_workdir(str(workdir))


def test_on_bad_image_fail_stops_before_training_naming_the_files(messy_folder, tmp_path):
  root, _, broken = messy_folder
  workdir = tmp_path / 'run'
  with pytest.raises(folders.BadImagesError) as error:
    loop.train_and_evaluate(_folder_config(root, data__on_bad_image='fail'), str(workdir))
  for path, reason in broken.items():
    assert path in str(error.value) and reason in str(error.value)
  assert '--config.data.on_bad_image=skip' in str(error.value)
  assert not (workdir / 'config.json').exists() and not (workdir / 'checkpoints').exists()


def test_unchanged_folder_is_served_from_the_scan_cache(messy_folder, tmp_path, monkeypatch):
  root, _, broken = messy_folder
  cache = str(tmp_path / 'folder_scan.json')
  first = folders.scan_folder(str(root), max_image_pixels=MAX_IMAGE_PIXELS,
                              cache_path=cache)
  decodes = []
  real = scan._undecodable
  monkeypatch.setattr(scan, '_undecodable',
                      lambda *args, **kwargs: decodes.append(args) or real(*args, **kwargs))
  again = folders.scan_folder(str(root), max_image_pixels=MAX_IMAGE_PIXELS,
                              cache_path=cache)
  assert again.from_cache and not decodes
  assert again.files == first.files and again.skipped == first.skipped
  # A repaired file changes the fingerprint (size, modification time): scanned again.
  (root / 'cat' / 'zero.jpg').write_bytes((root / 'dog' / 'UPPER.JPG').read_bytes())
  repaired = folders.scan_folder(str(root), max_image_pixels=MAX_IMAGE_PIXELS,
                              cache_path=cache)
  assert len(decodes) == 1 and not repaired.from_cache
  assert len(repaired.files) == len(first.files) + 1
  assert [path for path, _ in repaired.skipped] == sorted(set(broken) - {'cat/zero.jpg'})


@pytest.mark.slow
def test_resumed_run_does_not_scan_again(messy_folder, tmp_path, monkeypatch):
  root, _, _ = messy_folder
  workdir = tmp_path / 'run'
  config = _folder_config(root, train__max_steps=1)
  loop.train_and_evaluate(config, str(workdir))
  monkeypatch.setattr(scan, '_undecodable',
                      lambda *args, **kwargs: pytest.fail('scanned again'))
  loop.train_and_evaluate(_folder_config(root, train__max_steps=2), str(workdir))
  assert json.loads((workdir / 'data_report.json').read_text())['scan']['from_cache']


def test_badly_imbalanced_classes_are_warned_about(messy_folder):
  root, _, _ = messy_folder
  data = sources.load(_folder_config(root, data__imbalance_warning_ratio=1.5).data, seed=0)
  assert len(data.warnings) == 1
  assert "'cat' has 6 training examples, 'émeu' 3" in data.warnings[0]
  assert data.report()['warnings'] == list(data.warnings)
  quiet = sources.load(_folder_config(root, data__imbalance_warning_ratio=0).data, seed=0)
  assert not quiet.warnings


@pytest.mark.shared_data
def test_shared_cifar10_folder_scans_clean():
  scan = folders.scan_folder(str(SHARED_TRAIN), max_image_pixels=MAX_IMAGE_PIXELS)
  assert scan.class_names[:3] == ('airplane', 'automobile', 'bird')
  assert scan.class_counts == (5000,) * 10
  assert not scan.skipped and not scan.ignored


def test_the_scan_applies_the_one_pixel_limit_before_decoding(tmp_path):
  # Issue 11 kind 6: the scan admits a 48 MP phone photo (8064 x 6048) under the default
  # limit that serving applies too, and refuses a decompression bomb from its header.
  root = write_image_folder(tmp_path / 'images', classes=('cat', 'dog'), per_class=2)
  (root / 'cat' / 'phone.jpg').write_bytes(tf.io.encode_jpeg(
      tf.fill([6048, 8064, 3], tf.constant(90, tf.uint8)), quality=50).numpy())
  (root / 'dog' / 'bomb.png').write_bytes(png_claiming(100_000, 100_000))
  cache = str(tmp_path / 'folder_scan.json')
  scan = folders.scan_folder(str(root), max_image_pixels=MAX_IMAGE_PIXELS, cache_path=cache)
  assert scan.class_counts == (3, 2)
  assert scan.skipped == (('dog/bomb.png', 'image is 1 frame(s) of 100000 x 100000 pixels, '
                           f'more than the {MAX_IMAGE_PIXELS} of data.max_image_pixels; use a '
                           'smaller image.'),)
  assert scan.summary()['largest_image_pixels'] == 8064 * 6048
  # Another limit is another scan, not the cached verdicts.
  smaller = folders.scan_folder(str(root), max_image_pixels=8064 * 6048 - 1, cache_path=cache)
  assert not smaller.from_cache and smaller.class_counts == (2, 2)
  assert [path for path, _ in smaller.skipped] == ['cat/phone.jpg', 'dog/bomb.png']


def test_a_class_name_in_two_unicode_forms_is_one_class_and_two_folders_of_it_an_error(tmp_path):
  nfc, nfd = 'caf\u00e9', 'cafe\u0301'  # what Linux and macOS write for 'café'
  for root, names in (('mac', (nfd, 'dog')), ('both', (nfc, nfd, 'dog'))):
    for name in names:
      os.makedirs(tmp_path / root / name)
  assert folders.list_folder(str(tmp_path / 'mac')).class_names == (nfc, 'dog')
  with pytest.raises(errors.InvalidValueError) as raised:
    folders.list_folder(str(tmp_path / 'both'))
  assert repr(nfc) in str(raised.value) and repr(nfd) in str(raised.value)
  # Printed alike, so the message spells them apart too.
  assert {ascii(nfc), ascii(nfd)} == {"'caf\\xe9'", "'cafe\\u0301'"}
  assert ascii(nfc) in str(raised.value) and ascii(nfd) in str(raised.value)
  # A model trained on either form judges a folder written in the other.
  assert list(dataset.class_labels([nfd, 'dog'], ('dog', nfc), what='--data')) == [1, 0]
  assert list(dataset.class_labels([nfc], (nfd, 'dog'), what='--data')) == [0]
