"""What the 'auto' epochs, resolution and mixup of a run become.

Without a time budget, rules by the training set's size, in the spirit of BiT's HyperRule
(Kolesnikov et al., 2020: fewer steps and no mixup for small data sets, longer schedules
and mixup for large ones; small images upsampled), with the values this project measured on
CIFAR-10 subsets and the synthetic tasks (README, 'Choosing the defaults'):

    field                 rule
    model.image_size      RESOLUTION_FOR_SMALL_IMAGES px for images smaller than that (CIFAR's
                          32 px), else the backbone's native size
    train.head_epochs     enough epochs for HEAD_STEPS steps, at least MIN_HEAD_EPOCHS (features
                          are computed once, so head epochs cost almost nothing)
    train.finetune_epochs FINETUNE_EPOCHS by the size bucket below
    data.mixup_alpha      MIXUP_ALPHA for LARGE training sets, else 0

With a time budget (train.time_budget_minutes), budget.py plans resolution and fine-tuning
epochs from measured speed instead; explicit values always win. A resumed run keeps what
its first session decided (the workdir's plan.json), so its schedules do not change.
"""

import dataclasses
import math

import numpy as np

from tftransfer import config as config_lib
from tftransfer.data import sources
from tftransfer.model import backbones

# Training-set sizes where the rules change (BiT draws its lines at 20k and 500k).
SMALL, LARGE = 2_000, 20_000
RESOLUTION_FOR_SMALL_IMAGES = 128
HEAD_STEPS, MIN_HEAD_EPOCHS, MAX_HEAD_EPOCHS = 1_000, 10, 50
FINETUNE_EPOCHS = {'small': 30, 'medium': 10, 'large': 5}
MIXUP_ALPHA = 0.1
# Fields this module decides when they are 'auto'.
FIELDS = ('model.image_size', 'train.head_epochs', 'train.finetune_epochs', 'data.mixup_alpha')


def size_bucket(num_train: int) -> str:
  """'small' (< SMALL examples), 'medium' or 'large' (>= LARGE)."""
  return 'small' if num_train < SMALL else 'medium' if num_train < LARGE else 'large'


def typical_shorter_side(split: sources.Split, sample: int = 64) -> int:
  """The median shorter side in pixels of the first `sample` images of `split`."""
  sides = [min(image.shape[:2]) for image, _ in split.dataset().take(sample)]
  return int(np.median(sides)) if sides else 0


def rule_image_size(backbone: str, shorter_side: int) -> tuple[int, str]:
  native = backbones.get_spec(backbone).default_size
  if shorter_side and shorter_side < RESOLUTION_FOR_SMALL_IMAGES:
    return (min(RESOLUTION_FOR_SMALL_IMAGES, native),
            f'images are about {shorter_side} px: upsampled to {RESOLUTION_FOR_SMALL_IMAGES}')
  return native, f'images are about {shorter_side} px: the backbone\'s native {native} px'


def rule_head_epochs(num_train: int, batch_size: int) -> tuple[int, str]:
  steps_per_epoch = max(num_train // batch_size, 1)
  epochs = min(max(math.ceil(HEAD_STEPS / steps_per_epoch), MIN_HEAD_EPOCHS), MAX_HEAD_EPOCHS)
  return epochs, (f'about {HEAD_STEPS} head steps ({steps_per_epoch} a epoch), at least '
                  f'{MIN_HEAD_EPOCHS} epochs')


def rule_finetune_epochs(num_train: int) -> tuple[int, str]:
  bucket = size_bucket(num_train)
  return FINETUNE_EPOCHS[bucket], f'{num_train} training images ({bucket})'


def rule_mixup(num_train: int) -> tuple[float, str]:
  if num_train >= LARGE:
    return MIXUP_ALPHA, f'{num_train} training images: mixup helps large sets (BiT)'
  return 0.0, f'{num_train} training images: too few for mixup to help (BiT)'


@dataclasses.dataclass(frozen=True)
class Schedule:
  """The resolved values of FIELDS, and why each 'auto' one was chosen."""
  image_size: int
  head_epochs: int
  finetune_epochs: int
  mixup_alpha: float
  decisions: dict[str, tuple[str, str]]  # field -> (value, why), for 'auto' fields only

  def apply(self, config) -> None:
    """Writes the values into a resolved (unlocked) config."""
    config.model.image_size = self.image_size
    config.train.head_epochs = self.head_epochs
    config.train.finetune_epochs = self.finetune_epochs
    config.data.mixup_alpha = self.mixup_alpha


def _field(config, dotted: str):
  section, name = dotted.split('.')
  return config[section][name]


def by_rules(config, data: sources.Data, *, previous: dict | None) -> Schedule:
  """Resolves the 'auto' FIELDS of `config` by the rules above, or as `previous` (a resumed
  run's plan.json decisions) decided them.

  Raises:
    errors.InvalidValueError: an explicit image size too small for the backbone.
  """
  num_train = data.train.num_examples
  rules = {
      'model.image_size': lambda: rule_image_size(
          config.model.backbone, typical_shorter_side(data.train)),
      'train.head_epochs': lambda: rule_head_epochs(num_train, config.train.batch_size),
      'train.finetune_epochs': lambda: rule_finetune_epochs(num_train),
      'data.mixup_alpha': lambda: rule_mixup(num_train),
  }
  values, decisions = {}, {}
  for field in FIELDS:
    value = _field(config, field)
    if not config_lib.is_auto(value):
      values[field] = value
    elif previous and field in previous:
      values[field], why = previous[field]
      decisions[field] = (values[field], f'{why}; as planned when the run started')
    else:
      values[field], why = rules[field]()
      decisions[field] = (values[field], why)
  image_size = backbones.resolve_image_size(config.model.backbone,
                                            int(values['model.image_size']))
  return Schedule(image_size=image_size, head_epochs=int(values['train.head_epochs']),
                  finetune_epochs=int(values['train.finetune_epochs']),
                  mixup_alpha=float(values['data.mixup_alpha']), decisions=decisions)
