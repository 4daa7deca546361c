"""Classification metrics: everything follows from the confusion matrix."""

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
