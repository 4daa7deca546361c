"""What the audit knows of each image besides its backbone features: hashes and a thumbnail.

One tf.data pass decodes every image (with `image_ops.decode_image`, as training does) and
computes
  - a 64-bit fingerprint of the file's bytes (file sources only; 0 otherwise),
  - a 64-bit fingerprint of the decoded pixels and their shape (same picture, any encoding
    that decodes to it: a PNG saved twice with different compression),
  - a thumbnail descriptor: the central square shrunk to 8x8 by area averaging, grey,
    added to its mirror image (so a mirrored copy has the same descriptor), minus its mean,
    L2-normalised. Cosine similarity of these finds re-encoded, resized and mirrored copies
    that pooled backbone features, trained to ignore the exact picture, score lower than
    some distinct photos of one class (scripts/audit_cifar10.py measures both);
  - the same descriptor of 18 windows of the square: 9 of (1 - crop) of its side and 9 of
    (1 - crop / 2), each set at the corners, edge centres and centre (crop =
    config.audit.near_duplicate_crop). A copy that lost up to `crop` of its side has its
    whole-square thumbnail close to one of its original's windows (`aligned_similarity`);
    the whole-square thumbnail alone cannot see a 10 % crop: at 8x8 it shifts and scales
    every cell. (Measured on 4,000 CIFAR-10 images: `scripts/calibrate_audit.py`.)
  - the mean colour (RGB, 0-255) of the square and of each of those windows. The thumbnail
    is grey and mean-centred, so it cannot tell two two-colour textures of one layout in
    other palettes apart (the quickstart's textures: 138 such pairs above the thumbnail
    threshold, none a copy); copies keep their colours (`colour_distance`), so
    `pixel_similarity` requires both. (Measured: `scripts/measure_near_duplicates.py`.)

Fingerprints are TensorFlow's farmhash64 (`tf.fingerprint`): a collision between two of
50,000 different images has a probability of about 1e-10.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from tftransfer import passes
from tftransfer.data import image_ops
from tftransfer.data.dataset import Split

THUMBNAIL_SIDE = 8  # pixels of the thumbnail descriptor's side
_WINDOW_CANVAS = 64  # side the square is resampled to before its windows are cut
_PAIRS_PER_BLOCK = 16384  # pairs compared at once: 16,384 x 18 windows x 64 floats = 75 MB


@dataclasses.dataclass(frozen=True)
class Descriptors:
  """Per-image hashes and thumbnail descriptors, in the split's order."""
  byte_hashes: np.ndarray  # uint64 [N]; 0 when the source has no files
  pixel_hashes: np.ndarray  # uint64 [N]
  thumbnails: np.ndarray  # float32 [N, THUMBNAIL_SIDE**2], unit norm (0 for a flat image)
  # float32 [N, W, THUMBNAIL_SIDE**2]: the thumbnails of W windows (18, or 1 without crops)
  window_thumbnails: np.ndarray
  colours: np.ndarray  # float32 [N, 3]: the square's mean RGB, 0-255
  window_colours: np.ndarray  # float32 [N, W, 3]: each window's mean RGB, 0-255

  @staticmethod
  def concatenate(parts: list['Descriptors']) -> 'Descriptors':
    return Descriptors(*(np.concatenate([getattr(part, field.name) for part in parts])
                         for field in dataclasses.fields(Descriptors)))


def _fingerprint(value: tf.Tensor) -> tf.Tensor:
  """farmhash64 of a string scalar, as int64 (bit-cast)."""
  digest = tf.fingerprint(tf.expand_dims(value, 0))[0]  # uint8 [8]
  return tf.bitcast(digest, tf.int64)


def _central_square(image: tf.Tensor) -> tf.Tensor:
  shape = tf.shape(image)
  side = tf.minimum(shape[0], shape[1])
  top, left = (shape[0] - side) // 2, (shape[1] - side) // 2
  return tf.cast(image[top:top + side, left:left + side], tf.float32)


