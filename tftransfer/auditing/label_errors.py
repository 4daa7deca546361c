"""Label errors: out-of-fold probabilities of a linear model, a fit of how many given labels
are noise, and the images most likely to carry it.

A cheap model (multinomial logistic regression on standardised backbone features,
scikit-learn) is fitted k times, each time predicting the fold it did not see, so every
image gets probabilities p(x) from a model that never saw its label. Where that would take
more than the in-training audit's share of the run (many classes: 60 s of a 161 s run at
1,000), choose_model takes a ridge classifier's exact leave-one-out scores instead (4 s
there; on CIFAR-10 with 2 % of labels flipped it finds fewer of them, precision 0.37-0.46
and recall 0.38-0.67 against 0.54-0.64 and 0.55-1.00: scripts/measure_label_errors.py
--label_model), or, when neither fits, leaves labels to `tftransfer-audit`.

Two scores of the given label follow confident learning (Northcutt, Jiang and Chuang, "Confident Learning:
Estimating Uncertainty in Dataset Labels", JAIR 2021; cleanlab's
`get_label_quality_scores`):
  self-confidence   p(given label);
  margin            p(given) - max over other classes p(other): negative = another class
                    is preferred.
The paper's confident joint (class j's threshold t_j is the mean p(j) over the images
labelled j; an image is off the joint's diagonal when, among the classes whose probability
reaches their threshold, the most probable one is not its given label) is mostly the label
model's own mistakes where the features are weak: on clean CIFAR-10 at 96 px, out-of-fold
accuracy 0.72, it holds 8,254 of 50,000 images (scripts/measure_label_errors.py). So it
names the hard or ambiguous images, and the wrong labels come from a model of the noise.

The given labels are modelled as the calibrated model's answer with probability 1 - e and a
class drawn at random with probability e (random classification noise, Angluin and Laird,
"Learning from noisy examples", Machine Learning 1988):
  P(given = y | x) = (1 - e) softmax(log p(x) / T)_y + e / C,
the temperature T (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017) and
the noise rate e fitted together by maximum likelihood. Fitting T alone would make the model
as unsure as the noise requires, and every wrong label would look like chance; the noise
term takes the wrong labels instead. Then:
  estimated errors   e N (C - 1) / C wrong labels (a random class is the right one once in
                     C), with a 90 % Wald interval;
  confidence         each image's probability that its label is the noise term's, by Bayes'
                     rule, (e / C) / P(given | x);
  flagged            the estimated number of images, highest confidence first (cleanlab's
                     prune_by_noise_rate also flags the estimated number of issues);
  hard or ambiguous  the confident joint's off-diagonal images that are not flagged.
On clean data e fits near 0 and next to nothing is flagged; when the features cannot tell
(out-of-fold balanced accuracy near chance, or no class of MIN_CLASS_IMAGES) nothing is
judged, and not_judged_reason says why.

cleanlab implements the confident joint (`find_label_issues`); these few lines of NumPy and
SciPy avoid its dependencies (pandas, tqdm, termcolor) for what the audit uses.
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


def ridge_probabilities(features: np.ndarray, labels: np.ndarray,
                        num_classes: int) -> np.ndarray:
  """Leave-one-out probabilities [N, num_classes] of a ridge (least-squares) classifier.

  Ridge regression (L2 strength RIDGE_ALPHA) of the one-hot labels (+1/-1) on standardised
  features, each image's scores those of the ridge fitted without it: exact, from one
  eigendecomposition (generalized cross-validation;
  Rifkin and Lippert, "Notes on Regularized Least Squares", MIT 2007; scikit-learn's
  RidgeClassifierCV). Probabilities are softmax(scores / t), the temperature t fitted by
  maximum likelihood of the given labels. Its cost grows with images x (features^2 +
  classes) where the logistic regression's grows with images x features x classes x folds x
  its iterations: at 10,000 images of 1,000 classes, 4 s against 60 s.

  Args:
    features: float [N, D].
    labels: int [N] in [0, num_classes).

  Returns:
    float32 [N, num_classes], rows summing to 1; 0 for classes without images.
  """
  from scipy import optimize, special  # pylint: disable=g-import-not-at-top
  standardised = preprocessing.StandardScaler().fit_transform(features.astype(np.float32))
  with threadpoolctl.threadpool_limits(1):
    # scoring: cv_results_ then holds each image's left-out scores, not their squared errors.
    fitted = linear_model.RidgeClassifierCV(alphas=[RIDGE_ALPHA], scoring='accuracy',
                                            store_cv_results=True).fit(standardised, labels)
  scores = np.full([len(labels), num_classes], -np.inf)
  present = fitted.classes_
  # Two classes are one regression target: the second class's score is its negative.
  loo = fitted.cv_results_[:, :, 0].astype(np.float64)
  scores[:, present] = np.concatenate([-loo, loo], axis=1) if len(present) == 2 else loo
  # One scalar: fitted on a seeded sample of rows, which at 5,000 classes costs seconds
  # where all 50,000 rows took minutes.
  rows = np.sort(np.random.default_rng(0).permutation(len(labels))[:TEMPERATURE_ROWS])
  sample, given = scores[rows], labels[rows]

  def loss(log_t):
    scaled = sample / np.exp(log_t)
    return -np.mean(scaled[np.arange(len(rows)), given] - special.logsumexp(scaled, axis=1))

  log_t = optimize.minimize_scalar(loss, bounds=(np.log(1e-3), np.log(10.0)),
                                   method='bounded').x
  return special.softmax(scores / np.exp(log_t), axis=1).astype(np.float32)


# Images the ridge classifier's temperature is fitted on.
TEMPERATURE_ROWS = 5000


# The ridge classifier's L2 strength on standardised features: CIFAR-10's leave-one-out
# accuracy at 5,000 and 50,000 images varies by under 0.1 point over 30-300 (0.666, 0.688).
RIDGE_ALPHA = 100.0
# Its seconds here, one thread: per image x feature^2 (the eigendecomposition's products)
# and per image x class (the left-out scores and their softmax); measured by
# scripts/measure_label_model_cost.py (256 features): 4.0 s at 10,000 images of 1,000
# classes, 67.7 s at 50,000 of 5,000, 7.4 s at 200,000 of 10.
RIDGE_SECONDS_PER_IMAGE_FEATURE2, RIDGE_SECONDS_PER_IMAGE_CLASS = 5.5e-10, 3.5e-7


# The label models judge() can fit (config.audit.label_model); 'auto' is choose_model's,
# which may also choose 'none' (nothing judged).
LABEL_MODELS = ('logistic_regression', 'ridge_regression')
# Seconds the k-fold logistic regression takes per image, class and fold at 256 features
# (L-BFGS, one thread): 2.4-3.9 us at 10 classes (audits of 10,000-200,000 CIFAR-10 images
# and mosaics, 5 folds: docs/scale.md) and 1.2 us at 1,000 classes (10,000 images), so this
# errs on the side of the cheaper model.
LOGISTIC_SECONDS_PER_IMAGE_CLASS_FOLD = 4e-6
# A logistic regression estimated within this is fitted whatever the share left: on small
# data the audit's fixed costs exceed its share, and a second is little beside a run's
# tracing alone (10-50 s here).
ALWAYS_AFFORDABLE_SECONDS = 1.0


def logistic_regression_seconds(images: int, classes: int, dims: int, folds: int) -> float:
  """The k-fold logistic regression's estimated seconds on this project's 2-core CPU: its
  L-BFGS iterations each cost a product of images x dims by dims x classes per fold."""
  return LOGISTIC_SECONDS_PER_IMAGE_CLASS_FOLD * images * classes * folds * dims / 256


def ridge_regression_seconds(images: int, classes: int, dims: int) -> float:
  """The ridge classifier's estimated seconds on this project's 2-core CPU."""
  return images * (RIDGE_SECONDS_PER_IMAGE_FEATURE2 * dims ** 2 +
                   RIDGE_SECONDS_PER_IMAGE_CLASS * classes)


def choose_model(setting: str, *, images: int, classes: int, dims: int, folds: int,
                 max_seconds: float | None) -> tuple[str, str]:
  """(the label model, why): `setting` unless it is 'auto'. 'auto' is the first of the
  logistic regression and the ridge classifier whose estimated seconds fit `max_seconds`
  (the in-training audit's share of the run; None = no limit, as `tftransfer-audit` runs), each fitted anyway within ALWAYS_AFFORDABLE_SECONDS; 'none' when neither fits, and
  labels are left to `tftransfer-audit`.

  Raises:
    ValueError: `setting` is neither 'auto' nor one of LABEL_MODELS.
  """
  if setting != 'auto':
    if setting not in LABEL_MODELS:
      raise ValueError(f'audit.label_model={setting!r}; expected auto or one of '
                       f'{", ".join(LABEL_MODELS)}')
    return setting, f'audit.label_model={setting!r}'
  if max_seconds is None:
    return 'logistic_regression', 'no time limit (the audit command)'
  logistic = logistic_regression_seconds(images, classes, dims, folds)
  ridge = ridge_regression_seconds(images, classes, dims)
  left = (f'the {max_seconds:.1f} s the in-training audit gives its label model '
          f'({images:,} images of {classes:,} classes)')
  def fits(seconds):
    return (f'its estimated {seconds:.1f} s fit within {left}' if seconds <= max_seconds else
            f'its estimated {seconds:.1f} s are under {ALWAYS_AFFORDABLE_SECONDS:.0f} s, fitted '
            f'whatever the share ({left})' if seconds <= ALWAYS_AFFORDABLE_SECONDS else None)
  if fits(logistic):
    return 'logistic_regression', fits(logistic)
  if fits(ridge):
    return 'ridge_regression', (
        f"the {folds}-fold logistic regression's estimated {logistic:.1f} s exceed {left}; "
        f'{fits(ridge)}; tftransfer-audit fits the logistic regression after training')
  return 'none', (
      f"not judged in training: the label models' estimated {ridge:.1f} s (ridge) and "
      f'{logistic:.1f} s (logistic regression) exceed {left}; tftransfer-audit judges them '
      'after training')


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


# Images a class needs before its labels are judged: a linear model's out-of-fold
# probabilities of a class it saw a handful of images of say little about any one of them.
MIN_CLASS_IMAGES = 20
# The label model must beat chance by this share of the way to perfect (its out-of-fold
# balanced accuracy, kappa-like) before its evidence is taken: nearer chance, a low
# probability of the given label says more about the features than about the label.
# Measured by scripts/measure_label_errors.py: on the ants/bees photos (lift 0.56) the noise
# fit flagged 24 images for 8 flipped labels (precision 0.12); CIFAR-10 subsets (lift 0.64
# at 5,000 images, more at 450 and 50,000) kept precision and recall above 0.5.
MIN_LIFT_OVER_CHANCE = 0.6


def _log_probabilities(probabilities: np.ndarray) -> np.ndarray:
  return np.log(np.clip(probabilities, 1e-12, 1.0)).astype(np.float64)


def calibrated(probabilities: np.ndarray, t: float) -> np.ndarray:
  """softmax(log p / t): float64 [N, C]."""
  from scipy import special  # pylint: disable=g-import-not-at-top
  return special.softmax(_log_probabilities(probabilities) / t, axis=1)


def fit_noise(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
  """(T, e): the temperature and noise rate that make the given labels most likely under
  P(given = y | x) = (1 - e) softmax(log p / T)_y + e / C (see the module docstring).

  Args:
    probabilities: float [N, C], out-of-fold, rows summing to 1.
    labels: int [N], the given labels.

  Returns:
    T in [0.05, 20] and e in [0, 0.5].
  """
  from scipy import optimize, special  # pylint: disable=g-import-not-at-top
  logits = _log_probabilities(probabilities)
  rows, num_classes = np.arange(len(labels)), probabilities.shape[1]

  def loss(params):
    log_t, noise = params
    scaled = logits / np.exp(log_t)
    model = np.exp(scaled[rows, labels] - special.logsumexp(scaled, axis=1))
    return -np.mean(np.log((1 - noise) * model + noise / num_classes))

  found = optimize.minimize(loss, x0=(0.0, 0.01), method='L-BFGS-B',
                            bounds=((np.log(0.05), np.log(20.0)), (0.0, 0.5)))
  return float(np.exp(found.x[0])), float(found.x[1])


def error_confidence(probabilities: np.ndarray, labels: np.ndarray, t: float,
                     noise: float) -> np.ndarray:
  """float [N]: each image's probability that its given label is the noise term's (Bayes'
  rule under fit_noise's model): (e / C) / ((1 - e) softmax(log p / T)_given + e / C)."""
  given = calibrated(probabilities, t)[np.arange(len(labels)), labels]
  chance = noise / probabilities.shape[1]
  return chance / np.maximum((1 - noise) * given + chance, 1e-300)


def estimated_errors(probabilities: np.ndarray, labels: np.ndarray, t: float,
                     noise: float) -> dict:
  """The estimated number of wrong labels, e N (C - 1) / C (a random class is the right one
  once in C draws), with a 90 % Wald interval from the observed information of e at the
  fitted temperature (its low end clipped at 0): {'count': int, 'low': int, 'high': int}."""
  count, num_classes = probabilities.shape
  given = calibrated(probabilities, t)[np.arange(count), labels]
  chance = 1.0 / num_classes
  # d/de log((1 - e) q + e / C), per image: its squares sum to the observed information.
  scores = (chance - given) / np.maximum((1 - noise) * given + noise * chance, 1e-300)
  spread = 1.645 / np.sqrt(max(float(np.sum(scores ** 2)), 1e-12))
  wrong = count * (1 - chance)
  return {'count': int(round(noise * wrong)),
          'low': int(round(max(0.0, noise - spread) * wrong)),
          'high': int(round(min(1.0, noise + spread) * wrong))}


def confident_joint_estimate(probabilities: np.ndarray, labels: np.ndarray) -> int:
  """Confident learning's own estimate of the number of label issues: the off-diagonal sum
  of the confident joint, each row calibrated to its class's image count (Northcutt et al.
  2021, eq. 2; cleanlab's num_label_issues(estimation_method='off_diagonal_calibrated'))."""
  count, num_classes = probabilities.shape
  thresholds = np.array([probabilities[labels == j, j].mean() if np.any(labels == j)
                         else np.inf for j in range(num_classes)])
  confident = np.where(probabilities >= thresholds, probabilities, -np.inf)
  has = np.isfinite(confident).any(axis=1)
  joint = np.zeros((num_classes, num_classes))
  np.add.at(joint, (labels[has], np.argmax(confident[has], axis=1)), 1)
  rows = joint.sum(axis=1, keepdims=True)
  class_counts = np.bincount(labels, minlength=num_classes)[:, None]
  joint = np.divide(joint * class_counts, rows, out=np.zeros_like(joint), where=rows > 0)
  return int(round(joint.sum() - np.trace(joint)))


@dataclasses.dataclass(frozen=True)
class Judgement:
  """What the label model says of each image's given label."""
  scores: LabelScores  # of the out-of-fold probabilities
  confidence: np.ndarray  # float32 [N]: probability that the given label is an error
  flagged: np.ndarray  # bool [N]: label errors, the estimated number of most likely ones
  hard: np.ndarray  # bool [N]: another class preferred, without the evidence to flag
  estimate: dict | None  # estimated_errors' count, low, high; None when not judged
  temperature: float
  noise_rate: float
  not_judged: str | None  # why no image is flagged, when the model cannot tell
  model: str = 'logistic_regression'  # one of LABEL_MODELS
  model_why: str = ''  # choose_model's reason


def balanced_accuracy(scores: LabelScores, labels: np.ndarray) -> tuple[float, float]:
  """(the label model's out-of-fold balanced accuracy, chance: 1 / the classes present)."""
  present = np.unique(labels)
  recalls = [np.mean(scores.suggested[labels == c] == c) for c in present]
  return float(np.mean(recalls)), 1.0 / max(len(present), 1)


def not_judged_reason(scores: LabelScores, labels: np.ndarray, num_classes: int) -> str | None:
  """Why the label model's evidence is too weak to flag any label, or None (a pure rule:
  the classes' sizes, and the out-of-fold balanced accuracy's lift over chance)."""
  largest = np.bincount(labels, minlength=num_classes).max(initial=0)
  if largest < MIN_CLASS_IMAGES:
    return (f'cannot judge: the largest class has {largest} images; the label model needs '
            f'{MIN_CLASS_IMAGES} of a class to judge its labels')
  balanced, chance = balanced_accuracy(scores, labels)
  if (balanced - chance) / (1 - chance) < MIN_LIFT_OVER_CHANCE:
    needed = chance + MIN_LIFT_OVER_CHANCE * (1 - chance)
    return (f"cannot judge: the label model's held-out balanced accuracy {balanced:.3f} "
            f'is too near chance ({chance:.3f}; judging needs {needed:.3f}, '
            f'{100 * MIN_LIFT_OVER_CHANCE:.0f} % of the way from chance to perfect), so the '
            'features cannot tell a wrong label from a hard image (many wrong labels lower it too)')
  return None


def judge(features: np.ndarray, labels: np.ndarray, num_classes: int, *,
          settings, seed: int, max_seconds: float | None = None) -> Judgement:
  """Judges every given label (see the module docstring).

  Args:
    features: float32 [N, D], pooled backbone features.
    labels: int [N] in [0, num_classes).
    num_classes: C.
    settings: config.audit (label_model, folds, regularization).
    seed: seeds the folds and the bootstrap.
    max_seconds: the time the label model may take (choose_model); None = no limit.

  Returns:
    The Judgement; with not_judged set, nothing is flagged and there is no estimate.

  Raises:
    ValueError: an unknown settings.label_model.
  """
  labels = np.asarray(labels, np.int64)
  counts = np.bincount(labels, minlength=num_classes)
  model, why = choose_model(settings.get('label_model', 'auto'), images=len(labels),
                            classes=int(np.count_nonzero(counts)), dims=features.shape[1],
                            folds=settings.folds, max_seconds=max_seconds)
  nothing = np.zeros(len(labels), bool)
  if model == 'none':  # no time for either model: nothing computed, nothing judged
    unscored = LabelScores(np.zeros((len(labels), 0), np.float32), nothing.astype(np.float32),
                           nothing.astype(np.float32), labels, nothing, 0.0)
    return Judgement(unscored, nothing.astype(np.float32), nothing, nothing, None, 1.0, 0.0,
                     why, model, why)
  if counts.max(initial=0) < 2:
    probabilities = np.eye(num_classes, dtype=np.float32)[labels]
  elif model == 'ridge_regression':
    probabilities = ridge_probabilities(features, labels, num_classes)
  else:
    probabilities = out_of_fold_probabilities(
        features, labels, num_classes, folds=settings.folds,
        regularization=settings.regularization, seed=seed)
  scores = score(probabilities, labels)
  reason = not_judged_reason(scores, labels, num_classes)
  if reason:
    return Judgement(scores, nothing.astype(np.float32), nothing, nothing, None, 1.0, 0.0,
                     reason, model, why)
  judged = counts[labels] >= MIN_CLASS_IMAGES
  t, noise = fit_noise(probabilities, labels)
  confidence = error_confidence(probabilities, labels, t, noise).astype(np.float32)
  estimate = estimated_errors(probabilities, labels, t, noise)
  # The estimated number, most likely first (cleanlab's prune_by_noise_rate also takes the
  # estimated number of issues): a cut at a fixed confidence misses most errors when the
  # label model is unsure, and flags what the estimate calls noise when it is sure.
  ranked = np.flatnonzero(judged)
  ranked = ranked[np.argsort(-confidence[ranked], kind='stable')]
  flagged = np.zeros(len(labels), bool)
  flagged[ranked[:estimate['count']]] = True
  return Judgement(scores, confidence, flagged, scores.flagged & judged & ~flagged, estimate,
                   t, noise, None, model, why)
