"""Scoring benchmark snapshots on held-out images, and the race's arithmetic.

Shared by scripts/benchmark_transfer.py and scripts/benchmark_frontier.py (and tested in
tests/e2e/test_benchmark_scoring.py). A snapshot is 'WORKDIR@STEP' (a tftransfer run's
checkpoint of that step) or the path of a .keras file (the keras.io recipe's, which takes
0-255 RGB at its input size). Every snapshot goes through the same decoder and batching;
only its own preprocessing differs.
"""

import os

import numpy as np


def load_snapshot(snapshot: str):
  """(model, preprocess) of a snapshot: 'WORKDIR@STEP' (a tftransfer checkpoint) or a .keras
  file (the peer's). `preprocess` maps a decoded uint8 [H, W, 3] image to the model's input,
  as that system evaluates: tftransfer's evaluation view, or the peer's plain bilinear resize
  (keras.utils.image_dataset_from_directory's)."""
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tftransfer.data import image_ops  # pylint: disable=g-import-not-at-top
  from tftransfer import restore  # pylint: disable=g-import-not-at-top
  if snapshot.endswith('.keras'):
    model = keras.models.load_model(snapshot)
    size = model.input_shape[1]
    return model, lambda image: tf.image.resize(image, (size, size))
  workdir, step = snapshot.rsplit('@', 1)
  trained = restore.restore(workdir, checkpoint=int(step), allow_unfinished=True)
  return trained.model, lambda image: image_ops.evaluation_view(image, trained.image_size)


def predict(snapshot: str, files: list[str]) -> np.ndarray:
  """The predicted class (int64 [N]) of `snapshot` for each image file, in order, through one
  decode and batch code path and the snapshot's own preprocessing."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tftransfer.data import image_ops  # pylint: disable=g-import-not-at-top
  model, preprocess = load_snapshot(snapshot)
  images = tf.data.Dataset.from_tensor_slices([os.fsencode(path) for path in files]).map(
      # Every file passed score_points' folder scan and its size limit.
      lambda path: preprocess(image_ops.decode_image(tf.io.read_file(path), max_pixels=0)),
      num_parallel_calls=tf.data.AUTOTUNE).batch(256)
  classify = tf.function(lambda batch: tf.argmax(model(batch, training=False), axis=-1))
  return np.concatenate([classify(batch).numpy() for batch in images])


def score(snapshot: str, files: list[str], labels: np.ndarray, class_names) -> float:
  """Top-1 accuracy of `snapshot` on the image `files` with int `labels`."""
  del class_names  # the caller checked them
  return float(np.mean(predict(snapshot, files) == labels))


def score_points(points: list[dict], test_dir: str, class_names) -> None:
  """Adds test_accuracy to every point, scoring its snapshot on every image of `test_dir`."""
  from tftransfer import config as config_lib  # pylint: disable=g-import-not-at-top
  from tftransfer.data import folders  # pylint: disable=g-import-not-at-top
  scan = folders.scan_folder(
      test_dir, max_image_pixels=config_lib.default_config().data.max_image_pixels)
  if tuple(scan.class_names) != tuple(class_names):
    raise ValueError(f'--test_dir classes {scan.class_names} differ from the training '
                     f'classes {class_names}.')
  for point in points:
    point['test_accuracy'] = round(score(point['snapshot'], list(scan.files), scan.labels,
                                         scan.class_names), 4)


def accuracy_at(points: list[dict], seconds: float, key: str):
  """The `key` accuracy of the newest point at or before `seconds` (None before the first)."""
  reached = [p[key] for p in points if p['seconds'] <= seconds]
  return reached[-1] if reached else None


def seconds_to(points: list[dict], accuracy: float, key: str):
  """The seconds of the first point whose `key` accuracy reaches `accuracy` (None: never)."""
  reached = [p['seconds'] for p in points if p[key] >= accuracy]
  return reached[0] if reached else None


def summarize(results: dict[str, list[dict]], key: str) -> dict:
  """The race on one accuracy (`key`: 'test_accuracy' or 'val_accuracy'), against the peer's
  final point: each system's accuracy at the peer's final time, its seconds to the peer's
  final accuracy and their ratio to the peer's time."""
  peer = results.get('keras_guide')
  if not peer:
    return {}
  peer_seconds, peer_accuracy = peer[-1]['seconds'], peer[-1][key]
  summary = {'peer_final_seconds': peer_seconds, 'peer_final_accuracy': peer_accuracy}
  for name, points in results.items():
    at_peer_end = accuracy_at(points, peer_seconds, key)
    to_peer = seconds_to(points, peer_accuracy, key)
    summary[name] = {
        'accuracy_at_peer_final_seconds': at_peer_end,
        'gain_points_at_peer_final_seconds': (None if at_peer_end is None else
                                              round(100 * (at_peer_end - peer_accuracy), 2)),
        'seconds_to_peer_final_accuracy': to_peer,
        'time_ratio_to_peer': None if to_peer is None else round(to_peer / peer_seconds, 3),
        'final_accuracy': points[-1][key] if points else None,
        'final_seconds': points[-1]['seconds'] if points else None}
  return summary
