r"""CIFAR-10 from TFDS on an ImageNet backbone at its native resolution: the GPU recipes.

  python -m tftransfer.train --config=configs/cifar10.py:resnet50 --workdir=/tmp/cifar10_resnet50
  python -m tftransfer.train --config=configs/cifar10.py:vgg16 --workdir=/tmp/cifar10_vgg16
  python -m tftransfer.train --config=configs/cifar10.py:inception_v3 \
      --workdir=/tmp/cifar10_inception_v3

Needs network once (TFDS download with --config.data.download=true, ImageNet weights) or
prepared data and a weights file (--config.data.data_dir, --config.model.weights=PATH).
Validation is a stratified 10 % of the train split; the test split stays untouched.

Measured: none yet. These are recipes for a GPU, and this project's machines have none (nor
these backbones' ImageNet weights offline); configs/mobilenet_cpu.py is the measured
CPU recipe.
"""

from tftransfer import config as config_lib

# What differs between the backbones; everything else is config.default_config().
RECIPES = {
    # ResNet50: BatchNorm frozen while fine-tuning keeps its ImageNet statistics.
    'resnet50': dict(image_size=224, batch_size=128, finetune_epochs=6, finetune_lr=1e-4),
    # VGG16 has no BatchNormalization to steady it: a lower fine-tuning rate, more dropout.
    'vgg16': dict(image_size=224, batch_size=64, finetune_epochs=5, finetune_lr=3e-5,
                  dropout=0.5),
    # InceptionV3 needs at least 75 px; 299 is what its ImageNet weights were trained at.
    'inception_v3': dict(image_size=299, batch_size=64, finetune_epochs=5, finetune_lr=1e-4),
}


def get_config(backbone: str = 'resnet50'):
  """backbone: one of RECIPES ('resnet50' | 'vgg16' | 'inception_v3')."""
  if backbone not in RECIPES:
    raise ValueError(f'configs/cifar10.py:{backbone} is unknown; use one of '
                     f'{", ".join(":" + name for name in RECIPES)}.')
  recipe = RECIPES[backbone]
  config = config_lib.default_config()
  config.data.source = 'tfds'
  config.data.name = 'cifar10'
  config.model.backbone = backbone
  config.model.image_size = recipe['image_size']
  config.model.dropout = recipe.get('dropout', config.model.dropout)
  config.train.batch_size = recipe['batch_size']
  config.train.head_epochs = 2
  config.train.head_lr = 1e-3
  config.train.finetune_epochs = recipe['finetune_epochs']
  config.train.finetune_lr = recipe['finetune_lr']
  return config.lock()
