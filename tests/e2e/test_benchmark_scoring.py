"""The benchmark's scoring and arithmetic (scripts/benchmark_scoring.py): a snapshot scored by
the harness gets the accuracy its own system's evaluation gives on the same images."""

import sys

import keras
import numpy as np
import pytest

from tftransfer.data import folders
from tftransfer.evaluation import evaluate
from tftransfer import restore, runtime
from tftransfer.training import loop
from tests.helpers import (MAX_IMAGE_PIXELS, REPO, tiny_config, write_calibrated_weights,
                     write_image_folder)

sys.path.insert(0, str(REPO / 'scripts'))
import benchmark_scoring  # noqa: E402  pylint: disable=g-import-not-at-top


@pytest.fixture(scope='module')
def folder_run(tmp_path_factory):
  """A tiny run on an image folder from weights whose features depend on the image, and a
  held-out folder of the same classes (PNGs and JPEGs)."""
  root = tmp_path_factory.mktemp('folders')
  train = write_image_folder(root / 'train', per_class=12, size=(36, 36))
  test = write_image_folder(root / 'test', per_class=10, size=(44, 40), seed=100)
  weights = root / 'calibrated.weights.h5'
  write_calibrated_weights(weights)
  workdir = root / 'run'
  loop.train_and_evaluate(tiny_config(data__source='folder', data__path=str(train),
                                      data__val_fraction=0.2, data__max_examples_per_class=0,
                                      model__weights=str(weights), train__head_epochs=3),
                          str(workdir))
  return workdir, test


def test_a_tftransfer_snapshot_scores_as_the_run_evaluates(folder_run, tmp_path):
  workdir, test_folder = folder_run
  scan = folders.scan_folder(str(test_folder), max_image_pixels=MAX_IMAGE_PIXELS)
  step = restore.restore(str(workdir)).step
  predicted = benchmark_scoring.predict(f'{workdir}@{step}', list(scan.files))
  metrics = evaluate.evaluate_workdir(str(workdir), checkpoint=step, data_dir=str(test_folder),
                                      output_dir=str(tmp_path / 'eval'))
  confusion = np.zeros((3, 3), int)
  np.add.at(confusion, (scan.labels, predicted), 1)
  assert confusion.tolist() == metrics['confusion_matrix']['counts']
  assert len(set(predicted)) > 1  # outputs depend on the image: the comparison says something
  assert benchmark_scoring.score(f'{workdir}@{step}', list(scan.files), scan.labels,
                                 scan.class_names) == pytest.approx(metrics['top1_accuracy'],
                                                                    abs=1e-5)


def test_a_keras_snapshot_scores_as_keras_evaluates(folder_run, tmp_path):
  _, test_folder = folder_run
  # A peer-like model: 0-255 RGB in at 40 px, its own rescaling inside, trained a little.
  with runtime.seeded(0):
    inputs = keras.Input((40, 40, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, activation='relu')(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    model.compile('adam', keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=['accuracy'])
    dataset = keras.utils.image_dataset_from_directory(str(test_folder), image_size=(40, 40),
                                                       batch_size=32, shuffle=False)
    model.fit(dataset, epochs=3, verbose=0, shuffle=False)
  path = str(tmp_path / 'head_1.keras')
  model.save(path)
  scan = folders.scan_folder(str(test_folder), max_image_pixels=MAX_IMAGE_PIXELS)
  accuracy = benchmark_scoring.score(path, list(scan.files), scan.labels, scan.class_names)
  assert accuracy == pytest.approx(model.evaluate(dataset, verbose=0)[1], abs=1e-6)


def test_the_race_arithmetic():
  peer = [{'seconds': 50, 'test_accuracy': 0.60}, {'seconds': 100, 'test_accuracy': 0.65},
          {'seconds': 200, 'test_accuracy': 0.70}]
  ours = [{'seconds': 30, 'test_accuracy': 0.66}, {'seconds': 90, 'test_accuracy': 0.72},
          {'seconds': 250, 'test_accuracy': 0.80}]
  slow = [{'seconds': 300, 'test_accuracy': 0.5}]
  summary = benchmark_scoring.summarize({'keras_guide': peer, 'tftransfer': ours,
                                         'classic': slow}, 'test_accuracy')
  assert (summary['peer_final_seconds'], summary['peer_final_accuracy']) == (200, 0.70)
  assert summary['tftransfer'] == {
      'accuracy_at_peer_final_seconds': 0.72, 'gain_points_at_peer_final_seconds': 2.0,
      'seconds_to_peer_final_accuracy': 90, 'time_ratio_to_peer': 0.45,
      'final_accuracy': 0.80, 'final_seconds': 250}
  assert summary['classic']['accuracy_at_peer_final_seconds'] is None  # nothing by then
  assert summary['classic']['seconds_to_peer_final_accuracy'] is None  # never reached
  assert summary['keras_guide']['time_ratio_to_peer'] == 1.0
  assert benchmark_scoring.summarize({'tftransfer': ours}, 'test_accuracy') == {}
  np.testing.assert_equal(benchmark_scoring.accuracy_at(ours, 29, 'test_accuracy'), None)
