r"""Re-derives the audit's near-duplicate thresholds (config.audit) on CIFAR-10.

  python scripts/calibrate_audit.py --train_dir=../shared/data/cifar10/train \
      --weights=../shared/weights/mobilenet_2_5_224_tf_no_top.h5

takes the first 400 images of each class (4,000 originals), makes 100 near copies of each
kind (auditing/thresholds.py: JPEG quality 20-50, resized 0.5-1.5x, cropped 10 %,
mirrored), describes everything as the audit does (pretrained MobileNet-0.25 at 96 px,
configs/mobilenet_cpu.py at 96 px; thumbnails and their crop windows), and prints, per
signal, the recall of each kind and the fraction of originals with a partner at thresholds
around the derived one: the smallest at which at most that signal's --*_partner_rate of the
originals have a partner. Then the partners at the derived thresholds, to look at, and the
derived thresholds beside config.audit's defaults.

The two rates differ because CIFAR-10 holds near copies of its own: the 5 pairs of
originals whose thumbnails reach 0.99 (with matching colours) are each one photo (looked
at), so 0.25 % of originals with a partner is allowed there (0.985 would pair 0.5 %, and
2 of its 10 pairs are different photos); of the 8 pairs whose backbone features reach
0.925, half are different photos of one kind of object, so the backbone threshold sits above
every pair of originals (0 %).
"""

import pathlib
import sys
import tempfile

from absl import app, flags
import numpy as np
import tensorflow as tf

flags.DEFINE_string('train_dir', '../shared/data/cifar10/train', 'CIFAR-10 image folder.')
flags.DEFINE_string('weights', '../shared/weights/mobilenet_2_5_224_tf_no_top.h5',
                    'Pretrained MobileNet-0.25 weights without top.')
flags.DEFINE_integer('per_class', 400, 'Originals per class (the first, by file name).')
flags.DEFINE_integer('copies', 100, 'Near copies of each kind.')
flags.DEFINE_float('backbone_partner_rate', 0.0, 'Largest fraction of originals the '
                   'backbone threshold may give a partner.')
# 0.25 %: with the colour check, 0.5 % derives 0.985, where two of the ten pairs of
# originals printed are different pictures (airplane 0104/0201, bird 0390 / ship 0211); at
# 0.99 all five are the same picture.
flags.DEFINE_float('pixels_partner_rate', 0.0025, 'Largest fraction of originals the '
                   'thumbnail (pixels) threshold may give a partner.')
flags.DEFINE_integer('seed', 0, 'Seeds which originals are copied and how.')
FLAGS = flags.FLAGS


def derive(train_dir, weights, *, per_class, copies, partner_rates, seed):
  """(calibration, {signal: derived threshold}, the config used, the originals' paths) on
  train_dir's images, with at most partner_rates[signal] of the originals given a partner."""
  from tftransfer.auditing import thresholds
  from tftransfer.model import transfer
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / 'configs'))
  import mobilenet_cpu
  config = mobilenet_cpu.get_config()
  with config.unlocked():
    config.model.image_size = 96  # The resolution the audit's README numbers were measured at.
  root = pathlib.Path(train_dir)
  paths = [str(path) for folder in sorted(p for p in root.iterdir() if p.is_dir())
           for path in sorted(folder.iterdir())[:per_class]]
  model = transfer.build_model(backbone=config.model.backbone, num_classes=10,
                               image_size=config.model.image_size, width=config.model.width,
                               weights=str(weights), pooling=config.model.pooling)
  extract = tf.function(lambda images: model.features(images, training=False),
                        reduce_retracing=True, autograph=False)
  with tempfile.TemporaryDirectory() as scratch:
    measured = thresholds.measure(
        paths, scratch, extract=extract, image_size=config.model.image_size,
        batch_size=config.train.batch_size, crop=config.audit.near_duplicate_crop,
        colour_distance=config.audit.near_duplicate_colour_distance,
        neighbours=config.audit.neighbours, copies_per_kind=copies, seed=seed)
  derived = {signal: measured.threshold(signal, max_partner_rate=partner_rates[signal])
             for signal in thresholds.SIGNALS}
  return measured, derived, config, paths


def main(argv):
  del argv
  rates = {'backbone': FLAGS.backbone_partner_rate, 'pixels': FLAGS.pixels_partner_rate}
  measured, derived, config, paths = derive(
      FLAGS.train_dir, FLAGS.weights, per_class=FLAGS.per_class, copies=FLAGS.copies,
      partner_rates=rates, seed=FLAGS.seed)
  defaults = {'backbone': config.audit.near_duplicate_similarity,
              'pixels': config.audit.near_duplicate_pixel_similarity}
  for signal, threshold in derived.items():
    around = sorted({round(float(t), 3) for t in np.clip(
        threshold + np.array([-0.02, -0.01, -0.005, 0, 0.005]), 0, 1)} | {defaults[signal]})
    print(measured.table(signal, around))
    # One grid step lower too: what a lower threshold would add.
    below = threshold - 0.005
    pairs = measured.partners(signal, below)
    print(f'Pairs of originals at or above {below:.3f} ({len(pairs)}; to look at):')
    for first, second, similarity in pairs[:25]:
      print(f'  {similarity:.4f}  {paths[first]}  {paths[second]}')
    print()
  for signal, threshold in derived.items():
    print(f'{signal}: derived {threshold:.3f} (at most {rates[signal]:.2%} of originals with '
          f'a partner); config default {defaults[signal]:.3f}')


if __name__ == '__main__':
  app.run(main)
