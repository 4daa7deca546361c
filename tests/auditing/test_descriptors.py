"""What the audit knows of each image besides its features: hashes, thumbnails, crop windows."""

import io

import numpy as np
from PIL import Image, PngImagePlugin
import tensorflow as tf

from tests.helpers import MAX_IMAGE_PIXELS, smooth_picture
from tftransfer.auditing import descriptors, duplicates
from tftransfer import restore


def _describe(pictures, crop=0.1):
  def each(describe, *args):
    return np.stack([describe(tf.constant(p), *args).numpy() for p in pictures])
  windows = [descriptors.windows(tf.constant(p), crop) for p in pictures]
  return descriptors.Descriptors(
      np.zeros(len(pictures), np.uint64), np.zeros(len(pictures), np.uint64),
      each(descriptors.thumbnail), np.stack([thumbnails.numpy() for thumbnails, _ in windows]),
      each(descriptors.mean_colour), np.stack([colours.numpy() for _, colours in windows]))


def _jpeg(picture, quality):
  buffer = io.BytesIO()
  Image.fromarray(picture).save(buffer, 'JPEG', quality=quality)
  return np.asarray(Image.open(buffer).convert('RGB'))


def _stripes(foreground, background, period=6):
  """uint8 [32, 32, 3]: vertical two-colour stripes, the quickstart textures' kind."""
  mask = (np.arange(32) // (period // 2)) % 2 == 0
  return np.where(mask[np.newaxis, :, np.newaxis], foreground, background).repeat(
      32, axis=0).astype(np.uint8)


def test_a_layout_in_other_colours_is_not_a_pixel_near_duplicate_and_copies_are():
  original = _stripes((200, 40, 40), (30, 30, 120))
  repainted = _stripes((40, 200, 90), (120, 20, 160))  # the same layout, another palette
  copies = [original[:, ::-1], original[2:31, 1:30], _jpeg(original, 30)]
  described = _describe([original, repainted] + copies)
  pairs = np.array([[0, 1], [0, 2], [0, 3], [0, 4]])
  # The grey, mean-centred thumbnail cannot tell the palettes apart...
  aligned = descriptors.aligned_similarity(described, pairs)
  assert aligned.min() >= 0.99, aligned
  # ...their colours can: measured 0.0 (mirror), 0.0 (crop), 0.9 (JPEG); 94.9 repainted.
  distance = descriptors.colour_distance(described, pairs)
  assert distance[0] > 50 and distance[1:].max() < 3, distance
  np.testing.assert_allclose(descriptors.colour_distance(described, pairs[:, ::-1]), distance,
                             atol=1e-4)
  similarity = descriptors.pixel_similarity(described, pairs, max_colour_distance=16)
  assert similarity[0] == -1 and np.all(similarity[1:] == aligned[1:]), similarity


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


def test_a_crop_is_compared_with_the_colour_of_the_window_it_shows():
  pictures = []
  for seed in range(20):
    pictures += [smooth_picture(seed), smooth_picture(seed)[3:, 3:]]  # a 10 % corner crop
  described = _describe(pictures)
  pairs = np.arange(40).reshape(20, 2)
  whole = np.linalg.norm(described.colours[pairs[:, 0]] - described.colours[pairs[:, 1]], axis=1)
  # Measured: the whole squares' mean colours 2.0-11.0 levels apart, the aligned 0.0-0.1.
  assert whole.max() > 8, whole
  assert descriptors.colour_distance(described, pairs).max() < 1, whole


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
