r"""Seconds of the audit's two label models at given sizes, beside their estimates.

  python scripts/measure_label_model_cost.py --sizes=10000x1000,200000x10,50000x5000

For each images x classes, fits the ridge classifier (label_errors.ridge_probabilities) and,
up to --logistic_up_to image-classes, the k-fold logistic regression
(label_errors.out_of_fold_probabilities, config.audit's folds and regularization) on
synthetic 256-d features (class means plus unit noise, seeded: the cost does not depend on
the values) and prints the measured seconds beside label_errors' estimates
(logistic_regression_seconds, ridge_regression_seconds), which choose_model compares with
the in-training audit's share.
"""

import sys
import time

from absl import app, flags
import numpy as np

flags.DEFINE_list('sizes', ['10000x1000', '200000x10', '50000x5000'], 'IMAGESxCLASSES.')
flags.DEFINE_integer('dims', 256, 'Feature dimensions (MobileNet-0.25 pools 256).')
flags.DEFINE_integer('logistic_up_to', 10_000_000,
                     'Fit the logistic regression only up to this many images x classes.')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  sys.path.insert(0, str(__import__('pathlib').Path(__file__).resolve().parents[1]))
  from tftransfer import config as config_lib  # pylint: disable=import-outside-toplevel
  from tftransfer.auditing import label_errors  # pylint: disable=import-outside-toplevel
  settings = config_lib.default_config().audit
  rng = np.random.default_rng(0)
  print('images   classes  ridge s (estimate)  logistic s (estimate)', flush=True)
  for size in FLAGS.sizes:
    images, classes = map(int, size.split('x'))
    labels = rng.integers(0, classes, images)
    features = (rng.normal(size=(classes, FLAGS.dims))[labels] * 0.5 +
                rng.normal(size=(images, FLAGS.dims))).astype(np.float32)
    started = time.time()
    label_errors.ridge_probabilities(features, labels, classes)
    ridge = time.time() - started
    logistic = None
    if images * classes <= FLAGS.logistic_up_to:
      started = time.time()
      label_errors.out_of_fold_probabilities(
          features, labels, classes, folds=settings.folds,
          regularization=settings.regularization, seed=0)
      logistic = time.time() - started
    print(f'{images:<8,} {classes:<8,} {ridge:7.1f} '
          f'({label_errors.ridge_regression_seconds(images, classes, FLAGS.dims):.1f})'
          f'        {"-" if logistic is None else f"{logistic:.1f}"} '
          f'({label_errors.logistic_regression_seconds(images, classes, FLAGS.dims, settings.folds):.1f})',
          flush=True)


if __name__ == '__main__':
  app.run(main)
