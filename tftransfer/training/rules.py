"""What the 'auto' resolution, epochs, mixup and class weights of a run become without a
time budget: rules by the training set's size.

In the spirit of BiT's HyperRule (Kolesnikov et al., 2020: fewer steps and no mixup for
small data sets, longer schedules and mixup for large ones; small images upsampled), with
the values this project measured on CIFAR-10 subsets and the synthetic tasks (docs/results.md,
'Choosing the defaults'):

    field                  rule
    model.image_size       RESOLUTION_FOR_SMALL_IMAGES px for images smaller than that
                           (CIFAR's 32 px), else the backbone's native size
    train.head_epochs      enough epochs for HEAD_STEPS steps, at least MIN_HEAD_EPOCHS
                           (features are computed once, so head epochs cost almost nothing)
    train.finetune_epochs  FINETUNE_EPOCHS by the size bucket below
    data.mixup_alpha       MIXUP_ALPHA for LARGE training sets, else 0
    train.class_weighting  'balanced' when the classes are more than
                           data.imbalance_warning_ratio times apart in size
    model.task             multi_label when the data gives images several labels
    train.select_metric    val_map (mean average precision) for multi-label, else
                           val_accuracy

Each rule returns (value, why); planning.py applies them to the fields left 'auto' (with a
time budget, budget.py decides resolution and fine-tuning epochs instead).
"""

import math

import numpy as np

from tftransfer import errors
from tftransfer.data import dataset
from tftransfer.model import backbones

# Training-set sizes where the rules change (BiT draws its lines at 20k and 500k).
SMALL, LARGE = 2_000, 20_000
RESOLUTION_FOR_SMALL_IMAGES = 128
HEAD_STEPS, MIN_HEAD_EPOCHS, MAX_HEAD_EPOCHS = 1_000, 10, 50
FINETUNE_EPOCHS = {'small': 30, 'medium': 10, 'large': 5}
MIXUP_ALPHA = 0.1


def size_bucket(num_train: int) -> str:
  """'small' (< SMALL examples), 'medium' or 'large' (>= LARGE)."""
  return 'small' if num_train < SMALL else 'medium' if num_train < LARGE else 'large'


def typical_shorter_side(split: dataset.Split, sample: int = 64) -> int:
  """The median shorter side in pixels of the first `sample` images of `split`."""
  sides = [min(image.shape[:2]) for image, _ in split.dataset().take(sample)]
  return int(np.median(sides)) if sides else 0


def image_size(backbone: str, shorter_side: int, preset: str = '') -> tuple[int, str]:
  native = backbones.get_spec(backbone, preset).default_size
  if shorter_side and shorter_side < RESOLUTION_FOR_SMALL_IMAGES:
    return (min(RESOLUTION_FOR_SMALL_IMAGES, native),
            f'images are about {shorter_side} px: upsampled to {RESOLUTION_FOR_SMALL_IMAGES}')
  return native, f'images are about {shorter_side} px: the backbone\'s native {native} px'


def head_epochs(num_train: int, batch_size: int) -> tuple[int, str]:
  steps_per_epoch = max(num_train // batch_size, 1)
  epochs = min(max(math.ceil(HEAD_STEPS / steps_per_epoch), MIN_HEAD_EPOCHS), MAX_HEAD_EPOCHS)
  wanted = math.ceil(HEAD_STEPS / steps_per_epoch)
  bound = (f', capped at {MAX_HEAD_EPOCHS} epochs' if wanted > MAX_HEAD_EPOCHS else
           f', at least {MIN_HEAD_EPOCHS} epochs' if wanted < MIN_HEAD_EPOCHS else '')
  return epochs, (f'{epochs * steps_per_epoch} head steps ({steps_per_epoch} an epoch; about '
                  f'{HEAD_STEPS} wanted{bound})')


def finetune_epochs(num_train: int) -> tuple[int, str]:
  bucket = size_bucket(num_train)
  return FINETUNE_EPOCHS[bucket], f'{num_train} training images ({bucket})'


def mixup_alpha(num_train: int) -> tuple[float, str]:
  if num_train >= LARGE:
    return MIXUP_ALPHA, f'{num_train} training images: mixup helps large sets (BiT)'
  return 0.0, f'{num_train} training images: too few for mixup to help (BiT)'


def class_weighting(class_counts, imbalance_ratio: float) -> tuple[str, str]:
  """'balanced' when the largest class has more than `imbalance_ratio` times the examples of
  the smallest (data.imbalance_warning_ratio; 0 = never), else 'none'."""
  counts = np.asarray(class_counts, np.float64)
  ratio = counts.max() / max(counts.min(), 1)
  balanced = bool(imbalance_ratio) and ratio > imbalance_ratio
  return ('balanced' if balanced else 'none'), (
      f'classes {ratio:.1f} times apart in size, {"more" if balanced else "not more"} than '
      f'data.imbalance_warning_ratio={imbalance_ratio:g}')


def task(multi_label: bool) -> tuple[str, str]:
  """model.task='auto': multi-label when the data gives images several labels."""
  if multi_label:
    return 'multi_label', 'the data gives images several labels'
  return 'single_label', 'the data gives each image one label'


def select_metric(task: str) -> tuple[str, str]:
  """train.select_metric='auto': mean average precision for multi-label, else accuracy."""
  if task == 'multi_label':
    return 'val_map', 'multi-label: mean average precision over the labels'
  return 'val_accuracy', 'single-label: accuracy'


# The selection metrics that mean something for each task.
TASK_METRICS = {'single_label': ('val_accuracy', 'val_loss', 'val_balanced_accuracy'),
                'multi_label': ('val_map', 'val_loss', 'val_accuracy')}


def check_select_metric(task: str, metric: str) -> None:
  """Raises errors.InvalidValueError for a train.select_metric the task has no value of:
  mean average precision of a single-label run, balanced accuracy of a multi-label one."""
  if metric not in TASK_METRICS[task]:
    raise errors.InvalidValueError(
        f'train.select_metric={metric!r} is not measured for a {task} run; use one of '
        f'{", ".join(TASK_METRICS[task])} (or auto).')


def positive_weights(class_counts, num_examples: int, weighting: str) -> np.ndarray | None:
  """float64 [num_labels] weights of each label's positives in the multi-label loss:
  'balanced' weighs label l's positives by its negatives over its positives, so both count
  alike in its cross-entropy (the pos_weight of tf.nn.weighted_cross_entropy_with_logits);
  'none' = None."""
  if weighting == 'none':
    return None
  positives = np.maximum(np.asarray(class_counts, np.float64), 1)
  return (num_examples - positives) / positives


def class_weights(class_counts, weighting: str) -> np.ndarray | None:
  """float64 [num_classes] loss weights of `weighting` ('balanced' or 'none' = None).

  'balanced' weighs class c by n / (k * n_c) (n examples, k classes, n_c of class c), as
  scikit-learn's compute_class_weight('balanced'): the expected weight of an example is 1,
  so the loss keeps its scale.
  """
  if weighting == 'none':
    return None
  counts = np.asarray(class_counts, np.float64)
  return counts.sum() / (len(counts) * np.maximum(counts, 1))
