r"""Measures the audit's label-error findings on clean data and with planted label flips.

  python scripts/measure_label_errors.py --out=/tmp/label_errors \
      [--textures_run=W/source]   # a finished `configs/quickstart.py:source` run

Computes the pooled backbone features the audit judges labels by, once per data set, and
caches them in OUT (features.npz per data set):
  cifar10     ../shared/data/cifar10/train, MobileNet-0.25 from the shared ImageNet weights
              at 96 px (configs/mobilenet_cpu.py's audit features);
  hymenoptera ../shared/data/hymenoptera/train and val, the same backbone;
  textures    the quickstart source run's images and its own trained backbone (the run's
              audit features), when --textures_run is given.
Then, per case, runs the label model (auditing/label_errors.py: out-of-fold probabilities and
the flagged images; --label_model picks which) and prints one line per case:
  clean       the data as it is: the share of images flagged (issue 30: at most 2 %) or the
              audit's reason for not judging;
  flipped     --flip of the labels moved to a random other class (seeded): the flagged
              images' precision and recall against the flips (issue 30: both at least 0.5).
CIFAR-10 cases are subsets: the first 150 images of 3 classes (450), 500 of each class
(5,000) and all 50,000, so the features are computed once. Each case runs with --seeds.
"""

import json
import pathlib
import sys
import time

from absl import app, flags
import numpy as np

flags.DEFINE_string('out', '/tmp/label_errors', 'Cache of features and the results file.')
flags.DEFINE_string('shared', '../shared', 'The shared data and weights.')
flags.DEFINE_string('textures_run', '', 'A finished configs/quickstart.py:source workdir.')
flags.DEFINE_float('flip', 0.02, 'Fraction of labels flipped in the planted cases.')
flags.DEFINE_list('seeds', ['0', '1'], 'Seeds of the flips and the label model folds.')
flags.DEFINE_list('cases', [], 'Only these cases (e.g. cifar10_5000); empty = all.')
flags.DEFINE_float('regularization', None, 'Overrides config.audit.regularization.')
flags.DEFINE_enum('label_model', 'logistic_regression',
                  ['logistic_regression', 'ridge_regression'],
                  'config.audit.label_model: the label model measured.')
flags.DEFINE_float('min_lift_over_chance', None, 'Overrides label_errors.MIN_LIFT_OVER_CHANCE.')
FLAGS = flags.FLAGS


def _features_of_config(config, *, weights: str):
  """(features float32 [N, D], labels int [N], class names) of config's train and val."""
  from tftransfer import restore, runtime
  from tftransfer.data import features as features_lib, sources
  data = sources.load(config.data, seed=config.seed)
  with runtime.keras_policy('float32'):
    model = restore.build_model(config, image_size=config.model.image_size,
                                num_classes=len(data.class_names), weights=weights)
  import tensorflow as tf
  extract = tf.function(lambda images: model.features(images, training=False),
                        reduce_retracing=True)
  parts = [features_lib.compute_features(extract, split, image_size=config.model.image_size,
                                         batch_size=128)
           for split in (data.train, data.val) if split.num_examples]
  return (np.concatenate([f for f, _ in parts]), np.concatenate([l for _, l in parts]),
          data.class_names)


def _folder_config(path: str, val_path: str = ''):
  from configs import mobilenet_cpu
  config = mobilenet_cpu.get_config().unlock()
  config.data.path = path
  config.data.val_path = val_path
  if not val_path:
    config.data.val_fraction = 0.0
  config.model.image_size = 96
  config.model.weights = str(pathlib.Path(FLAGS.shared) / 'weights' /
                             'mobilenet_2_5_224_tf_no_top.h5')
  return config.lock()


def _cached(name: str, compute) -> dict:
  path = pathlib.Path(FLAGS.out) / f'{name}_features.npz'
  if not path.exists():
    started = time.time()
    features, labels, class_names = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, features=features, labels=labels, class_names=np.array(class_names))
    print(f'{name}: features of {len(labels)} images in {time.time() - started:.0f} s',
          flush=True)
  with np.load(path) as cached:
    return {key: cached[key] for key in cached.files}


