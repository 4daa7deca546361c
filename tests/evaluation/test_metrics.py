"""Classification metrics: everything follows from the confusion matrix."""

import json
import os

import numpy as np

from tftransfer.evaluation import metrics as metrics_lib


def test_metrics_follow_from_the_confusion_matrix():
  names = tuple('abcdefg')
  labels = np.array([0, 0, 1, 1, 2, 6])
  scores = np.full((6, 7), 0.0)
  scores[np.arange(6), [0, 1, 1, 1, 0, 5]] = 1.0  # predictions: a b b b a f
  scores[5, 6] = 0.5  # the true class of the last example ranks second
  scores[4] = [1.0, 0.9, -1.0, 0.8, 0.7, 0.6, 0.5]  # ... and of the fifth, last
  metrics = metrics_lib.classification_metrics([(scores[:4], labels[:4]),
                                                (scores[4:], labels[4:])], names)
  counts = np.asarray(metrics['confusion_matrix']['counts'])
  assert counts[0].tolist() == [1, 1, 0, 0, 0, 0, 0]
  assert counts.sum() == metrics['num_examples'] == 6
  assert metrics['top1_accuracy'] == round(3 / 6, 5)
  # Ties count in the true class's favour, as in tf.math.in_top_k (examples 1-4 tie at 0.0).
  assert metrics['top5_accuracy'] == round(5 / 6, 5)
  assert metrics['per_class']['a'] == {'precision': 0.5, 'recall': 0.5, 'f1': 0.5, 'support': 2}
  assert metrics['per_class']['b'] == {'precision': round(2 / 3, 5), 'recall': 1.0,
                                       'f1': 0.8, 'support': 2}
  assert metrics['per_class']['c'] == {'precision': 0.0, 'recall': 0.0, 'f1': 0.0,
                                       'support': 1}
  assert metrics['per_class']['d']['support'] == 0
  assert 'top5_accuracy' not in metrics_lib.classification_metrics(
      [(scores[:, :5], np.zeros(6, int))], names[:5])


def test_class_names_become_text_one_way_and_plot_as_they_are(tmp_path):
  # Issue 11 kind 4: a name that is not UTF-8 (os.fsdecode's surrogates, as runs trained
  # before names became text stored it) is written as labels.txt writes it; a '$' in a name
  # does not start matplotlib's math mode.
  names = (os.fsdecode(b'caf\x93'), '$5 bill$', 'a\\b')
  metrics = metrics_lib.classification_metrics(
      [(np.eye(3), np.arange(3))], names)
  assert list(metrics['per_class']) == ['caf\\x93', '$5 bill$', 'a\\b']
  metrics_lib.write_report(str(tmp_path), metrics, title='names')
  assert json.loads((tmp_path / 'metrics.json').read_text())['confusion_matrix'][
      'class_names'] == ['caf\\x93', '$5 bill$', 'a\\b']
  figure = metrics_lib.confusion_matrix_figure(metrics, title='names')
  labels = [label.get_text() for label in figure.axes[0].get_xticklabels()]
  assert labels == ['caf\\x93', '$5 bill$', 'a\\b']
  assert not any(label.get_parse_math() for label in figure.axes[0].get_xticklabels())


def test_the_confusion_png_of_a_thousand_classes_stays_small_and_names_what_it_shows():
  # Issue 27: the PNG grew with the square of the class count (250 classes: 14,190 px, 6 GB;
  # from about 1,184 past matplotlib's limit).
  names = tuple(f'class_{index}' for index in range(1000))
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 1000, 3000)
  scores = np.eye(1000)[np.where(rng.random(3000) < 0.7, labels, rng.integers(0, 1000, 3000))]
  metrics = metrics_lib.classification_metrics([(scores, labels)], names)
  figure = metrics_lib.confusion_matrix_figure(metrics, title='many')
  width, height = figure.get_size_inches() * figure.dpi
  assert max(width, height) < 5000
  shown = [label.get_text() for label in figure.axes[0].get_xticklabels()]
  assert len(shown) == metrics_lib.MAX_PLOTTED_CLASSES
  assert 'most confused pairs of 1000' in figure.axes[0].get_title()
  assert len(metrics['confusion_matrix']['counts']) == 1000  # every count kept
