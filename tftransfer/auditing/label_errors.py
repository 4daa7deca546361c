"""Likely label errors: out-of-fold probabilities of a linear model, ranked and filtered.

A cheap model (multinomial logistic regression on standardised backbone features,
scikit-learn) is fitted k times, each time predicting the fold it did not see, so every
image gets probabilities from a model that never saw its label. Two scores of the given
label follow confident learning (Northcutt, Jiang and Chuang, "Confident Learning:
Estimating Uncertainty in Dataset Labels", JAIR 2021; cleanlab's
`get_label_quality_scores`):
  self-confidence   p(given label): the ranking, lowest first;
  margin            p(given) - max over other classes p(other): negative = another class
                    is preferred.
Which images are flagged follows the paper's confident joint: class j's threshold t_j is
the mean p(j) over the images labelled j; an image is flagged when, among the classes whose
probability reaches their threshold, the most probable one is not its given label.

cleanlab implements the same (`find_label_issues(filter_by='confident_learning')`); these
few lines of NumPy avoid its dependencies (pandas, tqdm, termcolor) for what the audit uses.
"""

import dataclasses
import warnings

import numpy as np
from sklearn import exceptions, linear_model, model_selection, pipeline, preprocessing
import threadpoolctl


@dataclasses.dataclass(frozen=True)
class LabelScores:
  """Per-image scores of the given labels."""
  probabilities: np.ndarray  # float32 [N, C], out of fold
  self_confidence: np.ndarray  # float32 [N]
  margin: np.ndarray  # float32 [N]
  suggested: np.ndarray  # int [N], the most probable class
  flagged: np.ndarray  # bool [N], off the confident joint's diagonal
  accuracy: float  # out-of-fold accuracy of the linear model against the given labels


def out_of_fold_probabilities(features: np.ndarray, labels: np.ndarray, num_classes: int, *,
                              folds: int, regularization: float, seed: int) -> np.ndarray:
  """Probabilities [N, num_classes] for each image from a model fitted on the other folds.

  Args:
    features: float32 [N, D].
    labels: int [N] in [0, num_classes).
    folds: k of the stratified k-fold split (lowered to the smallest class's size, >= 2).
    regularization: scikit-learn's C, the inverse L2 strength.
    seed: seeds the fold split.
  """
  counts = np.bincount(labels, minlength=num_classes)
  folds = int(max(2, min(folds, counts[counts > 0].min())))
  probabilities = np.zeros([len(labels), num_classes], np.float32)
  model = pipeline.make_pipeline(
      preprocessing.StandardScaler(),
      linear_model.LogisticRegression(C=regularization, max_iter=300))
  splitter = model_selection.StratifiedKFold(folds, shuffle=True, random_state=seed)
  # One BLAS thread: NumPy's and SciPy's OpenBLAS pools of two threads each, beside
  # TensorFlow's, made L-BFGS 13x slower on 2 cores (20 s instead of 1.5 s for 4,000
  # images of 256 features).
  with threadpoolctl.threadpool_limits(1), warnings.catch_warnings():
    # Not converging to the last digit within max_iter changes no ranking that matters.
    warnings.simplefilter('ignore', exceptions.ConvergenceWarning)
    for train, held_out in splitter.split(features, labels):
      model.fit(features[train], labels[train])
      probabilities[np.ix_(held_out, model.classes_)] = model.predict_proba(
          features[held_out])
  return probabilities


def score(probabilities: np.ndarray, labels: np.ndarray) -> LabelScores:
  """Self-confidence, margin and confident-joint flags of the given `labels`."""
  count, num_classes = probabilities.shape
  rows = np.arange(count)
  given = probabilities[rows, labels]
  others = probabilities.copy()
  others[rows, labels] = -np.inf
  thresholds = np.array([probabilities[labels == j, j].mean() if np.any(labels == j)
                         else np.inf for j in range(num_classes)])
  confident = np.where(probabilities >= thresholds, probabilities, -np.inf)
  has_confident = np.isfinite(confident).any(axis=1)
  flagged = has_confident & (np.argmax(confident, axis=1) != labels)
  suggested = np.argmax(probabilities, axis=1)
  return LabelScores(probabilities=probabilities, self_confidence=given.astype(np.float32),
                     margin=(given - others.max(axis=1)).astype(np.float32),
                     suggested=suggested, flagged=flagged,
                     accuracy=float(np.mean(suggested == labels)) if count else 0.0)
