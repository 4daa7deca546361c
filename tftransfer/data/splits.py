"""Train/validation splits over example labels: stratified, seeded, capped per class.

Pure NumPy on label arrays, so every source (TFDS, folders, TFRecords, synthetic) splits the
same way and the same labels and seed always give the same split.
"""

import ml_collections
import numpy as np

from tftransfer import errors


def stratified_split(labels: np.ndarray, *, val_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Splits example indices so each class keeps `val_fraction` of its examples aside.

  Returns sorted (train_indices, val_indices); the same labels and seed give the same split.
  """
  rng = np.random.default_rng(seed)
  train, val = [], []
  for label in np.unique(labels):
    indices = np.flatnonzero(labels == label)
    rng.shuffle(indices)
    num_val = int(round(len(indices) * val_fraction))
    if val_fraction > 0 and len(indices) > 1:
      num_val = min(max(num_val, 1), len(indices) - 1)
    val.append(indices[:num_val])
    train.append(indices[num_val:])
  return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def cap_per_class(indices: np.ndarray, labels: np.ndarray, *, max_per_class: int,
                  seed: int) -> np.ndarray:
  """Keeps at most `max_per_class` seeded-random indices of each class (0 = keep all)."""
  if not max_per_class:
    return indices
  rng = np.random.default_rng(seed + 1)
  kept = []
  for label in np.unique(labels[indices]):
    of_class = indices[labels[indices] == label]
    kept.append(rng.permutation(of_class)[:max_per_class])
  return np.sort(np.concatenate(kept))


def resolve_eval_split(requested: str, available) -> str:
  """config.data.eval_split against a source's splits (`available` names them): 'auto' =
  'validation' if there is one, else 'carve' (a fraction of the training split). 'auto'
  never picks 'test'."""
  if requested == 'auto':
    return 'validation' if 'validation' in available else 'carve'
  return requested


def train_val_indices(labels: np.ndarray, data: ml_collections.ConfigDict, seed: int):
  """Carves a stratified validation set from `labels` and caps the training classes.

  Args:
    labels: int [N], one per example.
    data: the config's data section (val_fraction, max_examples_per_class).
    seed: seeds the split and the cap.

  Returns:
    Sorted (train_indices, val_indices) into `labels`; no val_indices when data.val_fraction
    is 0 (a run without validation).

  Raises:
    errors.InvalidValueError: data.val_fraction is not in [0, 1).
  """
  if not 0 <= data.val_fraction < 1:
    raise errors.InvalidValueError(
        f'config.data.val_fraction={data.val_fraction} must be in [0, 1) to carve '
        'a validation split from the training data (0 = no validation).')
  train, val = stratified_split(labels, val_fraction=data.val_fraction, seed=seed)
  return cap_per_class(train, labels, max_per_class=data.max_examples_per_class, seed=seed), val


def iterative_stratified_split(targets: np.ndarray, *, val_fraction: float,
                               seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Splits multi-label examples so each label keeps about `val_fraction` of its examples
  aside: iterative stratification (Sechidis, Tsoumakas and Vlahavas, ECML PKDD 2011).

  The rarest label still to place goes first: each of its examples goes to the split that
  most wants that label (its desired count minus what it has), ties to the one that most
  wants examples, then at random (seeded). Examples without a label fill what is left.

  Args:
    targets: bool or 0/1 [N, num_labels].
    val_fraction: in [0, 1).
    seed: seeds the order of ties.

  Returns:
    Sorted (train_indices, val_indices); every example trains when `val_fraction` is 0.
  """
  targets = np.asarray(targets) > 0
  rng = np.random.default_rng(seed)
  fractions = np.array([1 - val_fraction, val_fraction])
  wanted_examples = fractions * len(targets)
  wanted_labels = fractions[:, None] * targets.sum(axis=0)[None, :]
  assigned = np.full(len(targets), -1)
  remaining = targets.copy()
  while remaining.any():
    counts = remaining.sum(axis=0)
    label = min(np.flatnonzero(counts), key=lambda l: (counts[l], rng.random()))
    for example in rng.permutation(np.flatnonzero(remaining[:, label])):
      by_label, by_size = wanted_labels[:, label], wanted_examples
      best = np.flatnonzero(by_label == by_label.max())
      if len(best) > 1:
        best = best[by_size[best] == by_size[best].max()]
      subset = int(rng.choice(best))
      assigned[example] = subset
      wanted_labels[subset] -= targets[example]
      wanted_examples[subset] -= 1
      remaining[example] = False
  for example in rng.permutation(np.flatnonzero(assigned < 0)):
    subset = int(np.argmax(wanted_examples))
    assigned[example] = subset
    wanted_examples[subset] -= 1
  return np.flatnonzero(assigned == 0), np.flatnonzero(assigned == 1)
