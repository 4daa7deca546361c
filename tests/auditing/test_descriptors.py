"""What the audit knows of each image besides its features: hashes, thumbnails, crop windows."""

import io

import numpy as np
from PIL import Image, PngImagePlugin
import tensorflow as tf

from tests.helpers import MAX_IMAGE_PIXELS, smooth_picture
from tftransfer.auditing import descriptors, duplicates
from tftransfer import restore


def _describe(pictures, crop=0.1):
  return descriptors.Descriptors(
      np.zeros(len(pictures), np.uint64), np.zeros(len(pictures), np.uint64),
      np.stack([descriptors.thumbnail(tf.constant(p)).numpy() for p in pictures]),
      np.stack([descriptors.window_thumbnails(tf.constant(p), crop).numpy() for p in pictures]))


def test_crop_windows_align_every_crop_up_to_the_configured_fraction():
  original = smooth_picture(0)
  # Every 29 px window (a 10 % crop) and every 30 px window (about 6 %) of the 32 px picture.
  crops = ([original[top:top + 29, left:left + 29] for top in range(4) for left in range(4)]
           + [original[top:top + 30, left:left + 30] for top in range(3) for left in range(3)])
  described = _describe([original] + crops)
  pairs = np.array([[0, number] for number in range(1, len(crops) + 1)])
  aligned = descriptors.aligned_similarity(described, pairs)
  whole = described.thumbnails[1:] @ described.thumbnails[0]
  # Measured: aligned 0.9905-1.0 for all 25; whole pictures 0.866-0.995, 24 below 0.99.
  assert aligned.min() >= 0.985, aligned
  assert np.sum(whole < 0.99) >= 20, whole
  # The pair's order does not matter.
  np.testing.assert_allclose(descriptors.aligned_similarity(described, pairs[:, ::-1]),
                             aligned, atol=1e-6)


def test_distinct_pictures_do_not_align():
  described = _describe([smooth_picture(seed) for seed in range(40)])
  pairs = np.array([[0, other] for other in range(1, 40)])
  # Measured: at most 0.69.
  assert descriptors.aligned_similarity(described, pairs).max() < 0.85


def test_without_crop_windows_only_the_whole_picture_is_compared():
  original = smooth_picture(0)
  described = _describe([original, original[3:, 3:]], crop=0)
  assert described.window_thumbnails.shape == (2, 1, descriptors.THUMBNAIL_SIDE**2)
  aligned = descriptors.aligned_similarity(described, np.array([[0, 1]]))
  np.testing.assert_allclose(aligned, described.thumbnails[0] @ described.thumbnails[1],
                             atol=1e-6)


def _png(picture, **options):
  buffer = io.BytesIO()
  Image.fromarray(picture).save(buffer, 'PNG', **options)
  return buffer.getvalue()


def test_hashes_tell_a_byte_copy_from_the_same_pixels_saved_again(tmp_path):
  picture = smooth_picture(1)
  info = PngImagePlugin.PngInfo()
  info.add_text('Comment', 'saved again')
  files = {'original.png': _png(picture), 'copy.png': _png(picture),
           'resaved.png': _png(picture, compress_level=1, pnginfo=info),
           'other.png': _png(smooth_picture(2))}
  buffer = io.BytesIO()
  Image.fromarray(picture).save(buffer, 'JPEG', quality=95)
  files['reencoded.jpg'] = buffer.getvalue()
  (tmp_path / 'pictures').mkdir()
  for name, data in files.items():
    (tmp_path / 'pictures' / name).write_bytes(data)
  (tmp_path / 'others').mkdir()  # A folder of images needs two classes.
  (tmp_path / 'others' / 'third.png').write_bytes(_png(smooth_picture(3)))
  split, _ = restore.judged_data(str(tmp_path), ('others', 'pictures'),
                                 max_pixels=MAX_IMAGE_PIXELS)
  described = descriptors.compute(split, crop=0.1)
  index = {path.rsplit('/', 1)[-1]: number for number, path in enumerate(split.paths)}
  byte, pixel = described.byte_hashes, described.pixel_hashes
  assert byte[index['original.png']] == byte[index['copy.png']] != byte[index['resaved.png']]
  assert pixel[index['original.png']] == pixel[index['copy.png']] == pixel[index['resaved.png']]
  assert pixel[index['reencoded.jpg']] != pixel[index['original.png']]

  groups = duplicates.exact_groups(described)
  assert [sorted(split.paths[i].rsplit('/', 1)[-1] for i in g) for g in groups] == [
      ['copy.png', 'original.png', 'resaved.png']]
  assert duplicates.same_bytes(described, [index['original.png'], index['copy.png']])
  assert not duplicates.same_bytes(described, groups[0])