def _describe_squares(squares: tf.Tensor) -> tf.Tensor:
  """float32 [B, S, S, 3] -> [B, THUMBNAIL_SIDE**2]: shrunk, grey, mirror-symmetric, unit."""
  small = tf.image.resize(squares, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), method='area')
  grey = tf.reduce_mean(small, axis=-1)
  symmetric = grey + tf.reverse(grey, axis=[2])
  flat = tf.reshape(symmetric, [tf.shape(squares)[0], -1])
  centred = flat - tf.reduce_mean(flat, axis=1, keepdims=True)
  return tf.math.divide_no_nan(centred, tf.norm(centred, axis=1, keepdims=True))


def thumbnail(image: tf.Tensor) -> tf.Tensor:
  """uint8 [H, W, 3] -> float32 [THUMBNAIL_SIDE**2]: the mirror-symmetric grey descriptor."""
  return _describe_squares(_central_square(image)[tf.newaxis])[0]


def mean_colour(image: tf.Tensor) -> tf.Tensor:
  """uint8 [H, W, 3] -> float32 [3]: the central square's mean RGB, 0-255."""
  return tf.reduce_mean(_central_square(image), axis=[0, 1])


def _windows(image: tf.Tensor, crop: float) -> list[tf.Tensor]:
  """The central square's windows of (1 - crop / 2) and (1 - crop) of its side, 9 of each
  size (corners, edge centres, centre; row-major), each float32 [9, size, size, 3]."""
  canvas = tf.image.resize(_central_square(image), (_WINDOW_CANVAS, _WINDOW_CANVAS),
                           antialias=True)
  stacks = []
  for fraction in (crop / 2, crop):
    size = round(_WINDOW_CANVAS * (1 - fraction))
    offsets = (0, (_WINDOW_CANVAS - size) // 2, _WINDOW_CANVAS - size)
    stacks.append(tf.stack([canvas[top:top + size, left:left + size]
                            for top in offsets for left in offsets]))
  return stacks


def windows(image: tf.Tensor, crop: float) -> tuple[tf.Tensor, tf.Tensor]:
  """uint8 [H, W, 3] -> (float32 [18, THUMBNAIL_SIDE**2], float32 [18, 3]): the thumbnail
  descriptors and the mean RGB (0-255) of the central square's windows of (1 - crop / 2) and
  of (1 - crop) of its side, 9 of each size (corners, edge centres, centre; row-major); of
  the whole square alone ([1, ...] each) when crop is 0.

  The square is first resampled to 64 px (antialiased) so windows fall on half pixels of a
  32 px image, where a 10 % crop's offsets do.
  """
  if crop == 0:
    return thumbnail(image)[tf.newaxis], mean_colour(image)[tf.newaxis]
  stacks = _windows(image, crop)
  return (tf.concat([_describe_squares(stack) for stack in stacks], 0),
          tf.concat([tf.reduce_mean(stack, axis=[1, 2]) for stack in stacks], 0))


def aligned_similarity(descriptors: 'Descriptors', pairs: np.ndarray) -> np.ndarray:
  """float32 [M]: for each pair (i, j) of `pairs` (int [M, 2]), the best cosine similarity
  of one image's whole thumbnail with the other's whole thumbnail or one of its windows,
  either way round: how alike the two look, allowing one to be a crop of the other."""
  whole, windows = descriptors.thumbnails, descriptors.window_thumbnails
  best = np.empty(len(pairs), np.float32)
  for start in range(0, len(pairs), _PAIRS_PER_BLOCK):
    first, second = pairs[start:start + _PAIRS_PER_BLOCK].T
    block = np.einsum('md,md->m', whole[first], whole[second])
    for query, other in ((first, second), (second, first)):
      against_windows = np.einsum('md,mwd->mw', whole[query], windows[other])
      block = np.maximum(block, against_windows.max(axis=1))
    best[start:start + _PAIRS_PER_BLOCK] = block
  return best


def colour_distance(descriptors: 'Descriptors', pairs: np.ndarray) -> np.ndarray:
  """float32 [M]: for each pair (i, j) of `pairs` (int [M, 2]), the smallest Euclidean
  distance in RGB levels (0-255; at most 441.7) between one image's mean colour and the
  other's or that of one of its windows, either way round (the alignments
  `aligned_similarity` allows). A re-encoded, resized or mirrored copy is within a few
  levels of its original, a crop within a few of the window it shows."""
  first, second = np.asarray(pairs, np.int64).reshape(-1, 2).T
  colours, windows = descriptors.colours, descriptors.window_colours
  best = np.linalg.norm(colours[first] - colours[second], axis=1)
  for query, other in ((first, second), (second, first)):
    against_windows = np.linalg.norm(colours[query][:, np.newaxis] - windows[other], axis=2)
    best = np.minimum(best, against_windows.min(axis=1))
  return best.astype(np.float32)


def pixel_similarity(descriptors: 'Descriptors', pairs: np.ndarray, *,
                     max_colour_distance: float, aligned: np.ndarray | None = None
                     ) -> np.ndarray:
  """float32 [M]: the pixel signal of near duplicates, `aligned_similarity` where the pair's
  `colour_distance` is at most `max_colour_distance` (config.audit.
  near_duplicate_colour_distance) and -1 (nothing alike) where it is farther: the thumbnails
  are grey and mean-centred, so alike layouts in other colours would otherwise match.
  `aligned`: the pairs' aligned_similarity, when the caller has it already."""
  similarity = aligned_similarity(descriptors, pairs) if aligned is None else aligned
  return np.where(colour_distance(descriptors, pairs) <= max_colour_distance, similarity,
                  np.float32(-1)).astype(np.float32)


def compute(split: Split, *, crop: float, what: str = 'Audit decode pass') -> Descriptors:
  """Decodes every image of `split` once and describes it (see the module docstring).

  Args:
    split: the images.
    crop: the side fraction a cropped copy may have lost (config.audit.near_duplicate_crop).
    what: the title of the pass's progress lines (passes.Progress).
  """
  def describe(byte_hash, image):
    # The serialised tensor holds its shape too: same pixels in another shape differ.
    window_thumbnails, window_colours = windows(image, crop)
    return (byte_hash, _fingerprint(tf.io.serialize_tensor(image)), thumbnail(image),
            window_thumbnails, mean_colour(image), window_colours)

  if split.paths is not None:
    files = tf.data.Dataset.from_tensor_slices(
        tf.constant([os.fsencode(path) for path in split.paths], tf.string))
    examples = files.map(lambda path: _read(tf.io.read_file(path)),
                         num_parallel_calls=tf.data.AUTOTUNE)
  else:
    examples = split.dataset().map(lambda image, label: (tf.constant(0, tf.int64), image),
                                   num_parallel_calls=tf.data.AUTOTUNE)
  described = examples.map(describe, num_parallel_calls=tf.data.AUTOTUNE).batch(1024)
  progress, parts, done = passes.Progress(what, split.num_examples), [], 0
  for byte_hashes, pixel_hashes, *rest in described:
    parts.append(Descriptors(byte_hashes.numpy().view(np.uint64),
                             pixel_hashes.numpy().view(np.uint64), *(part.numpy() for part in rest)))
    done += len(byte_hashes)
    progress.update(done)
  if not parts:
    count = 1 if crop == 0 else 18
    return Descriptors(np.zeros([0], np.uint64), np.zeros([0], np.uint64),
                       np.zeros([0, THUMBNAIL_SIDE**2], np.float32),
                       np.zeros([0, count, THUMBNAIL_SIDE**2], np.float32),
                       np.zeros([0, 3], np.float32), np.zeros([0, count, 3], np.float32))
  return Descriptors.concatenate(parts)


def _read(encoded):
  # Every file here passed a folder scan's size limit (data.max_image_pixels) already.
  return _fingerprint(encoded), image_ops.decode_image(encoded, max_pixels=0)