def _datasets() -> dict:
  shared = pathlib.Path(FLAGS.shared) / 'data'
  found = {}
  if (shared / 'cifar10' / 'train').is_dir():
    cifar = _cached('cifar10', lambda: _features_of_config(
        _folder_config(str(shared / 'cifar10' / 'train')),
        weights=_folder_config(str(shared)).model.weights))
    labels = cifar['labels']
    first = lambda count, classes: np.concatenate(  # noqa: E731
        [np.flatnonzero(labels == c)[:count] for c in classes])
    for name, chosen in (('cifar10_450', first(150, range(3))),
                         ('cifar10_5000', first(500, range(10))),
                         ('cifar10_50000', np.arange(len(labels)))):
      found[name] = (cifar['features'][chosen], labels[chosen])
  if (shared / 'hymenoptera' / 'train').is_dir():
    ants = _cached('hymenoptera', lambda: _features_of_config(
        _folder_config(str(shared / 'hymenoptera' / 'train'),
                       str(shared / 'hymenoptera' / 'val')),
        weights=_folder_config(str(shared)).model.weights))
    found['hymenoptera'] = (ants['features'], ants['labels'])
  if FLAGS.textures_run:
    from tftransfer.workdir import Workdir
    run = Workdir(FLAGS.textures_run)
    textures = _cached('textures', lambda: _features_of_config(
        run.saved_config(), weights=run.file('backbone.weights.h5')))
    found['textures'] = (textures['features'], textures['labels'])
  return found


def _flip(labels: np.ndarray, fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
  """(labels with `fraction` of them moved to a random other class, the moved indices)."""
  num_classes = labels.max() + 1
  moved = rng.choice(len(labels), int(round(fraction * len(labels))), replace=False)
  flipped = labels.copy()
  flipped[moved] = (labels[moved] + rng.integers(1, num_classes, len(moved))) % num_classes
  return flipped, moved


def main(argv):
  del argv
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
  from tftransfer import config as config_lib
  from tftransfer.auditing import label_errors
  settings = config_lib.default_config().audit.unlock()
  if FLAGS.min_lift_over_chance is not None:
    label_errors.MIN_LIFT_OVER_CHANCE = FLAGS.min_lift_over_chance
  if FLAGS.regularization is not None:
    settings.regularization = FLAGS.regularization
  settings.label_model = FLAGS.label_model
  results = []
  for name, (features, labels) in _datasets().items():
    if FLAGS.cases and name not in FLAGS.cases:
      continue
    for seed in map(int, FLAGS.seeds):
      for case in ('clean', 'flipped'):
        rng = np.random.default_rng(seed)
        given, moved = (labels, np.array([], int)) if case == 'clean' else _flip(
            labels, FLAGS.flip, rng)
        started = time.time()
        judged = label_errors.judge(features, given, int(labels.max()) + 1,
                                    settings=settings, seed=seed)
        seconds = time.time() - started
        balanced, chance = label_errors.balanced_accuracy(judged.scores, given)
        lift = (balanced - chance) / (1 - chance)
        flagged = np.flatnonzero(judged.flagged)
        row = {'case': f'{name} {case}', 'seed': seed, 'images': int(len(labels)),
               'label_model': judged.model,
               'oof_accuracy': round(judged.scores.accuracy, 4),
               'lift_over_chance': round(lift, 3),
               'not_judged': judged.not_judged, 'flagged': int(len(flagged)),
               'flagged_share': round(len(flagged) / len(labels), 4),
               'estimated': judged.estimate, 'hard_or_ambiguous': int(judged.hard.sum()),
               'confident_joint_estimate': label_errors.confident_joint_estimate(
                   judged.scores.probabilities, given),
               'temperature': round(judged.temperature, 3),
               'noise_rate': round(judged.noise_rate, 4),
               'seconds': round(seconds, 1)}
        if case == 'flipped':
          hits = np.isin(flagged, moved).sum()
          row.update(planted=int(len(moved)),
                     precision=round(hits / len(flagged), 3) if len(flagged) else None,
                     recall=round(hits / len(moved), 3))
        results.append(row)
        print(json.dumps(row), flush=True)
  path = pathlib.Path(FLAGS.out) / f'results_{FLAGS.label_model}.jsonl'
  path.write_text(''.join(json.dumps(row) + '\n' for row in results))
  print(f'Written {path}.')


if __name__ == '__main__':
  app.run(main)
