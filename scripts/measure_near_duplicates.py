r"""Measures the pixel signal of near duplicates with and without its colour check.

  python scripts/measure_near_duplicates.py [--train_dir=../shared/data/cifar10/train]
      [--per_class=500] [--copies=100]

The audit's thumbnail is grey and mean-centred (auditing/descriptors.py), so two two-colour
images of one layout in other palettes have the same thumbnail. This script describes, as
the audit does (descriptors.compute, candidates among each image's config.audit.neighbours
nearest thumbnails):
  textures  the quickstart's textures (synthetic 'textures_source', train and validation:
            7,000 generated images, none a copy of another);
  cifar10   the first --per_class images of each CIFAR-10 class (the folder has some near
            duplicates of its own), plus --copies planted near copies of each kind
            (thresholds.near_copy: JPEG at quality 20-50, resized 0.5-1.5x, cropped 10 %,
            mirrored) of distinct originals;
and prints, per data set, the pairs at or above config.audit.near_duplicate_pixel_similarity
before and after the colour check (config.audit.near_duplicate_colour_distance), the colour
distances of the pairs it rejects, and for the planted copies their colour distances per
kind and how many the pixel signal finds with and without the check.
"""

import pathlib

from absl import app, flags
import numpy as np

flags.DEFINE_string('train_dir', '../shared/data/cifar10/train', 'CIFAR-10 image folder '
                    '(skipped when missing).')
flags.DEFINE_integer('per_class', 500, 'CIFAR-10 images per class (the first by name).')
flags.DEFINE_integer('copies', 100, 'Planted near copies of each kind.')
flags.DEFINE_integer('seed', 0, 'Seeds which originals are copied and how.')
FLAGS = flags.FLAGS


def _pixel_pairs(described, settings):
  """(candidate pairs int [M, 2], aligned similarity [M], colour distance [M])."""
  from tftransfer.auditing import descriptors, duplicates, search
  neighbours = search.nearest_neighbours(described.thumbnails, settings.neighbours)[0]
  pairs = duplicates.candidate_pairs(neighbours)
  return (pairs, descriptors.aligned_similarity(described, pairs),
          descriptors.colour_distance(described, pairs))


def _report(name, described, settings, planted=None, kinds=None):
  from tftransfer.auditing import descriptors
  pairs, similarity, distance = _pixel_pairs(described, settings)
  alike = similarity >= settings.near_duplicate_pixel_similarity
  kept = alike & (distance <= settings.near_duplicate_colour_distance)
  rejected = np.sort(distance[alike & ~kept])
  print(f'{name}: {len(described.thumbnails)} images; pixel pairs at or above '
        f'{settings.near_duplicate_pixel_similarity}: {alike.sum()} without the colour check, '
        f'{kept.sum()} with it (at most {settings.near_duplicate_colour_distance} levels)')
  if len(rejected):
    print(f'  rejected pairs\' colour distances: min {rejected[0]:.1f}, median '
          f'{np.median(rejected):.1f}; percentiles 5/25: '
          f'{np.percentile(rejected, 5):.1f} / {np.percentile(rejected, 25):.1f}')
  if len(distance[kept]):
    print(f'  kept pairs\' colour distances: max {distance[kept].max():.1f}, median '
          f'{np.median(distance[kept]):.1f}')
  if planted is None:
    return
  planted_distance = descriptors.colour_distance(described, planted)
  planted_similarity = descriptors.aligned_similarity(described, planted)
  found = planted_similarity >= settings.near_duplicate_pixel_similarity
  checked = found & (planted_distance <= settings.near_duplicate_colour_distance)
  known = {tuple(pair) for pair in np.sort(planted, axis=1)}
  others = np.array([tuple(pair) not in known for pair in pairs]) & kept
  shown = np.sort(distance[others])
  print(f'  kept pairs that are not planted copies (the folder\'s own near duplicates or '
        f'false pairs; look at them): {others.sum()}, colour distances '
        + (', '.join(f'{value:.1f}' for value in shown) if len(shown) <= 20 else
           'percentiles 50/90/99 ' + ' / '.join(f'{np.percentile(shown, q):.1f}'
                                                for q in (50, 90, 99))))
  print('  planted copies: kind, colour distance to the original (median / max), found by '
        'the pixel signal without / with the colour check')
  for kind in dict.fromkeys(kinds):
    of_kind = kinds == kind
    print(f'    {kind:>7}  {np.median(planted_distance[of_kind]):5.1f} / '
          f'{planted_distance[of_kind].max():5.1f}   {found[of_kind].mean():.2f} / '
          f'{checked[of_kind].mean():.2f}')


def _cifar10(settings):
  """(descriptors, planted pairs int [M, 2], kinds [M]) of a CIFAR-10 subset with copies."""
  import tempfile
  from tftransfer.auditing import descriptors, thresholds
  from tftransfer.data import dataset
  root = pathlib.Path(FLAGS.train_dir)
  paths = [str(path) for folder in sorted(p for p in root.iterdir() if p.is_dir())
           for path in sorted(folder.iterdir())[:FLAGS.per_class]]
  rng = np.random.default_rng(FLAGS.seed)
  originals = rng.choice(len(paths), len(thresholds.COPY_KINDS) * FLAGS.copies, replace=False)
  kinds = np.repeat(thresholds.COPY_KINDS, FLAGS.copies)
  with tempfile.TemporaryDirectory() as scratch:
    copies = []
    for number, (index, kind) in enumerate(zip(originals, kinds)):
      data, suffix = thresholds.near_copy(pathlib.Path(paths[index]).read_bytes(), kind, rng,
                                          crop=settings.near_duplicate_crop)
      copies.append(pathlib.Path(scratch) / f'{kind}_{number}{suffix}')
      copies[-1].write_bytes(data)
    every = paths + [str(path) for path in copies]
    split = dataset.file_split(every, np.zeros(len(every), np.int64), 1)
    described = descriptors.compute(split, crop=settings.near_duplicate_crop)
  planted = np.stack([originals, len(paths) + np.arange(len(copies))], axis=1)
  return described, planted, kinds


def main(argv):
  del argv
  from tftransfer import config as config_lib
  from tftransfer.auditing import descriptors
  from tftransfer.data import dataset, synthetic
  settings = config_lib.default_config().audit
  parts = [synthetic.generate('textures_source', split) for split in ('train', 'validation')]
  images = np.concatenate([images for images, _ in parts])
  textures = descriptors.compute(
      dataset.array_split(images, np.zeros(len(images), np.int64), 1),
      crop=settings.near_duplicate_crop)
  _report('textures', textures, settings)
  if pathlib.Path(FLAGS.train_dir).is_dir():
    described, planted, kinds = _cifar10(settings)
    _report(f'cifar10 ({FLAGS.per_class} per class + planted copies)', described, settings,
            planted, kinds)
  else:
    print(f'{FLAGS.train_dir} is not a folder: CIFAR-10 skipped.')


if __name__ == '__main__':
  app.run(main)
